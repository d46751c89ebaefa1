"""Write the leaderboard files from trial records."""

from __future__ import annotations

import json

import numpy as np

from snaketune.aggregate import best_index, cv_results, read_records, to_frame, top_table
from snaketune.jsonutil import to_jsonable, write_json_atomic
from snaketune.space import as_candidate


def write_leaderboard(*, trial_paths, plan, scoring, refit, error_score, return_train_score, top_n, outputs):
    """Aggregate trial files into ``leaderboard.csv``, ``leaderboard.md`` and ``best.json``.

    Prints the top-5 table, which Snakemake shows at the end of the run.
    """
    records = read_records(trial_paths)
    candidates = [{k: as_candidate(v) for k, v in c.items()} for c in plan["candidates"]]
    results = cv_results(
        candidates,
        plan["config_keys"],
        records,
        n_folds=plan["n_folds"],
        scoring=scoring,
        error_score=error_score,
        return_train_score=return_train_score,
    )
    frame = to_frame(results)
    frame.to_csv(outputs.leaderboard, index=False)
    table = top_table(frame, refit, scoring, n=top_n)
    with open(outputs.markdown, "w") as fh:
        fh.write(f"# Leaderboard (top {top_n} by {refit})\n\n{table}")
    best = best_index(results, refit)
    statuses = [r["status"] for r in records.values()]
    summary = {
        "index": best,
        "params": to_jsonable(candidates[best]),
        "config_key": plan["config_keys"][best],
        "refit": refit,
        "mean_test_score": results[f"mean_test_{refit}"][best],
        "std_test_score": results[f"std_test_{refit}"][best],
        "scores": {m: results[f"mean_test_{m}"][best] for m in scoring},
        "n_candidates": len(candidates),
        "n_trials": len(records),
        "n_failed": statuses.count("error"),
        "n_timeout": statuses.count("timeout"),
        "data_fingerprint": next(iter(records.values())).get("data_fingerprint"),
        "versions": next(iter(records.values())).get("versions"),
    }
    if np.isnan(summary["mean_test_score"]):
        summary["warning"] = "every configuration failed on some fold; see n_failed in the leaderboard"
    write_json_atomic(outputs.best, summary)
    print(f"Top 5 by {refit}:\n" + top_table(frame, refit, scoring, n=5))
    print(json.dumps({"best": summary["params"], refit: summary["mean_test_score"]}, default=str))
