"""Benchmark: snaketune (real Snakemake, warm worker) against GridSearchCV / RandomizedSearchCV.

    make bench                                   # the full run (~10-20 min on 2 cores)
    .venv/bin/python bench/run.py --quick        # every workload shrunk (~3 min)
    .venv/bin/python bench/run.py --cores 2 --only tiny,medium --out /tmp/bench

Each side runs as a WHOLE PROCESS, imports included, on the same machine in the same run:
ours is ``snakemake -s Snakefile --directory WORKDIR --cores N`` from a fresh results folder (the
default target: trials, leaderboard, plots, refit, report pages); scikit-learn's is
``python bench/sklearn_search.py`` (GridSearchCV / RandomizedSearchCV with ``n_jobs=N``, refit on)
on the same estimator, the same candidates, snaketune's prepared ``X.npy``/``y.npy`` and its stored
CV splits passed as ``cv=[(train, test), ...]``.

Workloads (``--only`` names):
  tiny    kNN on iris, k 1..30 x 4 distances x stratified 5-fold (600 trials); ours with
          trials_per_job 1 and auto
  medium  SVC on digits, 60 sampled (C, gamma, tol) x stratified 5-fold
  heavy   RandomForest (n_jobs=1) on 20k-row make_classification, 40 sampled x 5 folds
  rerun   a finished 10,000-trial study (kNN/iris, 2000 configurations, trials_per_job auto):
          no-change dry run and real run, then one configuration added
  cores   the medium workload again with --cores 1 (ours) / n_jobs=1 (scikit-learn)

The physical limit of a workload is sum(fit_cpu + score_cpu) / N over our trial files (and,
for comparison, sum(fit + score wall) / N from GridSearchCV's cv_results_). Memory: the peak sum
of RSS over each process tree (psutil, every 50 ms; an upper bound, forked children share pages)
and ru_maxrss (largest single process, exact). Results go to bench/results/bench.{json,csv,md}
(--quick: bench-quick.{json,csv,md}).
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import measure  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SNAKEMAKE = str(BIN / "snakemake")
WORKLOADS = ("tiny", "medium", "heavy", "rerun", "cores")
TIMEOUT = 1800

TARGETS = {  # issue #16, "Fast by default"
    "tiny": 1.5,  # ours / sklearn wall
    "medium": 1.15,  # no trials_per_job in the config: the default (auto)
    "heavy": 1.10,
    "heavy_limit": 1.15,  # ours / (sum CPU / N)
    "rerun_s": 5.0,
    "add_one_s": 5.0,
    "speedup": 1.8,
    "worker_extra_mb": 200.0,
}

CV = {"kind": "stratified", "n_splits": 5, "shuffle": True, "seed": 0}


# --- workload definitions (snaketune config format) ---------------------------------------------


def tiny_config(quick: bool, trials_per_job, k_max: int | None = None) -> dict:
    k_max = k_max or (10 if quick else 30)
    return {
        "study": "knn-iris",
        "data": {"loader": "iris"},
        "estimator": {"class": "sklearn.neighbors.KNeighborsClassifier"},
        "search": {
            "grid": {
                "n_neighbors": {"range": [1, k_max + 1]},
                "metric": ["euclidean", "manhattan", "chebyshev", "braycurtis"],
            }
        },
        "cv": dict(CV),
        "scoring": "accuracy",
        "trials_per_job": trials_per_job,
    }


def medium_config(quick: bool) -> dict:
    return {
        "study": "svc-digits",
        "data": {"loader": "digits"},
        "estimator": {"class": "sklearn.svm.SVC"},
        "search": {
            "random": {
                "n_iter": 12 if quick else 60,
                "seed": 0,
                "params": {
                    "C": {"loguniform": [1e-10, 1e10]},
                    "gamma": {"loguniform": [1e-10, 1e10]},
                    "tol": [1e-4, 1e-3, 1e-2, 1e-1],
                },
            }
        },
        "cv": dict(CV),
        "scoring": "accuracy",
    }


def heavy_config(quick: bool) -> dict:
    return {
        "study": "rf-classification",
        "data": {
            "generator": "make_classification",
            "params": {"n_samples": 4000 if quick else 20000, "n_features": 20, "n_informative": 10},
            "seed": 0,
        },
        "estimator": {"class": "sklearn.ensemble.RandomForestClassifier", "params": {"n_jobs": 1}},
        "search": {
            "random": {
                "n_iter": 6 if quick else 40,
                "seed": 0,
                # ~1 CPU-s a fit on 16k training rows (10-40 trees).
                "params": {
                    "n_estimators": {"randint": [10, 41]},
                    "max_depth": [8, 12, 16, None],
                    "max_features": ["sqrt", "log2"],
                    "min_samples_leaf": {"randint": [1, 5]},
                },
            }
        },
        "cv": dict(CV),
        "scoring": "accuracy",
    }


def study_config(quick: bool, n_iter: int | None = None) -> dict:
    """2000 sampled configurations x 5 folds = 10,000 trials (quick: 400 x 5 = 2,000).

    A random search with a continuous parameter (Minkowski ``p``): every draw is a new
    configuration, and ``n_iter + 1`` keeps the first ``n_iter`` draws and adds exactly one.
    (A grid given as a list of dicts would also add one, but the report page fails on it.)
    """
    return {
        "study": "knn-iris-10k",
        "data": {"loader": "iris"},
        "estimator": {"class": "sklearn.neighbors.KNeighborsClassifier"},
        "search": {
            "random": {
                "n_iter": n_iter or (400 if quick else 2000),
                "seed": 0,
                "params": {
                    "n_neighbors": {"randint": [1, 60]},
                    "weights": ["uniform", "distance"],
                    "p": {"uniform": [1, 4]},
                },
            }
        },
        "cv": dict(CV),
        "scoring": "accuracy",
        "trials_per_job": "auto",
    }


# --- running the two sides ----------------------------------------------------------------------


def write_config(workdir: Path, config: dict) -> None:
    import yaml

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def snakemake(workdir: Path, *args, cores: int, log_name: str) -> tuple[measure.Measurement, str]:
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", str(cores), *args]
    log_path = workdir / log_name
    m = measure.run(cmd, cwd=workdir, log_path=log_path, timeout=TIMEOUT)
    text = log_path.read_text(errors="replace")
    if m.returncode != 0:
        raise RuntimeError(f"snakemake failed ({m.returncode}) in {workdir}:\n{text[-4000:]}")
    if "Job stats:" not in text:  # the quiet terminal leaves the job table to Snakemake's complete log
        for path in re.findall(r"^Complete log\(s\): (.+)$", text, re.M):
            text += "\n" + Path(path.strip()).read_text(errors="replace")
    return m, text


def job_stats(text: str) -> dict[str, int]:
    """Jobs per rule from Snakemake's first "Job stats:" table (empty when nothing ran)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "Job stats:":
            stats = {}
            for row in lines[i + 3 :]:
                parts = row.split()
                if len(parts) != 2 or not parts[1].isdigit():
                    break
                stats[parts[0]] = int(parts[1])
            return stats
    return {}


