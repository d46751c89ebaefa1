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
* **Optuna's own in rounds**: the same sampler driven by ask 6 / tell 6 (Optuna's batch
  optimisation), the 6 configurations' folds in a pool of N threads. It asks exactly the
  configurations snaketune's rounds ask (checked: same scores in the same order), so its wall
  time is the same work without Snakemake; ``study.optimize`` asks other configurations, whose
  fits may cost more or less. Each Optuna run also reports the CPU of its fits and scores.

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
import json, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
t0 = time.perf_counter()
import numpy as np, optuna
from sklearn.model_selection import cross_val_score
from sklearn.svm import SVC
spec = json.load(open(sys.argv[1]))
X, y = np.load(spec["X"]), np.load(spec["y"])
with np.load(spec["splits"]) as npz:
    splits = [(npz[f"train_{k}"], npz[f"test_{k}"]) for k in range(len(npz.files) // 2)]
optuna.logging.set_verbosity(optuna.logging.WARNING)
work, lock = [0.0], threading.Lock()
def suggest(trial):
    return {
        "C": trial.suggest_float("C", 1e-10, 1e10, log=True),
        "gamma": trial.suggest_float("gamma", 1e-10, 1e10, log=True),
        "tol": trial.suggest_categorical("tol", [1e-4, 1e-3, 1e-2, 1e-1]),
    }
def score(params, cv):
    # The fits' own CPU (this thread's), to compare the work each sampler chose.
    c0 = time.thread_time()
    value = cross_val_score(SVC(**params), X, y, cv=cv, scoring="accuracy")
    with lock:
        work[0] += time.thread_time() - c0
    return value
study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=spec["seed"]), direction="maximize")
if spec["mode"] == "optimize":
    study.optimize(lambda trial: float(score(suggest(trial), splits).mean()), n_trials=spec["n_trials"], n_jobs=spec["n_jobs"])
else:
    # Optuna's batch optimisation (ask batch_size, tell them in order), each configuration's
    # folds in a pool of n_jobs threads: the call sequence of snaketune's rounds.
    with ThreadPoolExecutor(spec["n_jobs"]) as pool:
        for start in range(0, spec["n_trials"], spec["batch_size"]):
            asked = [study.ask() for _ in range(spec["batch_size"])]
            params = [suggest(t) for t in asked]
            futures = [[pool.submit(score, p, [fold]) for fold in splits] for p in params]
            for t, folds in zip(asked, futures):
                if t.number < spec["n_trials"]:
                    study.tell(t, float(np.mean([f.result()[0] for f in folds])))
trials = sorted((t for t in study.trials if t.value is not None), key=lambda t: t.number)
result = {"values": [t.value for t in trials], "params": [t.params for t in trials], "work_s": work[0]}
json.dump(dict(result, seconds=time.perf_counter() - t0), open(sys.argv[2], "w"))
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
    values = frame["mean_test_accuracy"].tolist()
    return dict(best_after(values), values=values), result, out


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


