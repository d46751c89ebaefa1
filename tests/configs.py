"""Shared study-config builders for tests (small real data, as the end-to-end tests use)."""

from __future__ import annotations


def mlp_circles(study: str, search: dict, n_samples: int = 300) -> dict:
    """An SGD-trained MLP on 4-class concentric circles in 6 dimensions (Sievert's Hyperband study,
    small): ``partial_fit`` on a budget, one stratified shuffle split pair, accuracy."""
    return {
        "study": study,
        "data": {
            "generator": "make_circles",
            "params": {"n_samples": n_samples, "n_classes": 4, "n_features": 6, "n_informative": 2, "noise": 0.05},
            "test_size": 0.2,
        },
        "estimator": {"class": "sklearn.neural_network.MLPClassifier", "params": {"solver": "sgd"}},
        "search": search,
        "cv": {"kind": "stratified_shuffle_split", "n_splits": 2, "test_size": 0.25},
        "scoring": "accuracy",
    }


def iris(study: str, estimator: str | dict, search: dict, n_splits: int = 3, **extra) -> dict:
    """Iris (150 rows, 3 classes) with ``estimator`` (a class path, or a section with params)
    searched by ``search`` and cross-validated with ``n_splits`` folds (the schema's default kind:
    stratified for a classifier); ``extra`` keys are added last. A test estimator
    (``tests.estimators``: sleepy, flaky) is allowed."""
    spec = {"class": estimator} if isinstance(estimator, str) else estimator
    config = {"study": study, "data": {"loader": "iris"}, "estimator": spec}
    if spec.get("class", "").startswith("tests.estimators."):
        config["allowed_modules"] = ["tests.estimators"]
    return {**config, "search": search, "cv": {"n_splits": n_splits}, **extra}
