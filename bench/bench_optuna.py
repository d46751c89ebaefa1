"""Benchmark: snaketune's model-based search (TPE in rounds) against random search and Optuna's own.

    .venv/bin/python bench/bench_optuna.py                       # 5 seeds, 60 configurations
    .venv/bin/python bench/bench_optuna.py --seeds 1 --n-trials 20 --out /tmp/optuna-bench.json

The seed notebook's SVC/digits space (``examples/svc-digits-tpe.yaml``: C and gamma log-uniform on
[1e-10, 1e10], tol in {1e-4 ... 1e-1}), stratified 5-fold, for every seed s:

* **snaketune TPE**: ``snakemake --cores N`` on the example with ``seed: s`` (60 configurations in
  rounds of 6), a whole process from a fresh folder (trials, leaderboard, plots, refit, report);
  the best mean CV accuracy after 15, 30 and 60 configurations in the order they were asked.
* **random search**: scikit-learn's ``RandomizedSearchCV`` (``n_iter`` 60, ``random_state`` s: the
  candidates snaketune's ``random`` search runs for seed s) on snaketune's prepared rows and folds;
  the best after 15, 30 and 60 candidates in sampling order.
* **Optuna's own**: ``study.optimize(objective, n_trials=60, n_jobs=N)`` with ``TPESampler(seed=s)``
  in a whole new Python (imports included), the objective the same mean CV accuracy with
  ``cross_val_score`` on the same rows and folds; its best after 15/30/60 in trial-number order.

Reported: medians over seeds of the bests and of the wall times, TPE's wall against Optuna's own
as a ratio of medians (same machine, same run, load average noted). Results go to
``bench/results/optuna.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import measure  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHECKPOINTS = (15, 30, 60)
TARGETS = {"tpe_30_vs_random_60": 0.0, "wall_ratio": 1.3}

OWN = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np, optuna
from sklearn.model_selection import cross_val_score
from sklearn.svm import SVC
spec = json.load(open(sys.argv[1]))
X, y = np.load(spec["X"]), np.load(spec["y"])
with np.load(spec["splits"]) as npz:
    splits = [(npz[f"train_{k}"], npz[f"test_{k}"]) for k in range(len(npz.files) // 2)]
optuna.logging.set_verbosity(optuna.logging.WARNING)
def objective(trial):
    params = {
        "C": trial.suggest_float("C", 1e-10, 1e10, log=True),
        "gamma": trial.suggest_float("gamma", 1e-10, 1e10, log=True),
        "tol": trial.suggest_categorical("tol", [1e-4, 1e-3, 1e-2, 1e-1]),
    }
    return float(cross_val_score(SVC(**params), X, y, cv=splits, scoring="accuracy").mean())
study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=spec["seed"]), direction="maximize")
study.optimize(objective, n_trials=spec["n_trials"], n_jobs=spec["n_jobs"])
trials = sorted(study.trials, key=lambda t: t.number)
json.dump({"values": [t.value for t in trials], "seconds": time.perf_counter() - t0}, open(sys.argv[2], "w"))
"""


def best_after(values, checkpoints=CHECKPOINTS) -> dict:
    """Best value among the first n, for each checkpoint n (NaN/None count as failed)."""
    clean = np.array([np.nan if v is None else v for v in values], dtype=float)
    return {n: float(np.nanmax(clean[:n])) for n in checkpoints if n <= len(clean)}


