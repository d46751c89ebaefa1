"""snaketune: reproducible, parallel hyperparameter search for scikit-learn, driven by Snakemake.

The package holds all logic; the workflow's rules and scripts only call into it. Modules import
scikit-learn lazily where they can, because the Snakefile imports this package at parse time.
"""

__version__ = "0.1.0"
