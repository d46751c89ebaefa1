"""Nested cross-validation's two computations on data: the inner splits of an outer fold, and the
inner winner refit on the outer training rows and scored on the outer test rows."""

from __future__ import annotations

import time

import numpy as np

from snaketune.base.splits import compute_splits, load_splits, save_splits


def make_inner_splits(*, cv: dict, classifier: bool, y: np.ndarray, outer_splits: str, outer_fold: int, output: str):
    """Split outer fold ``outer_fold``'s training rows with the ``cv`` scheme; store row indices of
    the whole training set (what a search given ``X[outer_train]`` sees, in the same order)."""
    outer_train, _ = load_splits(outer_splits)[outer_fold]
    inner = compute_splits(cv, y[outer_train], classifier)
    save_splits(output, [(outer_train[tr], outer_train[te]) for tr, te in inner])
    return len(inner), len(outer_train)


def score_outer_fold(
    *, data: dict, outer_splits: str, outer_fold: int, estimator: dict, allowed_modules: list, seed, scoring, params
) -> dict:
    """Fit ``params`` on the outer training rows, score every metric on the outer test rows
    (as ``GridSearchCV``'s refit and ``cross_validate``'s scoring do)."""
    from sklearn.metrics import check_scoring

    from snaketune.base.estimator import build_estimator
    from snaketune.evaluation.trial import make_scorers, search_parameters

    train, test = load_splits(outer_splits)[outer_fold]
    X, y = data["X"], data["y"]
    model = build_estimator(estimator, allowed_modules, seed).set_params(**search_parameters(params))
    t0 = time.perf_counter()
    model.fit(X[train], y[train])
    fit_time = time.perf_counter() - t0
    scores = check_scoring(model, scoring=make_scorers(scoring))(model, X[test], y[test])
    return {
        "outer_scores": {m: float(v) for m, v in scores.items()},
        "fit_time": fit_time,
        "n_train": int(len(train)),
        "n_test": int(len(test)),
    }