def run_snaketune(seed: int, n_trials: int, cores: int, work: Path) -> tuple[dict, dict, Path]:
    config = yaml.safe_load((REPO / "examples" / "svc-digits-tpe.yaml").read_text())
    config["study"] = f"tpe-{seed}"
    config["search"]["optuna"].update(seed=seed, n_trials=n_trials)
    workdir = work / f"tpe-{seed}"
    workdir.mkdir(parents=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", str(cores)]
    m = measure.run(cmd, log_path=workdir / "snakemake.log", timeout=3600)
    if m.returncode != 0:
        raise SystemExit(f"snakemake failed, see {workdir / 'snakemake.log'}")
    import pandas as pd

    out = workdir / "results" / config["study"]
    frame = pd.read_csv(out / "leaderboard.csv").sort_values("number")
    result = m.to_dict()
    # The work itself: CPU of every fit and score, from the trial files.
    trials = [json.loads(p.read_text()) for p in (out / "trials").glob("*.json")]
    result["fit_score_cpu_s"] = sum(t["fit_cpu"] + t["score_cpu"] for t in trials)
    return best_after(frame["mean_test_accuracy"].tolist()), result, out


def prepared(out: Path) -> dict:
    (data_dir,) = (out / "data").iterdir()
    (splits,) = (out / "splits").glob("*.npz")
    return {"X": str(data_dir / "X.npy"), "y": str(data_dir / "y.npy"), "splits": str(splits)}


def run_random(seed: int, n_trials: int, cores: int, files: dict) -> dict:
    from sklearn.model_selection import RandomizedSearchCV
    from sklearn.svm import SVC

    from snaketune.base.splits import load_splits
    from snaketune.search.space import expand_space

    config = yaml.safe_load((REPO / "examples" / "svc-digits.yaml").read_text())
    (dists,) = expand_space(config["search"]["random"]["params"])
    X, y = np.load(files["X"]), np.load(files["y"])
    search = RandomizedSearchCV(
        SVC(), dists, n_iter=n_trials, random_state=seed, cv=load_splits(files["splits"]), n_jobs=cores, refit=False
    )
    search.fit(X, y)
    return best_after(search.cv_results_["mean_test_score"].tolist())


def run_own(seed: int, n_trials: int, cores: int, files: dict, work: Path) -> tuple[dict, dict]:
    spec = dict(files, seed=seed, n_trials=n_trials, n_jobs=cores)
    spec_path, result_path, script = work / f"own-{seed}.json", work / f"own-{seed}-result.json", work / "own.py"
    spec_path.write_text(json.dumps(spec))
    script.write_text(OWN)
    m = measure.run([sys.executable, str(script), str(spec_path), str(result_path)], log_path=work / f"own-{seed}.log")
    if m.returncode != 0:
        raise SystemExit(f"Optuna's own run failed, see {work / f'own-{seed}.log'}")
    return best_after(json.loads(result_path.read_text())["values"]), m.to_dict()


def median_table(rows: list[dict], key: str) -> dict:
    return {n: statistics.median(r[key][n] for r in rows) for n in rows[0][key]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n-trials", type=int, default=60)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "optuna.json"))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-optuna-") as tmp:
        work = Path(tmp)
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            tpe, ours, out = run_snaketune(seed, args.n_trials, args.cores, work)
            files = prepared(out)
            own, theirs = run_own(seed, args.n_trials, args.cores, files, work)
            random_best = run_random(seed, args.n_trials, args.cores, files)
            rows.append(
                {
                    "seed": seed,
                    "tpe": tpe,
                    "random": random_best,
                    "optuna_own": own,
                    "wall_snaketune_s": ours["wall_s"],
                    "wall_optuna_own_s": theirs["wall_s"],
                    "cpu_snaketune_s": ours["cpu_s"],
                    "cpu_optuna_own_s": theirs["cpu_s"],
                    "fit_score_cpu_snaketune_s": ours["fit_score_cpu_s"],
                    "load_snaketune": [ours["loadavg_before"], ours["loadavg_after"]],
                    "load_optuna_own": [theirs["loadavg_before"], theirs["loadavg_after"]],
                }
            )
            print(json.dumps(rows[-1]), f"({time.perf_counter() - t0:.0f} s)", flush=True)
            write(rows, args)  # after every seed: a run cut short still leaves its figures
    return 0


def write(rows: list[dict], args) -> None:
    walls = (
        statistics.median(r["wall_snaketune_s"] for r in rows),
        statistics.median(r["wall_optuna_own_s"] for r in rows),
    )
    summary = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cores": args.cores,
        "seeds": len(rows),
        "n_trials": args.n_trials,
        "median_best": {k: median_table(rows, k) for k in ("tpe", "random", "optuna_own")},
        "median_wall_s": {"snaketune_tpe": walls[0], "optuna_own": walls[1]},
        "wall_ratio": walls[0] / walls[1],
        "median_cpu_s": {
            "snaketune_tpe": statistics.median(r["cpu_snaketune_s"] for r in rows),
            "optuna_own": statistics.median(r["cpu_optuna_own_s"] for r in rows),
        },
        "targets": TARGETS,
        "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1))
    out.with_suffix(".md").write_text(markdown(summary))
    print(markdown(summary), flush=True)


def markdown(s: dict) -> str:
    lines = [
        f"# TPE in rounds vs random search vs Optuna's own ({s['when']}, {s['cores']} cores, "
        f"{s['seeds']} seeds, {s['n_trials']} configurations)\n",
        "| median best mean CV accuracy after | " + " | ".join(str(n) for n in s["median_best"]["tpe"]) + " |",
        "|---|" + "---|" * len(s["median_best"]["tpe"]),
    ]
    names = {"tpe": "snaketune TPE (rounds of 6)", "random": "random search", "optuna_own": "Optuna's own TPE (n_jobs)"}
    for key, name in names.items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in s["median_best"][key].values()) + " |")
    w = s["median_wall_s"]
    lines.append(
        f"\nWall (median, whole processes): snaketune {w['snaketune_tpe']:.1f} s, Optuna's own "
        f"{w['optuna_own']:.1f} s: ratio {s['wall_ratio']:.2f} (target <= {s['targets']['wall_ratio']}).\n"
        f"CPU (median, process trees): snaketune {s['median_cpu_s']['snaketune_tpe']:.1f} s, Optuna's own "
        f"{s['median_cpu_s']['optuna_own']:.1f} s.\n"
        "Load averages before/after each run are in the JSON rows; the machine is shared.\n"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
