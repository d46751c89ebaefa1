"""Refit the best configuration on all training data; score it on the held-out test set."""

from __future__ import annotations

import json
import pickle
import time
from functools import partial
from pathlib import Path

import numpy as np

from snaketune.base import filecache
from snaketune.base.data import load_prepared, take_rows
from snaketune.base.estimator import build_estimator
from snaketune.base.jsonutil import write_bytes_atomic, write_json_atomic
from snaketune.base.procs import call_in_fork
from snaketune.evaluation.budget import Budget, block, chunk_size, partial_fit_kwargs, row_order
from snaketune.evaluation.records import versions
from snaketune.evaluation.trial import search_parameters


def refit_best(
    *,
    data_dir,
    best_path,
    estimator,
    allowed_modules,
    seed,
    scoring,
    model_path,
    summary_path,
    budget=None,
    trial_timeout=None,
    refit_timeout=None,
):
    """Fit the best configuration on all training rows and save it with pickle.

    With a ``budget`` (adaptive searches) the model is trained the way the search trained it:
    ``partial_fit``: the best's number of units (calls), cycling through all training rows in
    blocks of ``chunk_size``; ``n_samples``: one ``fit`` on every training row.
    Loading a pickle runs code: only load models you produced yourself. A refit seen before
    (:func:`refit_cache`) is copied, and the returned summary says ``reused``: the cache folder.

    No best configuration (best.json ``no_best``): nothing is fitted; refit.json says why and
    model.pkl holds ``None``. With a limit (:func:`refit_limit`) the fit runs in a forked child
    killed on time, and refit.json records the timeout instead of a model.
    """
    best = json.loads(Path(best_path).read_text())
    if best.get("no_best"):
        return _not_fitted(model_path, summary_path, status="no_best", reason=best["no_best"], params=None)
    cache = refit_cache(data_dir, best, estimator, allowed_modules, seed, scoring, budget, model_path)
    if reuse_refit(cache, model_path, summary_path):  # before importing scikit-learn (0.5 s)
        return dict(json.loads(Path(summary_path).read_text()), reused=str(cache))
    data = load_prepared(data_dir, mmap=False)
    budget = Budget.from_dict(budget)
    limit = refit_limit(best, len(data["y"]), trial_timeout, refit_timeout)
    # Imports and the estimator before the fork (as for a trial): the limit is the fit's own.
    import sklearn.metrics  # noqa: F401

    model = build_estimator(estimator, allowed_modules, seed).set_params(**search_parameters(best["params"]))
    fit = partial(_fit_and_test, model, data, best, seed, scoring, budget, model_path)
    if limit is None:
        done = fit()
    else:
        started = time.monotonic()
        done = call_in_fork(partial(_reporting_errors, fit), limit)
        if done is None and time.monotonic() - started >= limit:
            reason = f"the refit ran over its limit of {limit:.3g} s and was killed ({limit_source(refit_timeout)})"
            return _not_fitted(
                model_path, summary_path, status="timeout", reason=reason, params=best["params"], limit=limit
            )
        if done is None or "error" in done:
            raise RuntimeError(
                f"refit of the best configuration failed: {(done or {}).get('error', 'its process died')}"
            )
    summary = {
        "status": "ok",
        "params": best["params"],
        "fit_time": done["fit_time"],
        "n_train": int(len(data["y"])),
        "n_test": int(len(data["y_test"])),
        "test_scores": done["test_scores"],
        "data_fingerprint": data["meta"]["fingerprint"],
        "model_format": f"pickle (protocol {pickle.HIGHEST_PROTOCOL}); loading it runs code",
        "versions": versions(),
    }
    if limit is not None:
        summary["limit"] = limit
    if budget is not None:
        summary.update(resource=budget.resource, n_resources=best["n_resources"])
    write_json_atomic(summary_path, summary)
    keep_refit(cache, model_path, summary_path)
    return summary


def _fit_and_test(model, data, best, seed, scoring, budget, model_path) -> dict:
    """Fit on all training rows, write the model, score it on the held-out rows (JSON-able)."""
    from snaketune.base.estimator import build_scorers

    X, y = data["X"], data["y"]
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
        scorers = build_scorers(scoring)
        test_scores = {m: float(scorer(model, data["X_test"], data["y_test"])) for m, scorer in scorers.items()}
    return {"fit_time": fit_time, "test_scores": test_scores}


def _reporting_errors(function) -> dict:
    # In the forked child: its stderr is discarded, so the traceback travels back in the result.
    import traceback

    try:
        return function()
    except Exception:  # noqa: BLE001 - raised again in the parent
        return {"error": traceback.format_exc()}


# A fit on all training rows takes longer than a trial's fit on a fold's: the limit derived from
# trial_timeout grows with the ratio of rows, doubled for fits that grow faster than linearly
# (a kernel SVC's ~n^2: 5-fold CV gives a ratio of 1.25, so 1.6x).
REFIT_MARGIN = 2.0


def refit_limit(best: dict, n_train: int, trial_timeout, refit_timeout) -> float | None:
    """Seconds the refit may take: ``refit_timeout``, else ``trial_timeout`` x (all training rows
    / the best's fold training rows) x :data:`REFIT_MARGIN`; None (no limit) without either."""
    if refit_timeout:
        return float(refit_timeout)
    if not trial_timeout:
        return None
    ratio = n_train / best["fold_n_train"] if best.get("fold_n_train") else 1.0
    return float(trial_timeout) * max(ratio, 1.0) * REFIT_MARGIN


def limit_source(refit_timeout) -> str:
    if refit_timeout:
        return "refit_timeout"
    return f"trial_timeout x training rows / fold training rows x {REFIT_MARGIN:g}; set refit_timeout to change it"


def _not_fitted(model_path, summary_path, *, status: str, reason: str, params, **extra) -> dict:
    """refit.json that says why there is no model; model.pkl holds None (Snakemake needs the file)."""
    write_bytes_atomic(model_path, pickle.dumps(None))
    summary = {"status": status, "skipped": True, "reason": reason, "params": params, "test_scores": {}, **extra}
    summary["versions"] = versions()
    write_json_atomic(summary_path, summary)
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
