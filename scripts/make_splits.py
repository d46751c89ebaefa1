"""Snakemake script: compute the CV splits once so every trial sees identical folds."""

import sys

import numpy as np

from snaketune.splits import compute_splits, save_splits

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by Snakemake
y = np.load(snakemake.input.y)  # noqa: F821
splits = compute_splits(snakemake.params.cv, y, snakemake.params.classifier)  # noqa: F821
save_splits(snakemake.output[0], splits)  # noqa: F821
print(f"{len(splits)} splits of {len(y)} samples", file=sys.stderr)
