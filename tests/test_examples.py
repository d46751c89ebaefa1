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
    # auto batching measured a trial once and grouped the 600 tiny trials into few jobs.
    batching = json.loads((study.out / ".snaketune" / "trials_per_job.json").read_text())
    assert batching["trials_per_job"] > 1


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
