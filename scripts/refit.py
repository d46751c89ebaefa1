"""Snakemake script: refit the best configuration on all training data and score the test set."""

import sys
from pathlib import Path

from snaketune.refit import refit_best

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by Snakemake
p = snakemake.params  # noqa: F821
refit_best(
    data_dir=Path(snakemake.input.data[0]).parent,  # noqa: F821
    best_path=snakemake.input.best,  # noqa: F821
    estimator=p.estimator,
    allowed_modules=p.allowed_modules,
    seed=p.seed,
    scoring=p.scoring,
    model_path=snakemake.output.model,  # noqa: F821
    summary_path=snakemake.output.summary,  # noqa: F821
)