def trial_jobs(stats: dict[str, int]) -> int:
    return sum(n for rule, n in stats.items() if rule == "trial" or rule.startswith("trials_"))


def read_trials(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "trials").glob("*.json"))]


def summarise_ours(out: Path, m: measure.Measurement, text: str, cores: int) -> dict:
    records = read_trials(out)
    cpu = sum(r["fit_cpu"] + r["score_cpu"] for r in records)
    wall = sum(r["fit_time"] + r["score_time"] for r in records)
    starts = [measure.epoch(r["start"]) for r in records]
    ends = [measure.epoch(r["end"]) for r in records if r.get("end")]
    (splits,) = sorted((out / "splits").glob("*.npz"))
    (data_dir,) = sorted(p for p in (out / "data").iterdir() if p.is_dir())
    t0 = m.start_epoch
    model = out / "model.pkl"
    memo = out / ".snaketune" / "trials_per_job.json"
    stats = job_stats(text)
    return {
        "wall_s": m.wall_s,
        "cpu_s": m.cpu_s,
        "cores": cores,
        "trials": len(records),
        "trials_ok": sum(r["status"] == "ok" for r in records),
        "trial_jobs": trial_jobs(stats),
        "jobs": stats.get("total", sum(stats.values())),
        "trials_per_job": json.loads(memo.read_text()) if memo.exists() else None,
        "sum_trial_cpu_s": cpu,
        "sum_trial_wall_s": wall,
        "limit_s": cpu / cores,
        # Where the wall time goes: before the first trial starts (parse, worker start, data,
        # splits), the span of trials, and after the last one (aggregate, plots, refit, report).
        "phase_before_trials_s": min(starts) - t0 if starts else None,
        "phase_trials_s": max(ends) - min(starts) if starts and ends else None,
        "phase_after_trials_s": (t0 + m.wall_s) - max(ends) if ends else None,
        "timeline_s": measure.timeline(out, t0),
        "data_mb": sum((data_dir / f).stat().st_size for f in ("X.npy", "y.npy")) / measure.MB,
        "model_mb": model.stat().st_size / measure.MB if model.exists() else None,
        "splits": str(splits),
        "data_dir": str(data_dir),
        "measure": m.to_dict(),
    }


