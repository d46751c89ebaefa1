"""Snakemake script: refit the best configuration on all training rows, score the test set."""

import sys
from pathlib import Path

from snaketune.evaluation.adaptive import refit_best

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by Snakemake
refit_best(
    data_dir=Path(snakemake.input.data[0]).parent,  # noqa: F821
    best_path=snakemake.input.best,  # noqa: F821
    spec=snakemake.params.spec,  # noqa: F821
    model_path=snakemake.output.model,  # noqa: F821
    summary_path=snakemake.output.summary,  # noqa: F821
)
