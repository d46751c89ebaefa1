"""No configuration finished: the leaderboard and report say why, nothing is refit, the run fails with
one line. A refit over its limit is killed and recorded."""

from __future__ import annotations

import json
import pickle
import time

import pytest

from snaketune.evaluation.refit import REFIT_MARGIN, refit_limit

ALL_TIMEOUT = {
    "study": "hang",
    "data": {"loader": "iris"},
    "estimator": {"class": "tests.estimators.SleepyClassifier"},
    "allowed_modules": ["tests.estimators"],
    # The case: one configuration whose fit sleeps 300 s, trial_timeout 2.
    "search": {"grid": {"delay": [300], "n_neighbors": [5]}},
    "cv": {"n_splits": 2},
    "trial_timeout": 2,
}


@pytest.mark.slow
def test_a_study_where_every_configuration_times_out_ends_with_one_line_and_no_refit(make_study):
    study = make_study(ALL_TIMEOUT)
    t0 = time.monotonic()
    proc = study.snakemake(check=False, timeout=120)
    took = time.monotonic() - t0
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert took < 60, took
    line = "snaketune: no configuration finished: 2 trials timed out, 0 failed; see leaderboard.md"
    assert text.count(line) == 1, text[-3000:]
    assert "Traceback" not in text and "Exiting because a job execution failed" not in text
    out = study.out
    assert len(study.leaderboard()) == 1
    markdown = (out / "leaderboard.md").read_text()
    assert "**No best configuration**" in markdown and "TrialTimeout: killed after 2 s" in markdown
    best = json.loads((out / "best.json").read_text())
    assert best["params"] is None and best["no_best"] in line
    refit = json.loads((out / "refit.json").read_text())
    assert refit["status"] == "no_best" and refit["skipped"] and refit["params"] is None
    assert pickle.loads((out / "model.pkl").read_bytes()) is None
    assert "No best configuration" in (out / "report" / "best.html").read_text()
    assert "No best configuration" in (out / "report" / "landing.rst").read_text()


@pytest.mark.slow
def test_a_refit_over_its_limit_is_killed_and_recorded(make_study):
    config = dict(ALL_TIMEOUT, study="slow-refit", trial_timeout=None, refit_timeout=0.5)
    config["search"] = {"grid": {"delay": [1.0], "n_neighbors": [1, 5]}}
    study = make_study(config)
    proc = study.snakemake()
    refit = json.loads((study.out / "refit.json").read_text())
    assert refit["status"] == "timeout" and refit["skipped"] and refit["limit"] == 0.5
    assert "over its limit of 0.5 s" in refit["reason"] and "refit_timeout" in refit["reason"]
    assert refit["params"] == study.best()["params"]
    assert pickle.loads((study.out / "model.pkl").read_bytes()) is None
    assert "no refit model: the refit ran over its limit" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_a_refit_within_its_derived_limit_fits_and_records_the_limit(make_study):
    config = dict(ALL_TIMEOUT, study="fits", trial_timeout=5, cv={"n_splits": 3})
    config["search"] = {"grid": {"delay": [0.0], "n_neighbors": [1, 5]}}
    study = make_study(config)
    study.snakemake()
    refit = json.loads((study.out / "refit.json").read_text())
    assert refit["status"] == "ok" and refit["n_train"] == 150
    # 3 folds of iris: 100 training rows a fold, 150 in all.
    assert refit["limit"] == pytest.approx(5 * 1.5 * REFIT_MARGIN)
    assert pickle.loads((study.out / "model.pkl").read_bytes()).n_neighbors in (1, 5)


def test_refit_limit_prefers_refit_timeout_and_scales_trial_timeout_by_rows():
    best = {"fold_n_train": 80.0}
    assert refit_limit(best, 100, None, None) is None
    assert refit_limit(best, 100, 10, 3) == 3.0
    assert refit_limit(best, 100, 10, None) == pytest.approx(10 * 1.25 * REFIT_MARGIN)
    assert refit_limit({"fold_n_train": None}, 100, 10, None) == 10 * REFIT_MARGIN
    assert refit_limit({"fold_n_train": 200.0}, 100, 10, None) == 10 * REFIT_MARGIN  # never below