def run_ours(name: str, config: dict, root: Path, cores: int) -> tuple[dict, Path]:
    workdir = root / name
    if workdir.exists():
        shutil.rmtree(workdir)
    write_config(workdir, config)
    m, text = snakemake(workdir, cores=cores, log_name="snakemake.log")
    out = workdir / "results" / config["study"]
    summary = summarise_ours(out, m, text, cores)
    print(
        f"  ours  {name:<22} {m.wall_s:8.2f} s  ({summary['trials']} trials, {summary['trial_jobs']} trial jobs)",
        flush=True,
    )
    return summary, out


def run_sklearn(name: str, config: dict, ours: dict, root: Path, n_jobs: int) -> dict:
    workdir = root / f"{name}-sklearn"
    workdir.mkdir(parents=True, exist_ok=True)
    scoring = config["scoring"] if isinstance(config["scoring"], list) else [config["scoring"]]
    spec = {
        "estimator": config["estimator"],
        "seed": config.get("seed", 0),
        "search": config["search"],
        "scoring": scoring,
        "refit": scoring[0],
        "n_jobs": n_jobs,
        "X": str(Path(ours["data_dir"]) / "X.npy"),
        "y": str(Path(ours["data_dir"]) / "y.npy"),
        "splits": ours["splits"],
    }
    (workdir / "spec.json").write_text(json.dumps(spec))
    result_path = workdir / "result.json"
    result_path.unlink(missing_ok=True)
    cmd = [sys.executable, str(REPO / "bench" / "sklearn_search.py"), str(workdir / "spec.json"), str(result_path)]
    m = measure.run(cmd, cwd=workdir, log_path=workdir / "sklearn.log", timeout=TIMEOUT)
    if m.returncode != 0:
        raise RuntimeError(f"sklearn search failed:\n{(workdir / 'sklearn.log').read_text()[-4000:]}")
    result = json.loads(result_path.read_text())
    summary = {
        "wall_s": m.wall_s,
        "cpu_s": m.cpu_s,
        "n_jobs": n_jobs,
        "class": result["class"],
        "fits": result["n_candidates"] * result["n_splits"],
        "t_imports_s": result["t_imports"],
        "t_fit_s": result["t_fit"],
        "refit_s": result["refit_time"],
        "sum_trial_wall_s": result["sum_fit_time"] + result["sum_score_time"],
        "limit_wall_s": (result["sum_fit_time"] + result["sum_score_time"]) / n_jobs,
        "best_score": result["best_score"],
        "measure": m.to_dict(),
        "_result": result,
    }
    print(f"  sklearn {name:<20} {m.wall_s:8.2f} s  ({summary['fits']} fits, {result['class']})", flush=True)
    return summary


