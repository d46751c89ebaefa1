"""Benchmark: snaketune Hyperband next to dask-ml's HyperbandSearchCV (and random search).

    python bench/bench_hyperband.py                     # the small example, one seed, + random search
    python bench/bench_hyperband.py --config examples/mlp-circles-hyperband-full.yaml \\
        --seeds 0 1 2 3 4 --dask-split own ours --name hyperband-full

For every search seed (``search.hyperband.seed`` for snaketune, ``random_state`` for dask-ml; the
data and the MLP's ``random_state`` stay fixed):

1. snaketune: the study through real Snakemake (``--cores 2``) in a temporary folder. Everything
   is read from the study's outputs: ``best.json`` (best score, plan, what was used), the trial
   files ``trials/b<b>-r<i>-s<j>_<fold>.json`` (score and end time of every evaluation: the
   best-so-far curve and the profile), ``history.csv`` and the prepared arrays/splits (``.npy``,
   ``.npz``) so that the other methods see identical rows. While it runs, the CPU time of
   Snakemake, its job clients and the warm worker is sampled from ``/proc``.
2. dask-ml ``HyperbandSearchCV`` with the same plan (``max_iter``, ``aggressiveness``, one block =
   the whole training fold = one ``partial_fit`` call per pass), in a separate Python that has
   ``dask[array]==2025.1.0 distributed==2025.1.0 dask-ml==2025.1.0`` beside scikit-learn 1.9.1
   (never a project dependency; ``--dask-python``, default ``/tmp/daskvenv/bin/python``), on a
   ``LocalCluster`` of 2 single-threaded worker processes. ``--dask-split``:

   * ``own``: dask-ml as a user runs it: it gets our 1280 training rows and splits off its own
     validation rows (``test_size=0.2``: 256 rows, a different split in every bracket), so it
     trains on 1024 rows per call;
   * ``ours``: dask-ml's ``_get_train_test_split`` returns exactly snaketune's split (train on
     the 1280 training rows, validate on the same 320 rows): the matched comparison.

   For both, the best model is also re-scored on snaketune's 320 validation rows.
3. random search (``--random``): as many models as Hyperband's plan, each trained ``max_iter``
   partial_fit calls on the same training rows and scored on the same validation rows
   (in-process, 2 jobs).

Writes ``bench/results/<name>.json`` and ``.md`` (medians, per-seed figures, machine load).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CLK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def best_so_far(events):
    """events: (units, seconds, score) -> cumulative curve in time order."""
    curve, units, best = [], 0, -np.inf
    for du, t, score in sorted(events, key=lambda e: e[1]):
        units += du
        best = max(best, score if score is not None and np.isfinite(score) else -np.inf)
        curve.append({"units": int(units), "seconds": float(t), "best": float(best)})
    return curve


def first_reaching(curve, target):
    for point in curve:
        if point["best"] >= target - 1e-12:
            return point
    return None


def best_at_units(curve, units: int) -> float | None:
    """The best score once ``units`` partial_fit calls were spent (the curve's last point within)."""
    within = [point["best"] for point in curve if point["units"] <= units]
    return within[-1] if within else None


def plot_curves(results: dict, path: Path) -> None:
    """Best-so-far validation accuracy against partial_fit calls spent: every seed thin, the median
    over seeds thick, one colour per method (snaketune's Hyperband and BOHB, dask-ml's Hyperband)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    methods = sorted({m for r in results["runs"] for m, v in r.items() if isinstance(v, dict) and v.get("curve")})
    for colour, method in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], methods, strict=False):
        curves = [
            r[method]["curve"] for r in results["runs"] if isinstance(r.get(method), dict) and r[method].get("curve")
        ]
        top = max(point["units"] for c in curves for point in c)
        grid = np.unique(np.linspace(1, top, 200).astype(int))
        values = []
        for c in curves:
            ys = [best_at_units(c, u) for u in grid]
            values.append([np.nan if y is None or not np.isfinite(y) else y for y in ys])
            ax.step(grid, values[-1], where="post", color=colour, alpha=0.25, linewidth=0.8)
        ax.step(grid, np.nanmedian(np.array(values), axis=0), where="post", color=colour, linewidth=2,
                label=f"{method} (median of {len(curves)})")  # fmt: skip
    ax.set_xlabel("partial_fit calls spent")
    ax.set_ylabel("best validation accuracy so far")
    ax.set_title(f"Best so far: {results['config']}")
    ax.legend(loc="lower right", fontsize=8)
    fig.savefig(path, bbox_inches="tight", dpi=110)
    plt.close(fig)


def loadavg() -> list[float]:
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


# --------------------------------------------------------------------------- process sampling


def _proc_cpu(pid: int) -> tuple[float, float] | None:
    """(own CPU s, reaped children's CPU s) of a process, from /proc/<pid>/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime) / CLK, (cutime + cstime) / CLK


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


class Sampler(threading.Thread):
    """Every 0.5 s: the load average, Snakemake's own CPU and the warm worker's CPU (the worker
    is the child of Snakemake whose command line names ``snaketune.runtime.worker``)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.stop, self.loads = pid, threading.Event(), []
        self.snakemake_self = 0.0
        self.worker: dict[int, float] = {}

    def run(self):
        while not self.stop.is_set():
            self.loads.append(loadavg()[0])
            cpu = _proc_cpu(self.pid)
            if cpu:
                self.snakemake_self = cpu[0]
            for child in _children(self.pid):
                try:
                    cmd = Path(f"/proc/{child}/cmdline").read_bytes()
                except OSError:
                    continue
                if b"worker" in cmd and b"snaketune" in cmd:
                    c = _proc_cpu(child)
                    if c:
                        self.worker[child] = sum(c)
            self.stop.wait(0.5)


# --------------------------------------------------------------------------- snaketune


def read_trials(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "trials").glob("*.json"))]


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def run_snaketune(config: dict, workdir: Path) -> dict:
    import yaml

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [str(Path(sys.executable).parent / "snakemake"), "-s", str(REPO / "Snakefile"), "--cores", "2", "-q"]
    load_before = loadavg()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = Sampler(proc.pid)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.time() - t0
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler.stop.set()
    sampler.join()
    if proc.returncode:
        (workdir / "snakemake.stderr").write_text(stderr)
        errors = [line for line in stderr.splitlines() if "rror" in line or "xception" in line]
        logs = sorted((workdir / "results").glob("*/logs/**/*.log"))
        failed = [p for p in logs if "rror" in p.read_text(errors="replace")]
        detail = "\n".join(errors[-20:] + [f"--- {p}:\n{p.read_text(errors='replace')[-1500:]}" for p in failed[:3]])
        raise RuntimeError(f"snakemake exit {proc.returncode}:\n{detail}")
    out = workdir / "results" / config["study"]
    best = json.loads((out / "best.json").read_text())
    refit = best["refit"]
    trials = read_trials(out)
    events = [
        (t["units_trained"], _epoch(t["end"]) - t0, t["test_scores"].get(refit) if t["status"] == "ok" else None)
        for t in trials
    ]
    starts = [_epoch(t["start"]) - t0 for t in trials]
    ends = [_epoch(t["end"]) - t0 for t in trials]
    mtime = lambda p: p.stat().st_mtime - t0  # noqa: E731
    fit_wall = sum(t["fit_time"] for t in trials)
    fit_cpu = sum(t.get("fit_cpu") or 0 for t in trials)
    score_wall = sum(t["score_time"] for t in trials)
    trial_wall = sum(_epoch(t["end"]) - _epoch(t["start"]) for t in trials)
    promotions = sorted((out / "hyperband").glob("b*/r*/promotion.json"))
    worker_cpu = sum(sampler.worker.values())
    # rusage of the whole reaped tree: Snakemake, job clients, the worker and its forks
    tree_cpu = sum(getattr(children_after, f) - getattr(children_before, f) for f in ("ru_utime", "ru_stime"))
    return {
        "wall_seconds": wall,
        "best_score": best["mean_test_scores"][refit],
        "best": {k: best[k] for k in ("model_id", "bracket", "rung", "n_resources", "params")},
        "n_models": best["used"]["n_models"],
        "units": best["used"]["units_trained"],
        "plan": {"n_models": best["plan"]["n_models"], "units": best["plan"]["units"]},
        "curve": best_so_far(events),
        "profile": {
            "n_trial_jobs": len({t["trial_id"].rsplit("_", 1)[0] for t in trials}),
            "n_trials": len(trials),
            "n_promotion_jobs": len(promotions),
            "first_trial_start_s": min(starts),
            "last_trial_end_s": max(ends),
            "search_span_s": max(ends) - min(starts),
            "after_search_s": wall - max(ends),
            "sum_trial_wall_s": trial_wall,
            "sum_fit_wall_s": fit_wall,
            "sum_fit_cpu_s": fit_cpu,
            "sum_score_wall_s": score_wall,
            "prepared_data_s": mtime(next((out / "splits").iterdir())),
            "leaderboard_s": mtime(out / "leaderboard.csv"),
            "refit_s": mtime(out / "model.pkl"),
            "snakemake_cpu_s": sampler.snakemake_self,
            "worker_cpu_s": worker_cpu,
            "tree_cpu_s": tree_cpu,
            "clients_and_other_cpu_s": tree_cpu - sampler.snakemake_self - worker_cpu,
            "mean_load_during": float(np.mean(sampler.loads)) if sampler.loads else None,
        },
        "load_before": load_before,
        "load_after": loadavg(),
        "out": str(out),
    }


def prepare_only(config: dict, workdir: Path) -> Path:
    """Only the study's prepared arrays and splits (Snakemake ``--until make_splits``): the rows
    dask-ml gets when the snaketune runs of a seed are already stored."""
    import yaml

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    snakemake = str(Path(sys.executable).parent / "snakemake")
    cmd = [snakemake, "-s", str(REPO / "Snakefile"), "--cores", "2", "-q", "--until", "make_splits"]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"snakemake exit {proc.returncode}:\n{proc.stderr[-3000:]}")
    return workdir / "results" / config["study"]


def study_data(out: Path):
    """The snaketune run's prepared arrays and its first split, read from the output files."""
    data_dir = next((out / "data").iterdir())
    X, y = np.load(data_dir / "X.npy"), np.load(data_dir / "y.npy")
    with np.load(next((out / "splits").iterdir())) as npz:
        train, test = npz["train_0"], npz["test_0"]
    return X, y, train, test


# --------------------------------------------------------------------------- random search


def _random_model(params, base, X, y, rows, val, max_iter, t0):
    from sklearn.base import clone

    est = clone(base).set_params(**params)
    classes = np.unique(y)
    rows = np.sort(rows)
    for _ in range(max_iter):
        est.partial_fit(X[rows], y[rows], classes=classes)
    return est.score(X[val], y[val]), time.time() - t0


def run_random(config, n_models, X, y, train, val, seed) -> dict:
    import importlib
    import warnings

    from joblib import Parallel, delayed
    from sklearn.model_selection import ParameterSampler

    from snaketune.search.space import as_candidate, expand_space

    spec = config["search"]["hyperband"]
    (dists,) = expand_space(spec["params"])
    candidates = list(ParameterSampler(dists, n_models, random_state=seed + 1000))
    module, name = config["estimator"]["class"].rsplit(".", 1)
    fixed = {k: as_candidate(v) for k, v in config["estimator"].get("params", {}).items()}
    base = getattr(importlib.import_module(module), name)(random_state=config.get("seed", 0), **fixed)
    t0 = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = Parallel(n_jobs=2)(
            delayed(_random_model)(p, base, X, y, train, val, spec["max_iter"], t0) for p in candidates
        )
    wall = time.time() - t0
    events = [(spec["max_iter"], t, s) for s, t in results]
    return {
        "wall_seconds": wall,
        "curve": best_so_far(events),
        "best_score": max(s for s, _ in results),
        "n_models": n_models,
        "units": n_models * spec["max_iter"],
    }


# --------------------------------------------------------------------------- dask-ml


def run_dask_ml(python: str, config, X, y, train, val, workdir: Path, seed: int, split: str) -> dict:
    data = workdir / "data.npz"
    if not data.exists():
        np.savez(data, X_train=X[train], y_train=y[train], X_val=X[val], y_val=y[val])
    spec = config["search"]["hyperband"]
    job = {
        "max_iter": spec["max_iter"],
        "aggressiveness": spec.get("aggressiveness", 3),
        "seed": seed,
        "split": split,
        "params": spec["params"],
        "fixed": config["estimator"].get("params", {}),
        "random_state": config.get("seed", 0),
        "data": str(data),
        "out": str(workdir / f"dask-{split}.json"),
    }
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "bench")]))
    load_before = loadavg()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    proc = subprocess.run([python, __file__, "--dask-ml-job", json.dumps(job)], capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    result = json.loads(Path(job["out"]).read_text())
    result["wall_seconds_with_startup"] = time.time() - t0
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # the job process, its LocalCluster nannies and workers (all reaped by the time it exits)
    result["cpu_seconds_with_startup"] = sum(
        getattr(children_after, f) - getattr(children_before, f) for f in ("ru_utime", "ru_stime")
    )
    result["load_before"], result["load_after"] = load_before, loadavg()
    return result


def _layers_mlp():
    """MLPClassifier whose layer shape is a string ("12-12"): dask-ml 2025.1 builds
    ``np.array`` of every parameter for cv_results_, which fails on tuples of unequal length."""
    from sklearn.neural_network import MLPClassifier

    class _LayersMLP(MLPClassifier):
        def __init__(
            self,
            layers="24",
            solver="sgd",
            alpha=1e-4,
            batch_size="auto",
            learning_rate="constant",
            learning_rate_init=1e-3,
            power_t=0.5,
            momentum=0.9,
            random_state=None,
        ):
            self.layers = layers
            super().__init__(
                solver=solver,
                alpha=alpha,
                batch_size=batch_size,
                learning_rate=learning_rate,
                learning_rate_init=learning_rate_init,
                power_t=power_t,
                momentum=momentum,
                random_state=random_state,
            )

        def partial_fit(self, X, y, **kwargs):
            self.hidden_layer_sizes = tuple(int(v) for v in str(self.layers).split("-"))
            return super().partial_fit(X, y, **kwargs)

    _LayersMLP.__module__ = "bench_hyperband"
    _LayersMLP.__qualname__ = "LayersMLP"
    return _LayersMLP


if "sklearn" in sys.modules or __name__ == "bench_hyperband":
    try:
        LayersMLP = _layers_mlp()  # picklable by name on dask workers
    except ImportError:
        pass


def dask_ml_job(job: dict) -> None:
    """Runs in the dask venv: HyperbandSearchCV on the same rows; history -> JSON."""
    import warnings

    warnings.simplefilter("ignore")
    import dask.array as da
    from dask.distributed import Client, LocalCluster
    from dask_ml.model_selection import HyperbandSearchCV
    from dask_ml.model_selection._incremental import BaseIncrementalSearchCV

    sys.path.insert(0, str(REPO / "bench"))
    from bench_hyperband import LayersMLP as MLP

    from snaketune.search.space import expand_space

    data = np.load(job["data"])
    X_train, y_train, X_val, y_val = data["X_train"], data["y_train"], data["X_val"], data["y_val"]
    params = dict(job["params"])
    params["layers"] = ["-".join(map(str, shape)) for shape in params.pop("hidden_layer_sizes")]
    (dists,) = expand_space(params)
    n_train = len(X_train)
    if job["split"] == "ours":
        # Train on exactly snaketune's training rows (one block, one partial_fit call = one pass
        # over them) and validate on exactly its validation rows, in every bracket.
        X = np.concatenate([X_train, X_val])
        y = np.concatenate([y_train, y_val])
        Xd = da.from_array(X, chunks=((n_train, len(X_val)), X.shape[1]))
        yd = da.from_array(y, chunks=((n_train, len(y_val)),))

        def _split(self, X, y, **kwargs):
            return X[:n_train], X[n_train:], y[:n_train], y[n_train:]

        BaseIncrementalSearchCV._get_train_test_split = _split
        test_size = None
    else:
        # dask-ml's own split of the rows it is given (test_size 0.2 of our training rows).
        Xd = da.from_array(X_train, chunks=n_train)
        yd = da.from_array(y_train, chunks=n_train)
        test_size = 0.2
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster):
            search = HyperbandSearchCV(
                MLP(random_state=job["random_state"], **job["fixed"]),
                dists,
                max_iter=job["max_iter"],
                aggressiveness=job["aggressiveness"],
                random_state=job["seed"],
                test_size=test_size,
            )
            t0 = time.time()
            search.fit(Xd, yd, classes=np.unique(np.concatenate([y_train, y_val])))
            wall = time.time() - t0
    last, events = {}, []
    for h in search.history_:
        du = h["partial_fit_calls"] - last.get(h["model_id"], 0)
        last[h["model_id"]] = h["partial_fit_calls"]
        events.append((du, h["elapsed_wall_time"], h["score"]))
    hist = search.model_history_
    all_last = max(v[-1]["score"] for v in hist.values())
    all_any = max(h["score"] for v in hist.values() for h in v)
    Path(job["out"]).write_text(
        json.dumps(
            {
                "wall_seconds": wall,
                "split": job["split"],
                "curve": best_so_far(events),
                "best_score": float(search.best_score_),
                "best_on_our_validation_rows": float(search.best_estimator_.score(X_val, y_val)),
                "best_partial_fit_calls": int(
                    hist[search.cv_results_["model_id"][search.best_index_]][-1]["partial_fit_calls"]
                ),
                "best_bracket": int(search.cv_results_["bracket"][search.best_index_]),
                "max_last_score_all_models": float(all_last),
                "max_any_score_all_models": float(all_any),
                "n_models": int(search.metadata_["n_models"]),
                "units": int(search.metadata_["partial_fit_calls"]),
                "plan": {"n_models": search.metadata["n_models"], "units": search.metadata["partial_fit_calls"]},
            },
            default=lambda o: o.item() if hasattr(o, "item") else str(o),
        )
    )


