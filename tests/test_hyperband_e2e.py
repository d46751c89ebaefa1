"""End-to-end: a tiny Hyperband study through real Snakemake (--cores 2)."""

from __future__ import annotations

import json
import pickle

import pytest

from tests.conftest import jobs_run

pytestmark = pytest.mark.slow

TINY = {
    "study": "hb-tiny",
    "data": {
        "generator": "make_circles",
        "params": {"n_samples": 300, "n_classes": 4, "n_features": 6, "n_informative": 2, "noise": 0.05},
        "test_size": 0.2,
    },
    "estimator": {"class": "sklearn.neural_network.MLPClassifier", "params": {"solver": "sgd"}},
    "search": {
        "hyperband": {
            # s_max = 1: bracket 1 = 3 models at 1 unit, the best continues to 3; bracket 0 = 2 at 3.
            "max_iter": 3,
            "aggressiveness": 3,
            "chunk_size": 50,
            "folds": 1,
            "params": {
                "hidden_layer_sizes": [[24], [12, 12], [6, 6, 6, 6]],
                "alpha": {"loguniform": [1e-6, 1e-3]},
                "learning_rate_init": {"loguniform": [1e-3, 3e-1]},
                "momentum": {"uniform": [0.5, 0.99]},
            },
        }
    },
    "cv": {"kind": "stratified_shuffle_split", "n_splits": 2, "test_size": 0.25},
    "scoring": "accuracy",
}


def test_tiny_hyperband_study(make_study):
    import pandas as pd

    study = make_study(TINY)
    dry = study.snakemake("-n")
    assert jobs_run(dry, "hyperband_eval") == 3 + 1 + 2
    assert jobs_run(dry, "hyperband_promote") == 1

    study.snakemake()
    out = study.out
    # The promoted model continued: 1 call in rung 0, 2 more in rung 1, state carried.
    promotion = json.loads((out / "hyperband/b1/r0/promotion.json").read_text())
    (survivor,) = promotion["survivors"]
    assert survivor["score"] == max(r["score"] for r in promotion["ranking"])
    final = json.loads((out / "hyperband/b1/r1/s0.json").read_text())
    assert final["model_id"] == survivor["model_id"]
    assert [h["units"] for h in final["history"]] == [1, 3]
    assert final["units"] == 3 and final["units_trained"] == 2
    with open(out / "hyperband/b1/r1/s0.pkl", "rb") as fh:
        (model,) = pickle.load(fh)
    assert model.t_ == 3 * 50  # samples seen accumulate over 3 calls of 50 rows

    board = pd.read_csv(out / "leaderboard.csv")
    assert len(board) == 1 + 2  # final rung of bracket 1 and of bracket 0
    for column in (
        "params",
        "mean_test_accuracy",
        "std_test_accuracy",
        "rank_test_accuracy",
        "split0_test_accuracy",
        "mean_fit_time",
        "n_resources",
        "bracket",
    ):
        assert column in board
    assert (board["n_resources"] == 3).all()
    assert board["mean_test_accuracy"].between(0, 1).all()
    history = pd.read_csv(out / "history.csv")
    assert len(history) == 6 and set(history["units"]) == {1, 3}
    best = study.best()
    assert best["plan"]["n_models"] == 5 and best["plan"]["units"] == 2 * 1 + 1 * 3 + 2 * 3
    assert best["used"]["units"] == best["plan"]["units"]
    assert best["mean_test_scores"]["accuracy"] == board["mean_test_accuracy"].max()
    refit = json.loads((out / "refit.json").read_text())
    assert refit["n_resources"] == 3 and 0 <= refit["test_scores"]["accuracy"] <= 1
    assert (out / "model.pkl").stat().st_size > 0
    assert (out / "plots/score_vs_resource.png").read_bytes()[:4] == b"\x89PNG"

    # Nothing changed: a rerun runs no job.
    again = study.snakemake()
    assert "Nothing to be done" in again.stdout + again.stderr