def parity(out: Path, sk: dict) -> dict:
    """Do both sides evaluate the same candidates with the same mean test scores?"""
    import numpy as np

    result = sk.pop("_result")
    records = read_trials(out)
    ours: dict[str, list] = {}
    for r in records:
        score = next(iter(r["test_scores"].values()))
        ours.setdefault(json.dumps(r["params"], sort_keys=True), []).append(np.nan if score is None else score)
    theirs = {
        json.dumps(p, sort_keys=True): s for p, s in zip(result["params"], result["mean_test_score"], strict=True)
    }
    same = set(ours) == set(theirs)
    diffs = []
    for key in set(ours) & set(theirs):
        a = float(np.mean(ours[key]))
        b = np.nan if theirs[key] is None else theirs[key]
        if np.isnan(a) and np.isnan(b):
            continue
        diffs.append(abs(a - b) if not (np.isnan(a) or np.isnan(b)) else np.inf)
    return {
        "same_candidates": same,
        "candidates_ours": len(ours),
        "candidates_sklearn": len(theirs),
        "max_abs_score_diff": float(max(diffs)) if diffs else 0.0,
    }


def side_by_side(name: str, ours: dict, sk: dict) -> dict:
    return {
        "ours": ours,
        "sklearn": sk,
        "ratio": ours["wall_s"] / sk["wall_s"],
        "cpu_ratio": ours["cpu_s"] / sk["cpu_s"] if sk["cpu_s"] else None,
        "limit_s": ours["limit_s"],
        "ours_over_limit": ours["wall_s"] / ours["limit_s"] if ours["limit_s"] else None,
        "sklearn_over_limit": sk["wall_s"] / ours["limit_s"] if ours["limit_s"] else None,
        "sklearn_over_own_limit": sk["wall_s"] / sk["limit_wall_s"] if sk["limit_wall_s"] else None,
    }


# --- workloads ----------------------------------------------------------------------------------


def bench_tiny(args, root: Path) -> dict:
    print("tiny: kNN/iris", flush=True)
    per_job, out1 = run_ours("tiny-tpj1", tiny_config(args.quick, 1, args.tiny_k), root, args.cores)
    auto, _ = run_ours("tiny-auto", tiny_config(args.quick, "auto", args.tiny_k), root, args.cores)
    sk = run_sklearn("tiny", tiny_config(args.quick, 1, args.tiny_k), per_job, root, args.cores)
    check = parity(out1, sk)
    return {
        "trials": per_job["trials"],
        "trials_per_job_1": side_by_side("tiny", per_job, sk),
        "trials_per_job_auto": side_by_side("tiny", auto, sk),
        "parity": check,
    }


def bench_simple(name: str, config: dict, args, root: Path) -> dict:
    print(f"{name}: {config['estimator']['class']}", flush=True)
    ours, out = run_ours(name, config, root, args.cores)
    sk = run_sklearn(name, config, ours, root, args.cores)
    row = side_by_side(name, ours, sk)
    row["trials"] = ours["trials"]
    row["parity"] = parity(out, sk)
    return row


def bench_cores(args, root: Path, medium: dict | None) -> dict:
    print("cores: medium workload on 1 core", flush=True)
    config = medium_config(args.quick)
    if medium is None:
        medium = bench_simple("medium", config, args, root)
    one, out = run_ours("medium-cores1", config, root, 1)
    sk1 = run_sklearn("medium-njobs1", config, one, root, 1)
    sk1.pop("_result", None)
    return {
        "cores": args.cores,
        "ours_cores1_s": one["wall_s"],
        "ours_coresN_s": medium["ours"]["wall_s"],
        "speedup": one["wall_s"] / medium["ours"]["wall_s"],
        # The span from the first trial's start to the last one's end, without the fixed costs.
        "trials_phase_speedup": one["phase_trials_s"] / medium["ours"]["phase_trials_s"],
        "sklearn_njobs1_s": sk1["wall_s"],
        "sklearn_njobsN_s": medium["sklearn"]["wall_s"],
        "sklearn_speedup": sk1["wall_s"] / medium["sklearn"]["wall_s"],
        "ours_cores1": one,
        "sklearn_njobs1": sk1,
    }


