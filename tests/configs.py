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
