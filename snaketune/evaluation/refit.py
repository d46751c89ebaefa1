"""Refit the best configuration on all training data; score it on the held-out test set."""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path

import numpy as np

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
    Loading a pickle runs code: only load models you produced yourself.
    """
    from sklearn.metrics import get_scorer

    data = load_prepared(data_dir, mmap=False)
    X, y = data["X"], data["y"]
    best = json.loads(Path(best_path).read_text())
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
    return summary
