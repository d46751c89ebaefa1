"""Snakemake script: history.csv -> score against resource for every model (PNG)."""

import sys

from snaketune.results.adaptive import plot_history

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by Snakemake
plot_history(snakemake.input[0], snakemake.params.refit, snakemake.output[0], snakemake.params.title)  # noqa: F821
