"""An iterative tuning session: where rerunning only what changed should lead by far.

    .venv/bin/python bench/bench_session.py [--rounds 3] [--out bench/results/session.md]

SVC on digits (StandardScaler -> SVC), a 6 x 5 C x gamma grid, stratified 5-fold, then four
edits, rerunning after each: add a C value, add a gamma value, add a linear-kernel sub-grid,
revert that. snaketune reruns in the same folder (`snakemake --cores 2`, whole process, shipped
profile); scikit-learn runs GridSearchCV(n_jobs=2) from scratch after each edit (whole process,
imports included), on the same folds. Rounds alternate the two sides; medians per step.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
C = [0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]
GAMMA = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]


def grids() -> list[tuple[str, list[dict]]]:
    """The session's steps: (what changed, the grid as a list of sub-grids)."""
    base = {"svc__C": C, "svc__gamma": GAMMA}
    more_c = dict(base, svc__C=[*C, 3.0])
    more_gamma = dict(more_c, svc__gamma=[*GAMMA, 3e-3])
    linear = {"svc__C": [0.01, 0.1, 1.0, 10.0], "svc__kernel": ["linear"]}
    return [
        ("6 x 5 grid", [base]),
        ("add a C value", [more_c]),
        ("add a gamma value", [more_gamma]),
        ("add a linear sub-grid", [more_gamma, linear]),
        ("revert the sub-grid", [more_gamma]),
    ]


def study_config(grid: list[dict]) -> dict:
    return {
        "study": "session",
        "data": {"loader": "digits"},
        "estimator": {
            "steps": [
                {"name": "scale", "class": "sklearn.preprocessing.StandardScaler"},
                {"name": "svc", "class": "sklearn.svm.SVC"},
            ]
        },
        "search": {"grid": grid if len(grid) > 1 else grid[0]},
        "cv": {"kind": "stratified", "n_splits": 5, "shuffle": True, "seed": 0},
        "scoring": "accuracy",
    }


SKLEARN = """
import json, sys
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
grid = json.loads(sys.argv[1])
X, y = load_digits(return_X_y=True)
search = GridSearchCV(Pipeline([("scale", StandardScaler()), ("svc", SVC())]), grid, n_jobs=2,
                      cv=StratifiedKFold(5, shuffle=True, random_state=0), scoring="accuracy").fit(X, y)
print(json.dumps({"fits": len(search.cv_results_["params"]) * 5, "best": search.best_score_}))
"""


def run_ours(workdir: Path, grid: list[dict]) -> tuple[float, int, float]:
    Path(workdir, "config.yaml").write_text(yaml.safe_dump(study_config(grid)))
    t0 = time.perf_counter()
    proc = subprocess.run(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "2"],
        capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-4000:])
    best = json.loads((workdir / "results" / "session" / "best.json").read_text())
    return wall, 0, best.get("best_score", float("nan"))


def run_sklearn(grid: list[dict]) -> tuple[float, int, float]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", SKLEARN, json.dumps(grid)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-4000:])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return wall, result["fits"], result["best"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "session.md"))
    args = parser.parse_args()
    steps = grids()
    ours = {name: [] for name, _ in steps}
    sk = {name: [] for name, _ in steps}
    load = []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="st-session-") as tmp:
            for name, grid in steps:
                load.append(os.getloadavg()[0])
                ours[name].append(run_ours(Path(tmp), copy.deepcopy(grid)))
                sk[name].append(run_sklearn(copy.deepcopy(grid)))
    lines = [
        "# An iterative tuning session (SVC/digits, 2 cores, whole processes)",
        "",
        f"Medians of {args.rounds} rounds; load average during the runs {min(load):.1f}-{max(load):.1f}.",
        "",
        "| step | snaketune s | sklearn GridSearchCV(n_jobs=2) s | sklearn fits |",
        "|---|---:|---:|---:|",
    ]
    total_ours = total_sk = 0.0
    for name, _ in steps:
        o = statistics.median(r[0] for r in ours[name])
        s = statistics.median(r[0] for r in sk[name])
        total_ours, total_sk = total_ours + o, total_sk + s
        lines.append(f"| {name} | {o:.2f} | {s:.2f} | {sk[name][0][1]} |")
    lines += [
        f"| **session** | **{total_ours:.2f}** | **{total_sk:.2f}** | |",
        "",
        f"snaketune is {total_sk / total_ours:.2f}x faster over the session (target >= 3x); the revert "
        f"(no new trial) took {statistics.median(r[0] for r in ours['revert the sub-grid']):.2f} s as a "
        "whole process (target <= 2 s).",
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    Path(args.out).with_suffix(".json").write_text(json.dumps({"ours": ours, "sklearn": sk, "load": load}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
