"""Layer 4, the unit of work: one candidate on one fold, fitted, scored and recorded
(`trial`); budgeted evaluations of adaptive searches (`adaptive`); the refit of the best
candidate (`refit`)."""
