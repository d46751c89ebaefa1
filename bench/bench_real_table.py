"""A real table: snaketune against RandomizedSearchCV(n_jobs=2), whole processes, one run.

    python bench/bench_real_table.py [--repeats 3] [--n-iter N]

The study is examples/flights.yaml (50,000 flights, text columns, a ColumnTransformer and a
HistGradientBoostingRegressor; examples/data/README.md). The scikit-learn side is what its user
writes: read the Parquet file with pandas, hold out data.test_size with train_test_split
(random_state=data.seed, not stratified: a regressor), KFold on the rest, RandomizedSearchCV with
the same candidates (ParameterSampler, the same seed), refit on the training rows. The snaketune
side is `snakemake --cores 2` on a fresh folder: prepare, trials, aggregation, plots, refit and
report pages. Sides alternate; medians of the walls and their ratio go to
bench/results/real-table.{json,md}, with the phases of our runs (from trial records) and the load
average around each run (how noisy the machine was).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SKLEARN_SIDE = """
import json, sys, time
t0 = time.perf_counter()
from bench.bench_real_table import sklearn_search

config = json.loads(sys.argv[1])
searcher, X, y, _, _ = sklearn_search(config, ".")
searcher.set_params(n_jobs=2)
searcher.fit(X, y)
res, n_splits = searcher.cv_results_, config["cv"]["n_splits"]
json.dump({
    "params": [{k: (v.item() if hasattr(v, "item") else v) for k, v in p.items()} for p in res["params"]],
    "mean_test": res["mean_test_" + config["refit"]].tolist(),
    "sum_fit_time": float(res["mean_fit_time"].sum() * n_splits),
    "sum_score_time": float(res["mean_score_time"].sum() * n_splits),
    "refit_time": searcher.refit_time_,
    "total_inside": time.perf_counter() - t0,
}, open(sys.argv[2], "w"))
"""


def sklearn_search(config: dict, root: str | Path = REPO):
    """What a scikit-learn user writes for examples/flights.yaml: the Parquet file read with
    pandas, data.test_size held out with train_test_split (random_state=data.seed, not stratified:
    a regressor), KFold on the rest, RandomizedSearchCV with the same candidates (ParameterSampler,
    the same seed). Returns the unfitted search and ``X, y, X_test, y_test``."""
    import pandas as pd
    from sklearn.model_selection import KFold, RandomizedSearchCV, train_test_split

    from snaketune.base.estimator import build_estimator
    from snaketune.search.space import expand_space

    data, cv, search = config["data"], config["cv"], config["search"]["random"]
    frame = pd.read_parquet(Path(root) / data["parquet"])
    X, y = frame.drop(columns=data["target"]), frame[data["target"]].to_numpy()
    X, X_test, y, y_test = train_test_split(X, y, test_size=data["test_size"], random_state=data["seed"])
    searcher = RandomizedSearchCV(
        build_estimator(config["estimator"]),
        expand_space(search["params"]),
        n_iter=search["n_iter"],
        random_state=search["seed"],
        scoring=config["scoring"],
        refit=config["refit"],
        cv=KFold(cv["n_splits"], shuffle=True, random_state=cv["seed"]),
    )
    return searcher, X, y, X_test, y_test


def ours_profile(folder: Path, config: dict) -> dict:
    """Phases of a snaketune run from its trial records: the trials' span and their fit/score sums."""
    from datetime import datetime

    records = [json.loads(p.read_text()) for p in (folder / "results" / config["study"] / "trials").glob("*.json")]
    starts = [datetime.fromisoformat(r["start"]).timestamp() for r in records]
    ends = [datetime.fromisoformat(r["end"]).timestamp() for r in records]
    refit = json.loads((folder / "results" / config["study"] / "refit.json").read_text())
    return {
        "n_trials": len(records),
        "trials_span_s": max(ends) - min(starts),
        "sum_fit_time": sum(r["fit_time"] for r in records),
        "sum_score_time": sum(r["score_time"] for r in records),
        "refit_time": refit.get("fit_time"),
        "mean_test": None,
    }


