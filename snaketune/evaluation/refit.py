"""Refit the best configuration on all training data; score it on the held-out test set."""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path

import numpy as np

from snaketune.base import filecache
from snaketune.base.data import load_prepared, take_rows
from snaketune.base.estimator import build_estimator
from snaketune.base.jsonutil import write_bytes_atomic, write_json_atomic
from snaketune.evaluation.budget import Budget, block, chunk_size, partial_fit_kwargs, row_order
from snaketune.evaluation.records import versions
from snaketune.evaluation.trial import search_parameters


def refit_best(
    *, data_dir, best_path, estimator, allowed_modules, seed, scoring, model_path, summary_path, budget=None
):
    """Fit the best configuration on all training rows and save it with pickle.

    With a ``budget`` (adaptive searches) the model is trained the way the search trained it:
    ``partial_fit``: the best's number of units (calls), cycling through all training rows in
    blocks of ``chunk_size``; ``n_samples``: one ``fit`` on every training row.
    Loading a pickle runs code: only load models you produced yourself. A refit seen before
    (:func:`refit_cache`) is copied, and the returned summary says ``reused``: the cache folder.
    """
    best = json.loads(Path(best_path).read_text())
    cache = refit_cache(data_dir, best, estimator, allowed_modules, seed, scoring, budget, model_path)
    if reuse_refit(cache, model_path, summary_path):  # before importing scikit-learn (0.5 s)
        return dict(json.loads(Path(summary_path).read_text()), reused=str(cache))
    from sklearn.metrics import get_scorer

    data = load_prepared(data_dir, mmap=False)
    X, y = data["X"], data["y"]
    model = build_estimator(estimator, allowed_modules, seed).set_params(**search_parameters(best["params"]))
    budget = Budget.from_dict(budget)
    t0 = time.perf_counter()
    if budget is not None and budget.resource == "partial_fit":
        order = row_order(np.arange(len(y)), y, [seed, 2**31 - 1], budget.stratify)
        size = chunk_size(budget, len(y))
        kwargs = partial_fit_kwargs(model, y)
        for call in range(best["n_resources"]):
            rows = np.sort(block(order, call, size))
            model.partial_fit(take_rows(X, rows), y[rows], **kwargs)
    else:
        model.fit(X, y)
    fit_time = time.perf_counter() - t0
    write_bytes_atomic(model_path, pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    test_scores = {}
    if len(data["y_test"]):
        test_scores = {m: float(get_scorer(m)(model, data["X_test"], data["y_test"])) for m in scoring}
    summary = {
        "params": best["params"],
        "fit_time": fit_time,
        "n_train": int(len(y)),
        "n_test": int(len(data["y_test"])),
        "test_scores": test_scores,
        "data_fingerprint": data["meta"]["fingerprint"],
        "model_format": f"pickle (protocol {pickle.HIGHEST_PROTOCOL}); loading it runs code",
        "versions": versions(),
    }
    if budget is not None:
        summary.update(resource=budget.resource, n_resources=best["n_resources"])
    write_json_atomic(summary_path, summary)
    keep_refit(cache, model_path, summary_path)
    return summary


# Refits of best configurations seen before, per study: an edit that leaves the best configuration
# as it was (a worse value added, an edit reverted) copies its model instead of fitting it again.
REFIT_CACHE_ENTRIES = 4


def refit_cache(data_dir, best, estimator, allowed_modules, seed, scoring, budget, model_path) -> Path:
    """``<study>/.cache/refit/<key>``: the key is everything the refit depends on: the best's
    parameters (and resources), the estimator spec, seed, metrics, budget, the prepared data's
    fingerprint and the library versions."""
    from snaketune.base.jsonutil import digest

    meta = json.loads((Path(data_dir) / "meta.json").read_text())
    key = digest(
        {
            "params": best["params"],
            "n_resources": best.get("n_resources"),
            "estimator": estimator,
            "allowed_modules": allowed_modules,
            "seed": seed,
            "scoring": scoring,
            "budget": budget,
            "data": meta["fingerprint"],
            "versions": versions(),
        },
        20,
    )
    return Path(model_path).parent / ".cache" / "refit" / key


def reuse_refit(cache: Path, model_path, summary_path) -> bool:
    """Copy a cached model and summary to the outputs (new files, new mtimes) if both are there."""
    return filecache.restore(cache, _cached_names(model_path, summary_path))


def keep_refit(cache: Path, model_path, summary_path) -> None:
    """Store this refit; keep the :data:`REFIT_CACHE_ENTRIES` most recent."""
    filecache.store(cache, _cached_names(model_path, summary_path), keep=REFIT_CACHE_ENTRIES)


def _cached_names(model_path, summary_path) -> dict:
    # Fixed names in the cache, whatever the outputs are called.
    return {"model.pkl": model_path, "refit.json": summary_path}
