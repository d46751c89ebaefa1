"""The scikit-learn side of the benchmark: GridSearchCV / RandomizedSearchCV as a whole process.

    python bench/sklearn_search.py SPEC.json RESULT.json

SPEC (written by bench/run.py): the study's estimator, search section (snaketune's config
format), scoring, seed, n_jobs, and the paths of snaketune's prepared ``X.npy``/``y.npy`` and
stored splits ``.npz`` — so both sides fit the same estimator on the same rows and folds.
Imports scikit-learn (what a user of GridSearchCV would run) and only snaketune's small
``space`` module, to read the search section.
"""

import json
import sys
import time
from pathlib import Path

T0 = time.perf_counter()

import importlib  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV  # noqa: E402


def space(spec):
    # snaketune's own expansion (a light module: numpy/scipy only), so both sides search the very
    # same candidates, down to the last bit of every log-spaced float.
    from snaketune.search.space import expand_space

    return expand_space(spec)


def jsonable(value):
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def main(spec_path, result_path):
    t_imports = time.perf_counter() - T0
    with open(spec_path) as fh:
        spec = json.load(fh)
    module, _, name = spec["estimator"]["class"].rpartition(".")
    estimator = getattr(importlib.import_module(module), name)(**spec["estimator"].get("params", {}))
    # As snaketune does: every random_state left at None gets the study seed.
    unset = {k: spec["seed"] for k, v in estimator.get_params().items() if k.endswith("random_state") and v is None}
    estimator.set_params(**unset)
    X = np.load(spec["X"])
    y = np.load(spec["y"])
    with np.load(spec["splits"]) as npz:
        cv = [(npz[f"train_{i}"], npz[f"test_{i}"]) for i in range(len(npz.files) // 2)]
    t_load = time.perf_counter() - T0 - t_imports
    ((kind, search),) = spec["search"].items()
    scoring, refit = spec["scoring"], spec["refit"]
    if len(scoring) == 1:  # what a user writes for one metric
        scoring, refit = scoring[0], True
    common = dict(scoring=scoring, refit=refit, cv=cv, n_jobs=spec["n_jobs"], error_score=np.nan)
    if kind == "grid":
        searcher = GridSearchCV(estimator, space(search), **common)
    else:
        searcher = RandomizedSearchCV(
            estimator, space(search["params"]), n_iter=search["n_iter"], random_state=search.get("seed", 0), **common
        )
    t1 = time.perf_counter()
    searcher.fit(X, y)
    t_fit = time.perf_counter() - t1
    res = searcher.cv_results_
    n_splits = len(cv)
    key = f"mean_test_{spec['refit']}" if f"mean_test_{spec['refit']}" in res else "mean_test_score"
    result = {
        "class": type(searcher).__name__,
        "n_jobs": spec["n_jobs"],
        "n_candidates": len(res["params"]),
        "n_splits": n_splits,
        "t_imports": t_imports,
        "t_load": t_load,
        "t_fit": t_fit,
        "t_total_inside": time.perf_counter() - T0,
        # cv_results_ times are wall seconds inside each joblib worker.
        "sum_fit_time": float(np.nansum(res["mean_fit_time"]) * n_splits),
        "sum_score_time": float(np.nansum(res["mean_score_time"]) * n_splits),
        "refit_time": float(getattr(searcher, "refit_time_", 0.0)),
        "best_score": float(searcher.best_score_),
        "best_params": jsonable(searcher.best_params_),
        "params": jsonable(list(res["params"])),
        "mean_test_score": [float(v) if np.isfinite(v) else None for v in res[key]],
    }
    with open(result_path, "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
