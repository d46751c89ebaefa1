"""Layer 2, what to evaluate: search spaces (`space`, over scikit-learn's ParameterGrid and
ParameterSampler), the trial plan of grid and random search (`plan`), the Hyperband and
successive-halving schedules (`hyperband`)."""
