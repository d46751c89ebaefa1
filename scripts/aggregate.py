"""Snakemake script: trial files -> leaderboard.csv, leaderboard.md, best.json."""

import sys

from snaketune.results.report import write_leaderboard

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by Snakemake
p = snakemake.params  # noqa: F821
write_leaderboard(
    trial_paths=list(snakemake.input),  # noqa: F821
    plan=p.plan,
    scoring=p.scoring,
    refit=p.refit,
    error_score=p.error_score,
    return_train_score=p.return_train_score,
    top_n=p.top_n,
    outputs=snakemake.output,  # noqa: F821
)
