"""Benchmark: snaketune Hyperband vs random search vs dask-ml HyperbandSearchCV, side by side.

    python bench/bench_hyperband.py [--config examples/mlp-circles-hyperband.yaml]
                                    [--dask-python /tmp/daskml-venv/bin/python]

1. snaketune: the study through real Snakemake (``--cores 2``) in a temporary folder.
2. random search: as many models as Hyperband's plan, each trained ``max_iter`` partial_fit calls
   on the same training rows and scored on the same validation rows (in-process, 2 jobs).
3. dask-ml ``HyperbandSearchCV`` with the same plan (max_iter, aggressiveness, one block = one
   pass), run by a separate Python that has ``dask[array]==2025.1.0 distributed==2025.1.0
   dask-ml==2025.1.0`` beside scikit-learn 1.9.1 (never a project dependency). Without it,
   scikit-learn's ``HalvingRandomSearchCV`` (resource ``max_iter`` of a fresh fit) stands in.

Prints a table (best validation score, units of training and wall time to reach it) and writes
``bench/results/hyperband.json``. A unit is one partial_fit call = one pass over the training rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def best_so_far(events):
    """events: (units, seconds, score) in completion order -> cumulative curve."""
    curve, units, best = [], 0, -np.inf
    for du, t, score in events:
        units += du
        best = max(best, score if score is not None and np.isfinite(score) else -np.inf)
        curve.append({"units": int(units), "seconds": float(t), "best": float(best)})
    return curve


def first_reaching(curve, target):
    for point in curve:
        if point["best"] >= target - 1e-12:
            return point
    return None


# ---------------------------------------------------------------------------------------------


def run_snaketune(config: dict, workdir: Path) -> dict:
    import pandas as pd
    import yaml

    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [str(Path(sys.executable).parent / "snakemake"), "-s", str(REPO / "Snakefile"), "--cores", "2", "-q"]
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    wall = time.time() - t0
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    out = workdir / "results" / config["study"]
    history = pd.read_csv(out / "history.csv").sort_values("time")
    best = json.loads((out / "best.json").read_text())
    refit = config.get("refit", config["scoring"] if isinstance(config["scoring"], str) else config["scoring"][0])
    last_units, events = {}, []
    for _, row in history.iterrows():
        key = (row["bracket"], row["model_id"])
        events.append((row["units"] - last_units.get(key, 0), row["time"] - t0, row[f"mean_test_{refit}"]))
        last_units[key] = row["units"]
    return {
        "wall_seconds": wall,
        "curve": best_so_far(events),
        "best_score": best["mean_test_scores"][refit],
        "n_models": best["used"]["n_models"],
        "units": best["used"]["units_trained"],
        "plan": {"n_models": best["plan"]["n_models"], "units": best["plan"]["units"]},
        "out": str(out),
    }


def study_data(out: Path):
    """The snaketune run's prepared data and its first split: identical rows for every method."""
    from snaketune.base.data import load_prepared
    from snaketune.base.splits import load_splits

    data_dir = next((out / "data").iterdir())
    data = load_prepared(data_dir, mmap=False)
    splits = load_splits(next((out / "splits").iterdir()))
    train, test = splits[0]
    return data["X"], data["y"], train, test


def _random_model(params, base, X, y, order, val, max_iter, t0):
    from sklearn.base import clone

    est = clone(base).set_params(**params)
    classes = np.unique(y)
    rows = np.sort(order)
    for _ in range(max_iter):
        est.partial_fit(X[rows], y[rows], classes=classes)
    return est.score(X[val], y[val]), time.time() - t0


def run_random(config, n_models, X, y, train, val) -> dict:
    import warnings

    from joblib import Parallel, delayed
    from sklearn.model_selection import ParameterSampler

    from snaketune.base.estimator import build_estimator
    from snaketune.evaluation.trial import search_parameters
    from snaketune.search.space import expand_space

    spec = config["search"]["hyperband"]
    (dists,) = expand_space(spec["params"])
    candidates = [
        search_parameters(json.loads(json.dumps(p, default=list)))
        for p in ParameterSampler(dists, n_models, random_state=spec.get("seed", 0) + 1000)
    ]
    base = build_estimator(config["estimator"], (), config.get("seed", 0))
    t0 = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = Parallel(n_jobs=2)(
            delayed(_random_model)(p, base, X, y, train, val, spec["max_iter"], t0) for p in candidates
        )
    wall = time.time() - t0
    results.sort(key=lambda r: r[1])
    events = [(spec["max_iter"], t, s) for s, t in results]
    return {
        "wall_seconds": wall,
        "curve": best_so_far(events),
        "best_score": max(s for s, _ in results),
        "n_models": n_models,
        "units": n_models * spec["max_iter"],
    }