# --------------------------------------------------------------------------- report


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(results: dict) -> dict:
    runs = results["runs"]
    methods = sorted({m for r in runs for m in r if m != "seed"})
    summary = {}
    for m in methods:
        rows = [r[m] for r in runs if m in r and "error" not in r[m]]
        if not rows:
            continue
        s = {
            "n_seeds": len(rows),
            "median_best_score": _median([r["best_score"] for r in rows]),
            "median_wall_seconds": _median([r["wall_seconds"] for r in rows]),
        }
        if "best_on_our_validation_rows" in rows[0]:
            s["median_best_on_our_validation_rows"] = _median([r["best_on_our_validation_rows"] for r in rows])
            s["median_wall_seconds_with_startup"] = _median([r["wall_seconds_with_startup"] for r in rows])
        if "best_at_hyperband_units" in rows[0]:
            s["median_best_at_hyperband_units"] = _median([r["best_at_hyperband_units"] for r in rows])
        if "profile" in rows[0]:
            s["median_search_span_s"] = _median([r["profile"]["search_span_s"] for r in rows])
        summary[m] = s
    return summary


def markdown(results: dict) -> str:
    runs, summary = results["runs"], results["summary"]
    lines = [
        f"# Hyperband benchmark: `{results['config']}`",
        "",
        f"{results['plan']['n_models']} models, {results['plan']['units']} partial_fit calls; "
        f"2 cores; seeds {[r['seed'] for r in runs]}; started {results['started']}.",
        f"Load average before: {results['load_before']}, after: {results['load_after']}.",
        "",
        "## Medians",
        "",
        "| method | seeds | best validation accuracy | (dask-ml's best re-scored on our 320 rows) | wall s | "
        "wall s incl. start-up |",
        "|---|---|---|---|---|---|",
    ]
    for m, s in summary.items():
        lines.append(
            f"| {m} | {s['n_seeds']} | {s['median_best_score']:.4f} | "
            + (f"{s['median_best_on_our_validation_rows']:.4f}" if "median_best_on_our_validation_rows" in s else "")
            + f" | {s['median_wall_seconds']:.1f} | "
            + (f"{s['median_wall_seconds_with_startup']:.1f}" if "median_wall_seconds_with_startup" in s else "")
            + " |"
        )
    at_units = {
        m: s["median_best_at_hyperband_units"] for m, s in summary.items() if "median_best_at_hyperband_units" in s
    }
    if at_units:
        lines += ["", "Median best validation accuracy after as many partial_fit calls as Hyperband spent:", ""]
        lines += [f"- {m}: {v:.4f}" for m, v in at_units.items()]
        lines += ["", f"Best-so-far curves: `{results.get('name', 'hyperband')}-curves.png`."]
    lines += [
        "",
        "## Per seed",
        "",
        "| seed | method | best | best on our 320 rows | wall s | CPU s (whole process tree) "
        "| mean load during | load before → after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        for m in sorted(k for k in r if k != "seed"):
            v = r[m]
            if "error" in v:
                lines.append(f"| {r['seed']} | {m} | error: {v['error'][:80]} | | | | | |")
                continue
            prof = v.get("profile", {})
            lines.append(
                f"| {r['seed']} | {m} | {v['best_score']:.4f} | "
                + (f"{v['best_on_our_validation_rows']:.4f}" if "best_on_our_validation_rows" in v else "")
                + f" | {v['wall_seconds']:.1f} | "
                + (f"{cpu:.1f}" if (cpu := prof.get("tree_cpu_s", v.get("cpu_seconds_with_startup"))) else "")
                + " | "
                + (f"{prof['mean_load_during']:.2f}" if prof.get("mean_load_during") is not None else "")
                + f" | {v.get('load_before', ['?'])[0]} → {v.get('load_after', ['?'])[0]} |"
            )
    profiles = [r["snaketune_hyperband"]["profile"] for r in runs if "profile" in r.get("snaketune_hyperband", {})]
    if profiles:
        keys = list(profiles[0])
        lines += [
            "",
            "## Where snaketune's wall time goes (median over seeds)",
            "",
            "| quantity | median |",
            "|---|---|",
        ]
        for k in keys:
            med = _median([p[k] for p in profiles])
            lines.append(f"| {k} | {med:.2f} |" if isinstance(med, float) else f"| {k} | {med} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=str(REPO / "examples" / "mlp-circles-hyperband.yaml"))
    parser.add_argument("--dask-python", default=os.environ.get("DASKML_PYTHON", "/tmp/daskvenv/bin/python"))
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="search seeds (default: the config's)")
    parser.add_argument("--dask-split", nargs="+", default=["own", "ours"], choices=["own", "ours"])
    parser.add_argument("--random", action="store_true", help="also run random search (slow at full scale)")
    parser.add_argument("--bohb", action="store_true", help="also run snaketune's BOHB with the same keys and seed")
    parser.add_argument("--name", default="hyperband", help="bench/results/<name>.json and .md")
    parser.add_argument("--append", action="store_true", help="add these seeds to an existing <name>.json")
    parser.add_argument(
        "--dask-only",
        action="store_true",
        help="with --append: run only dask-ml (on the rows snaketune prepares) and keep the stored snaketune runs",
    )
    parser.add_argument("--dask-ml-job")
    args = parser.parse_args()
    if args.dask_ml_job:
        dask_ml_job(json.loads(args.dask_ml_job))
        return 0
    sys.path.insert(0, str(REPO))
    import yaml

    base = yaml.safe_load(Path(args.config).read_text())
    seeds = args.seeds if args.seeds is not None else [base["search"]["hyperband"].get("seed", 0)]
    results = {
        "config": os.path.relpath(args.config, REPO),
        "cores": 2,
        "started": datetime.now().isoformat(timespec="seconds"),
        "load_before": loadavg(),
        "uptime_before": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "runs": [],
        "name": args.name,
    }
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.append and (out_dir / f"{args.name}.json").exists():
        previous = json.loads((out_dir / f"{args.name}.json").read_text())
        results.update({k: previous[k] for k in ("started", "load_before", "uptime_before", "plan") if k in previous})
        kept = previous["runs"] if args.dask_only else [r for r in previous["runs"] if r["seed"] not in seeds]
        results["runs"] = kept
    for seed in seeds:
        config = copy.deepcopy(base)
        config["search"]["hyperband"]["seed"] = seed
        run = {"seed": seed}
        with tempfile.TemporaryDirectory(prefix="bench-hb-") as tmp:
            tmp = Path(tmp)
            if args.dask_only:
                run = next((r for r in results["runs"] if r["seed"] == seed), run)
                X, y, train, val = study_data(prepare_only(config, tmp / "study"))
                spent = run["snaketune_hyperband"]["curve"][-1]["units"] if "snaketune_hyperband" in run else None
                for split in args.dask_split:
                    name = f"dask_ml_hyperband_{split}_split"
                    try:
                        run[name] = run_dask_ml(args.dask_python, config, X, y, train, val, tmp, seed, split)
                    except RuntimeError as exc:
                        run[name] = {"error": str(exc)[-1500:]}
                        continue
                    if spent is not None:
                        run[name]["best_at_hyperband_units"] = best_at_units(run[name]["curve"], spent)
                results["runs"] = [r for r in results["runs"] if r["seed"] != seed] + [run]
                results["runs"].sort(key=lambda r: r["seed"])
                results["summary"] = summarize(results)
                (out_dir / f"{args.name}.json").write_text(json.dumps(results, indent=1))
                print(
                    f"seed {seed}: " + "  ".join(f"{k} {run[k].get('best_score')}" for k in run if k.startswith("dask"))
                )
                continue
            try:
                ours = run_snaketune(config, tmp / "study")
            except RuntimeError as exc:
                print(f"seed {seed}: snaketune failed: {exc}", flush=True)
                results.setdefault("failures", []).append({"seed": seed, "error": str(exc)[-4000:]})
                continue
            X, y, train, val = study_data(Path(ours.pop("out")))
            results["plan"] = ours["plan"]
            run["snaketune_hyperband"] = ours
            for split in args.dask_split:
                name = f"dask_ml_hyperband_{split}_split"
                if not Path(args.dask_python).exists():
                    run[name] = {"error": f"no dask-ml python at {args.dask_python}"}
                    continue
                try:
                    run[name] = run_dask_ml(args.dask_python, config, X, y, train, val, tmp, seed, split)
                except RuntimeError as exc:
                    run[name] = {"error": str(exc)[-1500:]}
            if args.bohb:
                bohb = copy.deepcopy(config)
                bohb["search"] = {"bohb": bohb["search"].pop("hyperband")}
                bohb["study"] = f"{config['study']}-bohb"
                try:
                    run["snaketune_bohb"] = run_snaketune(bohb, tmp / "bohb")
                    run["snaketune_bohb"].pop("out")
                except RuntimeError as exc:
                    run["snaketune_bohb"] = {"error": str(exc)[-1500:]}
                # Compared after the same number of partial_fit calls as Hyperband spent.
                spent = ours["curve"][-1]["units"]
                for r in run.values():
                    if isinstance(r, dict) and r.get("curve"):
                        r["best_at_hyperband_units"] = best_at_units(r["curve"], spent)
            if args.random:
                run["random_search"] = run_random(config, ours["plan"]["n_models"], X, y, train, val, seed)
                target = run["random_search"]["best_score"]
                for r in run.values():
                    if isinstance(r, dict) and "curve" in r:
                        r["reaches_random_best"] = first_reaching(r["curve"], target)
        results["runs"].append(run)
        results["runs"].sort(key=lambda r: r["seed"])
        line = [f"seed {seed}:"] + [
            f"{k} {v['best_score']:.4f} in {v['wall_seconds']:.1f} s"
            for k, v in run.items()
            if isinstance(v, dict) and "best_score" in v
        ]
        print("  ".join(line), flush=True)
        results["summary"] = summarize(results)
        (out_dir / f"{args.name}.json").write_text(json.dumps(results, indent=1))
    results["load_after"] = loadavg()
    results["uptime_after"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    results["summary"] = summarize(results)
    (out_dir / f"{args.name}.json").write_text(json.dumps(results, indent=1))
    (out_dir / f"{args.name}.md").write_text(markdown(results))
    if args.bohb or args.dask_only:
        plot_curves(results, out_dir / f"{args.name}-curves.png")
    print(markdown(results))
    print(f"wrote {out_dir / args.name}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
