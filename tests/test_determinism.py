"""Determinism where randomness matters: a RandomForest study with ``seed``.

``--cores 1`` and ``--cores 2`` (warm worker), and ``worker: false`` (a new Python per job, trials
batched), give
the same leaderboard at atol 1e-12, and all equal ``GridSearchCV`` on an estimator built by hand
with ``random_state=seed`` (own loader, own splitter). A GridSearchCV with another seed gives
other scores, so the comparison can fail when ``seed`` does not reach ``random_state``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import datasets
from sklearn import model_selection as ms
from sklearn.ensemble import RandomForestClassifier

from tests.conftest import without_timings

pytestmark = pytest.mark.slow

ATOL = 1e-12
SEED = 7
GRID = {"max_features": [0.3, 0.7], "bootstrap": [True, False], "n_estimators": [4]}
FOREST = {
    "study": "forest",
    "seed": SEED,
    "data": {"loader": "wine"},
    "estimator": {"class": "sklearn.ensemble.RandomForestClassifier", "params": {"max_depth": 3}},
    "search": {"grid": GRID},
    "cv": {"kind": "stratified", "n_splits": 3, "shuffle": True, "seed": 4},
    "scoring": ["accuracy", "f1_macro"],
}
METRICS = FOREST["scoring"]
TARGET = f"results/{FOREST['study']}/leaderboard.csv"


def _grid_search(random_state: int):
    X, y = datasets.load_wine(return_X_y=True)
    return ms.GridSearchCV(
        RandomForestClassifier(max_depth=3, random_state=random_state),
        GRID,
        cv=ms.StratifiedKFold(3, shuffle=True, random_state=4),
        scoring=METRICS,
        refit="accuracy",
    ).fit(X, y)


def _score_columns(frame):
    return [c for c in frame.columns if c.startswith(("split", "mean_test", "std_test"))]


def _assert_equal_boards(a, b):
    """Equal leaderboards: scores at atol 1e-12 (rtol 0), every other column exactly."""
    a, b = without_timings(a), without_timings(b)
    assert list(a.columns) == list(b.columns)
    scores = _score_columns(a)
    assert scores
    for col in scores:
        np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), rtol=0, atol=ATOL, err_msg=col)
    rest = [c for c in a.columns if c not in scores]
    assert a[rest].equals(b[rest]), (a[rest], b[rest])


def test_random_forest_is_deterministic_across_cores_and_worker(make_study):
    one = make_study(FOREST, "one")
    two = make_study(FOREST, "two")
    # A new Python per job (about 5 s each here): trials in two batched jobs keep that short.
    cold = make_study(dict(FOREST, worker=False, trials_per_job=6), "cold")
    one.snakemake(TARGET, "--cores", "1")
    two.snakemake(TARGET, "--cores", "2")
    cold.snakemake(TARGET, "--cores", "2")
    assert not (cold.out / "logs" / "worker.log").exists()  # really without the warm worker
    assert (two.out / "logs" / "worker.log").exists()
    assert len(list((cold.out / "logs" / "batches").glob("*.log"))) >= 1

    boards = {s.workdir.name: s.leaderboard() for s in (one, two, cold)}
    _assert_equal_boards(boards["one"], boards["two"])
    _assert_equal_boards(boards["two"], boards["cold"])

    # The expected side: scikit-learn alone, random_state = the study's seed.
    search = _grid_search(SEED)
    frame = boards["two"]
    assert list(frame["params"].map(json.loads)) == search.cv_results_["params"]
    for m in METRICS:
        for col in [f"mean_test_{m}", f"std_test_{m}"] + [f"split{k}_test_{m}" for k in range(3)]:
            np.testing.assert_allclose(
                frame[col].to_numpy(float), search.cv_results_[col], rtol=0, atol=ATOL, err_msg=col
            )
        np.testing.assert_array_equal(frame[f"rank_test_{m}"].to_numpy(), search.cv_results_[f"rank_test_{m}"])
    assert two.best()["params"] == search.best_params_
    for record in (json.loads(p.read_text()) for p in two.trial_files()):
        assert record["seed"] == SEED

    # The seed matters here: another random_state gives other scores.
    other = _grid_search(SEED + 1)
    assert not np.allclose(
        other.cv_results_["split0_test_accuracy"], search.cv_results_["split0_test_accuracy"], rtol=0, atol=ATOL
    )
    # ... and so does the randomness of bootstrap and max_features (the configurations differ).
    assert len(set(np.round(search.cv_results_["mean_test_accuracy"], 12))) > 1