def run_own(seed: int, n_trials: int, cores: int, files: dict, work: Path, mode: str = "optimize") -> tuple[dict, dict]:
    """Optuna in a new Python: ``optimize`` (``study.optimize(n_jobs=cores)``) or ``rounds``
    (ask ``batch_size``, tell them, as snaketune does; the same configurations as ours)."""
    batch_size = yaml.safe_load((REPO / "examples" / "svc-digits-tpe.yaml").read_text())["search"]["optuna"][
        "batch_size"
    ]
    spec = dict(files, seed=seed, n_trials=n_trials, n_jobs=cores, mode=mode, batch_size=batch_size)
    name = f"own-{mode}-{seed}"
    spec_path, result_path, script = work / f"{name}.json", work / f"{name}-result.json", work / "own.py"
    spec_path.write_text(json.dumps(spec))
    script.write_text(OWN)
    m = measure.run([sys.executable, str(script), str(spec_path), str(result_path)], log_path=work / f"{name}.log")
    if m.returncode != 0:
        raise SystemExit(f"Optuna's own run failed, see {work / f'{name}.log'}")
    result = json.loads(result_path.read_text())
    return best_after(result["values"]), dict(m.to_dict(), work_s=result["work_s"], values=result["values"])


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
            _, rounds = run_own(seed, args.n_trials, args.cores, files, work, mode="rounds")
            random_best = run_random(seed, args.n_trials, args.cores, files)
            # Our rounds must ask what Optuna's own ask-k/tell-k asks: same scores, same order.
            same = len(tpe["values"]) == len(rounds["values"]) and np.allclose(
                tpe["values"], rounds["values"], rtol=0, atol=1e-12, equal_nan=True
            )
            rows.append(
                {
                    "seed": seed,
                    "tpe": {n: v for n, v in tpe.items() if n != "values"},
                    "random": random_best,
                    "optuna_own": own,
                    "wall_snaketune_s": ours["wall_s"],
                    "wall_optuna_own_s": theirs["wall_s"],
                    "wall_optuna_rounds_s": rounds["wall_s"],
                    "cpu_snaketune_s": ours["cpu_s"],
                    "cpu_optuna_own_s": theirs["cpu_s"],
                    "cpu_optuna_rounds_s": rounds["cpu_s"],
                    "fit_score_cpu_snaketune_s": ours["fit_score_cpu_s"],
                    "fit_score_cpu_optuna_own_s": theirs["work_s"],
                    "fit_score_cpu_optuna_rounds_s": rounds["work_s"],
                    "rounds_ask_what_we_ask": bool(same),
                    "load_snaketune": [ours["loadavg_before"], ours["loadavg_after"]],
                    "load_optuna_own": [theirs["loadavg_before"], theirs["loadavg_after"]],
                    "load_optuna_rounds": [rounds["loadavg_before"], rounds["loadavg_after"]],
                }
            )
            print(json.dumps(rows[-1]), f"({time.perf_counter() - t0:.0f} s)", flush=True)
            write(rows, args)  # after every seed: a run cut short still leaves its figures
    return 0


def write(rows: list[dict], args) -> None:
    def med(key):
        return statistics.median(r[key] for r in rows)

    walls = (med("wall_snaketune_s"), med("wall_optuna_own_s"), med("wall_optuna_rounds_s"))
    summary = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cores": args.cores,
        "seeds": len(rows),
        "n_trials": args.n_trials,
        "median_best": {k: median_table(rows, k) for k in ("tpe", "random", "optuna_own")},
        "median_wall_s": {"snaketune_tpe": walls[0], "optuna_own": walls[1], "optuna_rounds": walls[2]},
        "wall_ratio": walls[0] / walls[1],
        "wall_ratio_same_configurations": walls[0] / walls[2],
        "median_cpu_s": {
            "snaketune_tpe": med("cpu_snaketune_s"),
            "optuna_own": med("cpu_optuna_own_s"),
            "optuna_rounds": med("cpu_optuna_rounds_s"),
        },
        # CPU of the fits and scores alone: how much work each run's configurations were.
        "median_fit_score_cpu_s": {
            "snaketune_tpe": med("fit_score_cpu_snaketune_s"),
            "optuna_own": med("fit_score_cpu_optuna_own_s"),
            "optuna_rounds": med("fit_score_cpu_optuna_rounds_s"),
        },
        "rounds_ask_what_we_ask": all(r["rounds_ask_what_we_ask"] for r in rows),
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
    w, c, f = s["median_wall_s"], s["median_cpu_s"], s["median_fit_score_cpu_s"]
    lines += [
        "",
        "| median over seeds | wall s | CPU s (process tree) | CPU s of fits and scores |",
        "|---|---:|---:|---:|",
    ]
    for key, name in (
        ("snaketune_tpe", "snaketune TPE, rounds of 6 (whole run: trials, leaderboard, plots, refit, report)"),
        ("optuna_own", "Optuna's own `study.optimize(n_jobs)`"),
        ("optuna_rounds", "Optuna's own ask 6 / tell 6, folds in a thread pool (our configurations)"),
    ):
        lines.append(f"| {name} | {w[key]:.1f} | {c[key]:.1f} | {f[key]:.1f} |")
    lines.append(
        f"\nWall ratio against `study.optimize`: {s['wall_ratio']:.2f} (target <= {s['targets']['wall_ratio']}); "
        f"against ask 6 / tell 6, which asks the same configurations: {s['wall_ratio_same_configurations']:.2f}. "
        f"Ask 6 / tell 6 asked exactly our configurations (same scores, same order) for every seed: "
        f"{'yes' if s['rounds_ask_what_we_ask'] else 'NO'}.\n"
        "Load averages before/after each run are in the JSON rows.\n"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
