"""Snakemake script: leaderboard -> PNG plots."""

import sys

from snaketune.plots import make_plots

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by Snakemake
make_plots(snakemake.input.leaderboard, snakemake.params.config, list(snakemake.output))  # noqa: F821
