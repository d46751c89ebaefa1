"""Snakemake script: every evaluation -> leaderboard (final rungs), history.csv, best.json."""

import sys

from snaketune.results.adaptive import write_results

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by Snakemake
p = snakemake.params  # noqa: F821
write_results(
    list(snakemake.input),  # noqa: F821
    plan_meta=p.plan,
    settings=p.settings,
    scoring=p.scoring,
    refit=p.refit,
    outputs=snakemake.output,  # noqa: F821
)