def main() -> int:
    from bench.measure import run as measure

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-iter", type=int, help="configurations (default: the example's)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "real-table"))
    args = parser.parse_args()
    config = yaml.safe_load((REPO / "examples" / "flights.yaml").read_text())
    if args.n_iter:
        config["search"]["random"]["n_iter"] = args.n_iter
    python = sys.executable
    snakemake = str(Path(python).parent / "snakemake")
    rows = {"snaketune": [], "sklearn": []}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for side in ("sklearn", "snaketune"):
                folder = Path(tmp) / f"{side}-{rep}"
                (folder / "examples" / "data").mkdir(parents=True)
                shutil.copy(REPO / "examples" / "data" / "flights.parquet", folder / "examples" / "data")
                (folder / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
                if side == "sklearn":
                    (folder / "side.py").write_text(SKLEARN_SIDE)
                    cmd = [python, "side.py", json.dumps(config), "result.json"]
                else:
                    cmd = [snakemake, "-s", str(REPO / "Snakefile"), "--cores", "2", "--configfile", "study.yaml"]
                m = measure(cmd, cwd=folder, env=dict(__import__("os").environ, PYTHONPATH=str(REPO)))
                if m.returncode != 0:
                    print(f"{side} failed ({m.returncode}) in {folder}", file=sys.stderr)
                    return 1
                detail = (
                    json.loads((folder / "result.json").read_text())
                    if side == "sklearn"
                    else ours_profile(folder, config)
                )
                row = {"wall_s": m.wall_s, "cpu_s": m.cpu_s, "loadavg": [m.loadavg_before, m.loadavg_after], **detail}
                rows[side].append(row)
                print(f"{side} #{rep}: {m.wall_s:.1f} s wall, {m.cpu_s:.1f} s CPU, load {m.loadavg_before[0]:.1f}")
            # Both sides searched the same candidates and scored them alike.
            ours = Path(tmp) / f"snaketune-{rep}" / "results" / config["study"] / "leaderboard.csv"
            import pandas as pd

            board = pd.read_csv(ours)
            ref = rows["sklearn"][-1]
            assert [json.loads(p) for p in board["params"]] == ref["params"], "different candidates"
            gap = max(abs(a - b) for a, b in zip(board[f"mean_test_{config['refit']}"], ref["mean_test"], strict=True))
            rows["snaketune"][-1]["max_score_gap"] = gap
    med = {side: statistics.median(r["wall_s"] for r in rs) for side, rs in rows.items()}
    summary = {
        "study": "examples/flights.yaml",
        "n_iter": config["search"]["random"]["n_iter"],
        "folds": config["cv"]["n_splits"],
        "repeats": args.repeats,
        "median_wall_s": med,
        "ratio": med["snaketune"] / med["sklearn"],
        "runs": rows,
    }
    Path(args.out + ".json").write_text(json.dumps(summary, indent=1))
    lines = [
        "# Real table: examples/flights.yaml, snaketune vs RandomizedSearchCV(n_jobs=2)",
        "",
        f"{summary['n_iter']} configurations x {summary['folds']} folds, 40,000 training rows; "
        f"{args.repeats} runs a side, alternating; whole processes.",
        "",
        "| side | median wall s | runs (wall s) | Σ fit s | load avg before |",
        "|---|---:|---|---:|---|",
    ]
    for side, rs in rows.items():
        walls = ", ".join(f"{r['wall_s']:.1f}" for r in rs)
        fits = statistics.median(r["sum_fit_time"] for r in rs)
        loads = ", ".join(f"{r['loadavg'][0][0]:.1f}" for r in rs)
        lines.append(f"| {side} | {med[side]:.1f} | {walls} | {fits:.1f} | {loads} |")
    lines += ["", f"ratio (median ours / median sklearn): **{summary['ratio']:.2f}x**"]
    spans = [r["trials_span_s"] for r in rows["snaketune"]]
    lines.append(
        f"snaketune trials phase (first trial start to last trial end): median {statistics.median(spans):.1f} s"
    )
    Path(args.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