def run_dask_ml(python: str, config, X, y, train, val, workdir: Path) -> dict:
    np.savez(workdir / "data.npz", X_train=X[train], y_train=y[train], X_val=X[val], y_val=y[val])
    spec = config["search"]["hyperband"]
    job = {
        "max_iter": spec["max_iter"],
        "aggressiveness": spec.get("aggressiveness", 3),
        "seed": spec.get("seed", 0),
        "params": spec["params"],
        "fixed": config["estimator"].get("params", {}),
        "random_state": config.get("seed", 0),
        "data": str(workdir / "data.npz"),
        "out": str(workdir / "dask.json"),
    }
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "bench")]))
    t0 = time.time()
    proc = subprocess.run([python, __file__, "--dask-ml-job", json.dumps(job)], capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    result = json.loads((workdir / "dask.json").read_text())
    result["wall_seconds_with_startup"] = time.time() - t0
    return result


class LayersMLP:
    """Built lazily (sklearn is imported inside): see :func:`_layers_mlp`."""


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
        LayersMLP = _layers_mlp()  # noqa: F811 - picklable by name on dask workers
    except ImportError:
        pass


def dask_ml_job(job: dict) -> None:
    """Runs in the dask venv: HyperbandSearchCV on the same rows; history -> JSON."""
    import warnings

    warnings.simplefilter("ignore")
    import dask.array as da
    from dask.distributed import Client, LocalCluster
    from dask_ml.model_selection import HyperbandSearchCV

    sys.path.insert(0, str(REPO / "bench"))
    from bench_hyperband import LayersMLP as MLP

    from snaketune.search.space import expand_space

    data = np.load(job["data"])
    X_train, y_train, X_val, y_val = data["X_train"], data["y_train"], data["X_val"], data["y_val"]
    params = dict(job["params"])
    params["layers"] = ["-".join(map(str, shape)) for shape in params.pop("hidden_layer_sizes")]
    (dists,) = expand_space(params)
    # Validation rows appended as the last block; test_size picks that many rows.
    X = np.concatenate([X_train, X_val])
    y = np.concatenate([y_train, y_val])
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster):
            search = HyperbandSearchCV(
                MLP(random_state=job["random_state"], **job["fixed"]),
                dists,
                max_iter=job["max_iter"],
                aggressiveness=job["aggressiveness"],
                random_state=job["seed"],
                test_size=len(X_val) / len(X),
            )
            Xd = da.from_array(X_train, chunks=len(X_train))
            yd = da.from_array(y_train, chunks=len(y_train))
            t0 = time.time()
            # Our validation rows are used only for the final score of its best model.
            search.fit(Xd, yd, classes=np.unique(y))
            wall = time.time() - t0
    last, events = {}, []
    for h in sorted(search.history_, key=lambda h: h["elapsed_wall_time"]):
        du = h["partial_fit_calls"] - last.get(h["model_id"], 0)
        last[h["model_id"]] = h["partial_fit_calls"]
        events.append((du, h["elapsed_wall_time"], h["score"]))
    Path(job["out"]).write_text(
        json.dumps(
            {
                "wall_seconds": wall,
                "curve": best_so_far(events),
                "best_score": float(search.best_score_),
                "best_on_our_validation_rows": float(search.best_estimator_.score(X_val, y_val)),
                "n_models": int(search.metadata_["n_models"]),
                "units": int(search.metadata_["partial_fit_calls"]),
                "plan": {"n_models": search.metadata["n_models"], "units": search.metadata["partial_fit_calls"]},
                "note": "dask-ml splits its own validation rows (same count) from the training rows",
            },
            default=lambda o: o.item() if hasattr(o, "item") else str(o),
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=str(REPO / "examples" / "mlp-circles-hyperband.yaml"))
    parser.add_argument("--dask-python", default=os.environ.get("DASKML_PYTHON", "/tmp/daskml-venv/bin/python"))
    parser.add_argument("--dask-ml-job")
    args = parser.parse_args()
    if args.dask_ml_job:
        dask_ml_job(json.loads(args.dask_ml_job))
        return 0
    sys.path.insert(0, str(REPO))
    import yaml

    config = yaml.safe_load(Path(args.config).read_text())
    results = {"config": args.config, "cores": 2}
    with tempfile.TemporaryDirectory(prefix="bench-hb-") as tmp:
        tmp = Path(tmp)
        ours = run_snaketune(config, tmp)
        X, y, train, val = study_data(Path(ours.pop("out")))
        results["snaketune_hyperband"] = ours
        results["random_search"] = run_random(config, ours["plan"]["n_models"], X, y, train, val)
        if Path(args.dask_python).exists():
            try:
                results["dask_ml_hyperband"] = run_dask_ml(args.dask_python, config, X, y, train, val, tmp)
            except RuntimeError as exc:
                results["dask_ml_hyperband"] = {"error": str(exc)[-1500:]}
        else:
            results["dask_ml_hyperband"] = {"error": f"no dask-ml python at {args.dask_python}"}
    target = results["random_search"]["best_score"]
    rows = []
    for name in ("snaketune_hyperband", "random_search", "dask_ml_hyperband"):
        r = results[name]
        if "curve" not in r:
            rows.append(f"{name:22s} {r.get('error', '')[:200]}")
            continue
        reach = first_reaching(r["curve"], target)
        r["reaches_random_best"] = reach
        rows.append(
            f"{name:22s} {r['best_score']:10.4f} {r['n_models']:7d} {r['units']:7d} {r['wall_seconds']:9.1f}   "
            + (f"{reach['units']:7d} {reach['seconds']:9.1f}" if reach else "      -         -")
        )
    rr = results["random_search"]["reaches_random_best"]
    hb = results["snaketune_hyperband"].get("reaches_random_best")
    results["units_ratio_random_over_hyperband"] = (rr["units"] / hb["units"]) if hb else None
    print(f"best validation score of random search: {target:.4f}")
    print(
        f"{'method':22s} {'best':>10s} {'models':>7s} {'units':>7s} {'wall s':>9s}   {'units to reach random best':>26s}"
    )
    print("\n".join(rows))
    ratio = results["units_ratio_random_over_hyperband"]
    print(
        f"units ratio random/hyperband to reach random's best: {ratio:.2f}"
        if ratio
        else "hyperband did not reach random's best"
    )
    out = REPO / "bench" / "results" / "hyperband.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
