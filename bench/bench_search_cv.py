"""The drop-in searches on the warm engine, in one warm Python process (issue #27's bench rows).

    .venv/bin/python bench/bench_search_cv.py [--out bench/results/search-cv.md]

1. **Iterative session**: the SVC/digits session of ``bench_session.py`` (a 6 x 5 C x gamma grid,
   then add a C value, add a gamma value, add a linear sub-grid, revert it) as five
   ``snaketune.GridSearchCV(...).fit`` calls with one ``study_dir``, against scikit-learn's
   ``GridSearchCV`` refitted from scratch after each edit; both ``n_jobs=2``, stratified 5-fold
   (shuffled, seed 0), refit on, in this one process (imports done before timing). Ours includes
   starting the engine at the first fit. Then the same fit once more (no trial, no edit: it does
   not start Snakemake), a Snakemake run with nothing to do through the engine (5 times), and the
   engine's idle RSS.
2. **TPE rounds**: ``examples/svc-digits-tpe.yaml`` (60 configurations in rounds of 6, seed 0) through
   the warm engine to its leaderboard (the ``aggregate`` target, which a Python search runs: the
   trials' results, as ``study.optimize`` leaves them), then the rest of the whole run (plots,
   refit, report pages) timed apart and reported beside it; against Optuna's
   ``study.optimize(objective, n_trials=60, n_jobs=2)`` (``TPESampler(seed=0)``, mean CV accuracy by
   ``cross_val_score`` on the same rows and folds) in this process.

One round each (the machine is shared: the load average is recorded before and after each step).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_session import grids  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"session_speedup": 3.0, "tpe_ratio": 1.3, "noop_s": 0.5, "idle_rss_mb": 300}


def session(work: Path) -> dict:
    from sklearn import model_selection as ms
    from sklearn.datasets import load_digits
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    import snaketune

    X, y = load_digits(return_X_y=True)
    model = Pipeline([("scale", StandardScaler()), ("svc", SVC())])
    cv = ms.StratifiedKFold(5, shuffle=True, random_state=0)
    rows = []
    for name, grid in grids():
        load = os.getloadavg()[0]
        c0, t0 = cpu_seconds(), time.perf_counter()
        ours = snaketune.GridSearchCV(model, grid, cv=cv, n_jobs=2, scoring="accuracy", study_dir=work).fit(X, y)
        c1, t1 = cpu_seconds(), time.perf_counter()
        theirs = ms.GridSearchCV(model, grid, cv=cv, n_jobs=2, scoring="accuracy").fit(X, y)
        c2, t2 = cpu_seconds(), time.perf_counter()
        same = bool(np.allclose(ours.cv_results_["mean_test_score"], theirs.cv_results_["mean_test_score"], 0, 1e-12))
        rows.append(
            {
                "step": name,
                "ours_s": t1 - t0,
                "sklearn_s": t2 - t1,
                "ours_cpu_s": c1 - c0,
                "sklearn_cpu_s": c2 - c1,
                "fits": len(theirs.cv_results_["params"]) * 5,
                "same_scores": same,
                "load": [load, os.getloadavg()[0]],
            }
        )
        print(rows[-1], flush=True)
    t0 = time.perf_counter()
    last = snaketune.GridSearchCV(model, grids()[-1][1], cv=cv, n_jobs=2, scoring="accuracy", study_dir=work)
    last.fit(X, y)
    noop = time.perf_counter() - t0
    time.sleep(2)
    return {
        "steps": rows,
        "noop_s": noop,
        "engine_noop_s": engine_noop(last.study_path_),
        "idle_rss_mb": engine_rss_mb(),
    }


def cpu_seconds() -> float:
    """CPU seconds (user + system) so far of this process and of every process under it: the
    engine with its finished runs and trials, and joblib's workers (they live on between fits)."""
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:4])  # user, system, and those of waited-for children
    for child in me.children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.Error:  # ended meanwhile: the part since the last reading is lost
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def engine_noop(study: Path) -> list[float]:
    """A Snakemake run with nothing to do through the engine (the last run's config again)."""
    import io

    from snaketune import engine
    from snaketune.api import snakemake_command

    cmd = snakemake_command(study / ".snaketune" / "search.yaml", 2, None, ["aggregate"])[3:]
    times = []
    for _ in range(5):
        output = io.StringIO()
        t0 = time.perf_counter()
        code, _ = engine.run(cmd, study.parents[1], output=output)
        times.append(time.perf_counter() - t0)
        assert code == 0 and "Nothing to be done" in output.getvalue(), output.getvalue()[-2000:]
    return times


