"""The shipped studies run: the default config.yaml and the seeds' examples."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _load(path):
    return yaml.safe_load((REPO / path).read_text())


def test_default_study(make_study):
    study = make_study(_load("config.yaml"))
    study.snakemake()
    frame = study.leaderboard()
    assert len(frame) == 30 and len(study.trial_files()) == 150
    assert frame["mean_test_accuracy"].max() > 0.97
    refit = json.loads((study.out / "refit.json").read_text())
    assert refit["n_test"] == 360 and refit["test_scores"]["accuracy"] > 0.95


def test_knn_iris_example(make_study):
    study = make_study(_load("examples/knn-iris.yaml"))
    study.snakemake()
    frame = study.leaderboard()
    assert len(frame) == 120 and len(study.trial_files()) == 600
    assert set(frame["param_metric"]) == {"euclidean", "manhattan", "chebyshev", "braycurtis"}
    assert frame["mean_test_accuracy"].max() >= 0.96
    # auto batching on a local run: the 600 tiny trials are one job that runs them on forks.
    assert [p.name for p in (study.out / "batches").glob("*.json")] == ["b1x0.json"]


def test_svc_digits_example_reduced(make_study):
    config = _load("examples/svc-digits.yaml")
    config["search"]["random"]["n_iter"] = 8  # the full 60 x 5 folds runs in the benchmark
    study = make_study(config)
    study.snakemake()
    frame = study.leaderboard()
    assert len(frame) == 8 and frame["n_failed"].sum() == 0
    params = [json.loads(p) for p in frame["params"]]
    assert all(1e-10 <= p["C"] <= 1e10 and 1e-10 <= p["gamma"] <= 1e10 for p in params)
    assert {p["tol"] for p in params} <= {1e-4, 1e-3, 1e-2, 1e-1}


def test_flights_example_reduced_equals_randomizedsearchcv(make_study):
    """The real regression table (integer target, text columns): the same candidates, held-out
    rows and folds as RandomizedSearchCV on the user's own pandas code, equal scores."""
    import shutil

    from bench.bench_real_table import sklearn_search
    from tests.test_e2e_core import _assert_matches_sklearn

    config = _load("examples/flights.yaml")
    config["search"]["random"]["n_iter"] = 3
    config["estimator"]["steps"][1]["params"]["max_iter"] = 10  # the full study runs in bench/
    study = make_study(config)
    (study.workdir / "examples" / "data").mkdir(parents=True)
    shutil.copy(REPO / "examples" / "data" / "flights.parquet", study.workdir / "examples" / "data")
    study.snakemake()

    search, X, y, X_test, y_test = sklearn_search(config, REPO)
    reference = search.fit(X, y)
    _assert_matches_sklearn(study.leaderboard(), reference.cv_results_, config["scoring"], 3)
    refit = json.loads((study.out / "refit.json").read_text())
    assert refit["n_test"] == len(y_test) == 10_000
    expected = reference.score(X_test, y_test)
    assert abs(refit["test_scores"][config["refit"]] - expected) <= 1e-9, (refit["test_scores"], expected)
