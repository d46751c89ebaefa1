"""Layer 7, Snakemake glue: what the rule files need at parse time (`support`)."""