def engine_rss_mb() -> float:
    import psutil

    from snaketune import engine

    return psutil.Process(engine.engine_pid()).memory_info().rss / 2**20


def tpe(work: Path) -> dict:
    import optuna
    from sklearn.model_selection import cross_val_score
    from sklearn.svm import SVC

    from snaketune import engine
    from snaketune.api import snakemake_command
    from snaketune.base.splits import load_splits

    config = yaml.safe_load((REPO / "examples" / "svc-digits-tpe.yaml").read_text())
    config["search"]["optuna"].update(seed=0, n_trials=60)
    folder = work / "tpe"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    engine.connect().close()  # started before timing, as after the session row (alone, this row would time its start)
    load = os.getloadavg()[0]
    with open(folder / "snakemake.log", "w") as log:
        # The rounds through the leaderboard (the target a Python search runs: what study.optimize
        # gives), then the rest of the whole run (plots, refit, report pages), timed apart.
        c0, t0 = cpu_seconds(), time.perf_counter()
        code, _ = engine.run(snakemake_command(folder / "config.yaml", 2, None, ["aggregate"])[3:], folder, output=log)
        ours, ours_cpu = time.perf_counter() - t0, cpu_seconds() - c0
        if code == 0:
            c1, t1 = cpu_seconds(), time.perf_counter()
            code, _ = engine.run(snakemake_command(folder / "config.yaml", 2)[3:], folder, output=log)
            rest, rest_cpu = time.perf_counter() - t1, cpu_seconds() - c1
    if code != 0:
        raise SystemExit(f"the TPE study failed: see {folder / 'snakemake.log'}")
    out = folder / "results" / config["study"]
    (data_dir,) = (out / "data").iterdir()
    (splits_file,) = (out / "splits").glob("*.npz")
    X, y, splits = np.load(data_dir / "X.npy"), np.load(data_dir / "y.npy"), load_splits(splits_file)

    def objective(trial):
        params = {
            "C": trial.suggest_float("C", 1e-10, 1e10, log=True),
            "gamma": trial.suggest_float("gamma", 1e-10, 1e10, log=True),
            "tol": trial.suggest_categorical("tol", [1e-4, 1e-3, 1e-2, 1e-1]),
        }
        return float(cross_val_score(SVC(**params), X, y, cv=splits, scoring="accuracy").mean())

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    c0, t0 = cpu_seconds(), time.perf_counter()
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0), direction="maximize")
    study.optimize(objective, n_trials=60, n_jobs=2)
    theirs, theirs_cpu = time.perf_counter() - t0, cpu_seconds() - c0
    import pandas as pd

    best = float(pd.read_csv(out / "leaderboard.csv")["mean_test_accuracy"].max())
    return {
        "rounds": round_costs(out),
        "ours_s": ours,
        "optuna_s": theirs,
        "ratio": ours / theirs,
        "rest_s": rest,
        "whole_ratio": (ours + rest) / theirs,
        "rest_cpu_s": rest_cpu,
        "ours_cpu_s": ours_cpu,
        "optuna_cpu_s": theirs_cpu,
        "best_ours": best,
        "best_optuna": study.best_value,
        "load": [load, os.getloadavg()[0]],
    }


def round_costs(out: Path) -> dict:
    """Where a TPE run's rounds lose time, from its job logs (created when a job's shell starts,
    last written when it ends) and trial records. Each round is one job that asks, then runs the
    round's trials on forks: Snakemake's hand-over from a round's job to the next one's, the
    start of a round (its job's shell to its first trial: the job client, the ask, the forks),
    and the round's imbalance (how much earlier one fork ends its last trial than the other: a
    core idle that long)."""
    import subprocess
    from datetime import datetime

    def span(path: Path) -> tuple[float, float]:  # birth and modification times (statx, via stat)
        birth, mtime = subprocess.run(["stat", "--format=%.6W %.6Y", str(path)], capture_output=True, text=True,
                                      check=True).stdout.split()  # fmt: skip
        return float(birth), float(mtime)

    def seconds(iso: str) -> float:
        return datetime.fromisoformat(iso).timestamp()

    records = [json.loads(p.read_text()) for p in (out / "trials").glob("o*.json")]
    sums = {"handover_s": 0.0, "round_start_s": 0.0, "imbalance_s": 0.0}
    previous_end = None
    for r in range(len(list((out / "optuna").glob("round-*.json")))):
        log = out / "logs" / "trials" / f"o{r}-0_0-batch.log"
        mine = [rec for rec in records if rec.get("round") == r]
        if not log.exists() or not mine:  # not one job a round: nothing to say
            return {}
        start, end = span(log)
        if not start:  # no birth times on this file system
            return {}
        sums["round_start_s"] += min(seconds(rec["start"]) for rec in mine) - start
        ends = {}
        for rec in mine:
            ends[rec["pid"]] = max(ends.get(rec["pid"], 0.0), seconds(rec["end"]))
        sums["imbalance_s"] += max(ends.values()) - min(ends.values())
        if previous_end is not None:
            sums["handover_s"] += start - previous_end
        previous_end = end
    return sums


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "search-cv.md"))
    parser.add_argument("--only", choices=("session", "tpe"), help="one of the two rows")
    args = parser.parse_args(argv)
    import sklearn.model_selection  # noqa: F401 - warm: both sides start with their imports done

    import snaketune.search_cv  # noqa: F401

    result: dict = {}
    with tempfile.TemporaryDirectory(prefix="st-search-cv-") as tmp:
        if args.only in (None, "session"):
            result["session"] = session(Path(tmp) / "session")
        if args.only in (None, "tpe"):
            result["tpe"] = tpe(Path(tmp))
    Path(args.out).with_suffix(".json").write_text(json.dumps(result, indent=1))
    Path(args.out).write_text(report(result))
    print(report(result))
    return 0