def bench_rerun(args, root: Path) -> dict:
    config = study_config(args.quick)
    print("rerun: finished study", flush=True)
    build, out = run_ours("study", config, root, args.cores)
    workdir = out.parents[1]
    dry, dry_text = snakemake(workdir, "-n", cores=args.cores, log_name="dry-run.log")
    real, real_text = snakemake(workdir, cores=args.cores, log_name="no-change.log")
    print(f"  no-change rerun: dry run {dry.wall_s:.2f} s, real run {real.wall_s:.2f} s", flush=True)
    grown = copy.deepcopy(config)
    grown["search"]["random"]["n_iter"] += 1
    write_config(workdir, grown)
    before = {p.name for p in (out / "trials").glob("*.json")}
    add, add_text = snakemake(workdir, cores=args.cores, log_name="add-one.log")
    records = read_trials(out)
    computed = [r for r in records if measure.epoch(r["start"]) >= add.start_epoch]
    new_files = {p.name for p in (out / "trials").glob("*.json")} - before
    stats = job_stats(add_text)
    print(
        f"  add one configuration: {add.wall_s:.2f} s, {trial_jobs(stats)} trial jobs, {len(computed)} trials computed",
        flush=True,
    )
    return {
        "trials": build["trials"],
        "build": build,
        "dry_run_s": dry.wall_s,
        "dry_run_jobs": job_stats(dry_text).get("total", 0),
        "dry_run_max_rss_mb": dry.max_rss_mb,
        "no_change_s": real.wall_s,
        "no_change_jobs": job_stats(real_text).get("total", 0),
        "no_change_max_rss_mb": real.max_rss_mb,
        "add_one_s": add.wall_s,
        "add_one_jobs": stats,
        "add_one_trial_jobs": trial_jobs(stats),
        "add_one_new_trial_files": len(new_files),
        "add_one_trials_computed": len(computed),
        "n_folds": CV["n_splits"],
        "measures": {"dry_run": dry.to_dict(), "no_change": real.to_dict(), "add_one": add.to_dict()},
    }


# --- report -------------------------------------------------------------------------------------


def machine_info() -> dict:
    def version(module):
        try:
            return __import__(module).__version__
        except Exception:  # noqa: BLE001
            return None

    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = None
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {m: version(m) for m in ("sklearn", "numpy", "scipy", "snakemake", "psutil", "joblib")},
        "git_commit": commit,
        "loadavg_start": measure.loadavg(),
    }


def warm_up() -> dict:
    """Bring Python, scikit-learn and Snakemake into the page cache; time the bare imports."""
    imports = "import numpy, scipy.stats, sklearn.model_selection, sklearn.svm, sklearn.ensemble, sklearn.neighbors"
    sk = measure.run([sys.executable, "-c", imports], timeout=300)
    sm = measure.run([SNAKEMAKE, "--version"], timeout=300)
    sk = measure.run([sys.executable, "-c", imports], timeout=300)
    return {"sklearn_imports_s": sk.wall_s, "snakemake_version_s": sm.wall_s}


def fmt(x, unit="", digits=2):
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "NO"
    return f"{x:.{digits}f}{unit}"


def rows(results: dict, cores: int) -> list[dict]:
    """Flat (measure, value, target, met) rows for the CSV and the Markdown table."""
    out = []

    def add(section, name, value, unit="", target=None, met=None, ours=None, sklearn=None, limit=None):
        out.append(
            {
                "section": section,
                "measure": name,
                "value": value,
                "unit": unit,
                "target": target,
                "met": met,
                "ours_s": ours,
                "sklearn_s": sklearn,
                "limit_s": limit,
            }
        )

    if "tiny" in results:
        t = results["tiny"]
        for key, label in (("trials_per_job_1", "trials_per_job 1"), ("trials_per_job_auto", "trials_per_job auto")):
            r = t[key]
            add(
                "tiny",
                f"kNN/iris {t['trials']} trials, {label}: ours/sklearn",
                r["ratio"],
                "x",
                f"<= {TARGETS['tiny']}x",
                r["ratio"] <= TARGETS["tiny"],
                r["ours"]["wall_s"],
                r["sklearn"]["wall_s"],
                r["limit_s"],
            )
    for name, label, target in (("medium", "SVC/digits", "medium"), ("heavy", "RandomForest", "heavy")):
        if name in results:
            r = results[name]
            add(
                name,
                f"{label} {r['trials']} trials: ours/sklearn",
                r["ratio"],
                "x",
                f"<= {TARGETS[target]}x",
                r["ratio"] <= TARGETS[target],
                r["ours"]["wall_s"],
                r["sklearn"]["wall_s"],
                r["limit_s"],
            )
    if "heavy" in results:
        r = results["heavy"]
        add(
            "heavy",
            "RandomForest: ours / (sum CPU / N)",
            r["ours_over_limit"],
            "x",
            f"<= {TARGETS['heavy_limit']}x",
            r["ours_over_limit"] <= TARGETS["heavy_limit"],
            r["ours"]["wall_s"],
            r["sklearn"]["wall_s"],
            r["limit_s"],
        )
    if "rerun" in results:
        r = results["rerun"]
        add(
            "rerun",
            f"no-change rerun of {r['trials']} trials, dry run (-n)",
            r["dry_run_s"],
            "s",
            f"< {TARGETS['rerun_s']} s",
            r["dry_run_s"] < TARGETS["rerun_s"],
        )
        add(
            "rerun",
            f"no-change rerun of {r['trials']} trials, real run",
            r["no_change_s"],
            "s",
            f"< {TARGETS['rerun_s']} s",
            r["no_change_s"] < TARGETS["rerun_s"],
        )
        ok = r["add_one_trials_computed"] == r["n_folds"] and r["add_one_s"] < TARGETS["add_one_s"]
        add(
            "rerun",
            f"add one configuration: {r['add_one_trial_jobs']} trial job(s), "
            f"{r['add_one_trials_computed']} trials computed, {r['add_one_jobs'].get('total', 0)} jobs in all",
            r["add_one_s"],
            "s",
            f"{r['n_folds']} trials, < {TARGETS['add_one_s']} s",
            ok,
        )
    if "cores" in results:
        r = results["cores"]
        add(
            "cores",
            f"medium: --cores {r['cores']} speedup over --cores 1 (trials phase only: "
            f"{r['trials_phase_speedup']:.2f}x; sklearn: {r['sklearn_speedup']:.2f}x)",
            r["speedup"],
            "x",
            f">= {TARGETS['speedup']}x",
            r["speedup"] >= TARGETS["speedup"],
            r["ours_cores1_s"],
            r["sklearn_njobs1_s"],
        )
    for name in ("tiny", "medium", "heavy"):
        if name not in results:
            continue
        r = results[name]["trials_per_job_1"] if name == "tiny" else results[name]
        ours, sk = r["ours"], r["sklearn"]
        om, sm = ours["measure"], sk["measure"]
        budget = ours["data_mb"] + (ours["model_mb"] or 0) + TARGETS["worker_extra_mb"]
        worker = om["peak_worker_single_rss_mb"]
        add(
            "memory",
            f"{name}: peak RSS, process-tree sum: ours / sklearn (MB)",
            om["peak_tree_rss_mb"],
            "MB",
            None,
            None,
            None,
            None,
        )
        out[-1]["sklearn_value"] = sm["peak_tree_rss_mb"]
        add("memory", f"{name}: largest process (ru_maxrss): ours / sklearn (MB)", om["max_rss_mb"], "MB", None, None)
        out[-1]["sklearn_value"] = sm["max_rss_mb"]
        add(
            "memory",
            f"{name}: worker peak RSS (largest of worker + forks) vs data {ours['data_mb']:.1f} MB "
            f"+ model {ours['model_mb'] or 0:.1f} MB + 200 MB",
            worker,
            "MB",
            f"<= {budget:.0f} MB",
            bool(worker) and worker <= budget,
        )
    return out