def report(result: dict) -> str:
    lines = ["# Drop-in searches on the warm engine (one warm Python process, 2 cores, one round)", ""]
    if "session" in result:
        s = result["session"]
        lines += [
            "| step | snaketune.GridSearchCV s | sklearn GridSearchCV s | CPU s ours / sklearn | sklearn fits "
            "| same scores | load |",
            "|---|---:|---:|---:|---:|---|---|",
        ]
        for r in s["steps"]:
            lines.append(
                f"| {r['step']} | {r['ours_s']:.2f} | {r['sklearn_s']:.2f} | {r['ours_cpu_s']:.1f} / "
                f"{r['sklearn_cpu_s']:.1f} | {r['fits']} | {r['same_scores']} | {r['load'][0]:.1f}-{r['load'][1]:.1f} |"
            )
        ours = sum(r["ours_s"] for r in s["steps"])
        theirs = sum(r["sklearn_s"] for r in s["steps"])
        cpu = sum(r["ours_cpu_s"] for r in s["steps"]), sum(r["sklearn_cpu_s"] for r in s["steps"])
        lines += [
            f"| **session** | **{ours:.2f}** | **{theirs:.2f}** | {cpu[0]:.1f} / {cpu[1]:.1f} | | | |",
            "",
            f"Session: **{theirs / ours:.2f}x** in our favour (target >= {TARGETS['session_speedup']:g}x). "
            f"The same fit again (every trial there, Snakemake not started): {s['noop_s']:.2f} s. A Snakemake "
            f"run with nothing to do through the engine: median {statistics.median(s['engine_noop_s']):.2f} s of 5 "
            f"(target <= {TARGETS['noop_s']} s). "
            f"Engine idle RSS: {s['idle_rss_mb']:.0f} MB (target <= {TARGETS['idle_rss_mb']} MB).",
            "",
        ]
    if "tpe" in result:
        t = result["tpe"]
        lines += [
            f"TPE rounds (60 configurations, rounds of 6, through the engine to the leaderboard): {t['ours_s']:.1f} s; "
            f"Optuna `study.optimize(n_jobs=2)` in this process: {t['optuna_s']:.1f} s; ratio **{t['ratio']:.2f}** "
            f"(target <= {TARGETS['tpe_ratio']}); best mean CV accuracy {t['best_ours']:.4f} vs "
            f"{t['best_optuna']:.4f}; CPU {t['ours_cpu_s']:.1f} s vs {t['optuna_cpu_s']:.1f} s; "
            f"load {t['load'][0]:.1f}-{t['load'][1]:.1f}.",
        ]
        if "rest_s" in t:
            lines += [
                "",
                f"The rest of the whole run (plots, refit, report pages; Optuna's side has none of them): "
                f"{t['rest_s']:.1f} s, {t['rest_cpu_s']:.1f} CPU-s; the whole run against Optuna: "
                f"{t['whole_ratio']:.2f}.",
            ]
        if t.get("rounds"):
            r = t["rounds"]
            lines += [
                "",
                f"Where the rounds lose time (sums over the rounds, from the job logs and trial records): "
                f"Snakemake's hand-over from a round's job to the next {r['handover_s']:.2f} s; a round job's "
                f"start to its first trial (job client, ask, forks) {r['round_start_s']:.2f} s; one fork ends "
                f"its last trial {r['imbalance_s']:.2f} s before the other (a core idle meanwhile).",
            ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