def markdown(results: dict, info: dict, args) -> str:
    n = args.cores
    lines = [
        f"Benchmark ({'quick' if args.quick else 'full'}), {info['date']}, {info['nproc']} cores "
        f"({info['cpu']}), Python {info['python']}, scikit-learn {info['versions']['sklearn']}, "
        f"Snakemake {info['versions']['snakemake']}; load average at start {info['loadavg_start']}.",
        "",
        f"| Workload | trials | snaketune --cores {n} (s) | sklearn n_jobs={n} (s) | ours / sklearn | target "
        f"| Σ(CPU)/{n} (s) | ours / limit | sklearn / limit |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]

    def line(label, r, target):
        ratio = r["ratio"]
        lines.append(
            f"| {label} | {r['ours']['trials']} | {fmt(r['ours']['wall_s'])} | {fmt(r['sklearn']['wall_s'])} "
            f"| {fmt(ratio, 'x')} | ≤ {target}x {'✓' if ratio <= target else '✗'} | {fmt(r['limit_s'])} "
            f"| {fmt(r['ours_over_limit'], 'x')} | {fmt(r['sklearn_over_limit'], 'x')} |"
        )

    if "tiny" in results:
        line("tiny: kNN/iris, trials_per_job 1", results["tiny"]["trials_per_job_1"], TARGETS["tiny"])
        line("tiny: kNN/iris, trials_per_job auto", results["tiny"]["trials_per_job_auto"], TARGETS["tiny"])
    if "medium" in results:
        line("medium: SVC/digits", results["medium"], TARGETS["medium"])
    if "heavy" in results:
        line("heavy: RandomForest", results["heavy"], TARGETS["heavy"])
    lines += ["", "| Measure | value | target | met |", "|---|---:|---|---|"]
    for row in rows(results, n):
        if row["section"] in ("tiny", "medium") or (row["section"] == "heavy" and "ours/sklearn" in row["measure"]):
            continue
        value = fmt(row["value"], f" {row['unit']}" if row["unit"] not in ("x",) else "x")
        if "sklearn_value" in row:
            value = f"{row['value']:.0f} / {row['sklearn_value']:.0f} MB"
        lines.append(
            f"| {row['measure']} | {value} | {row['target'] or ''} | "
            f"{'' if row['met'] is None else ('✓' if row['met'] else '✗')} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shrink every workload (~3 min)")
    parser.add_argument("--cores", type=int, default=2, help="Snakemake --cores and sklearn n_jobs (default 2)")
    parser.add_argument("--only", default=",".join(WORKLOADS), help=f"comma-separated subset of {','.join(WORKLOADS)}")
    parser.add_argument("--tiny-k", type=int, help="tiny workload: k = 1..K (default 30, quick 10)")
    parser.add_argument(
        "--out", type=Path, help="folder of bench.{json,csv,md} (bench-quick.* with --quick); default bench/results"
    )
    parser.add_argument("--workdir", type=Path, help="scratch folder for the studies (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    args.out = args.out or REPO / "bench" / "results"
    stem = "bench-quick" if args.quick else "bench"
    only = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = set(only) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workload(s) {sorted(unknown)}; choose from {', '.join(WORKLOADS)}")

    info = machine_info()
    root = Path(tempfile.mkdtemp(prefix="snaketune-bench-", dir=args.workdir))
    t_start = time.perf_counter()
    results: dict = {}
    try:
        info["warm_up"] = warm_up()
        if "tiny" in only:
            results["tiny"] = bench_tiny(args, root)
        if "medium" in only:
            results["medium"] = bench_simple("medium", medium_config(args.quick), args, root)
        if "heavy" in only:
            results["heavy"] = bench_simple("heavy", heavy_config(args.quick), args, root)
        if "rerun" in only:
            results["rerun"] = bench_rerun(args, root)
        if "cores" in only and args.cores > 1:
            results["cores"] = bench_cores(args, root, results.get("medium"))
    finally:
        if args.keep:
            print(f"scratch folder kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    info["loadavg_end"] = measure.loadavg()
    info["bench_wall_s"] = time.perf_counter() - t_start

    report = {"machine": info, "quick": args.quick, "cores": args.cores, "targets": TARGETS, "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    table = rows(results, args.cores)
    with open(args.out / f"{stem}.csv", "w", newline="") as fh:
        fields = [
            "section",
            "measure",
            "value",
            "unit",
            "target",
            "met",
            "ours_s",
            "sklearn_s",
            "limit_s",
            "sklearn_value",
        ]
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(table)
    md = markdown(results, info, args)
    (args.out / f"{stem}.md").write_text(md)
    print()
    print(md)
    print(f"bench took {info['bench_wall_s']:.0f} s; results in {args.out}/{stem}.json, {stem}.csv, {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
