"""Failures are explained, not only counted: the error and warning messages reach best.json, the
end of the run and the report, as GridSearchCV prints "n fits failed with the following error"."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.configs import iris

pytestmark = pytest.mark.slow

FLAKY = iris("why", "tests.estimators.FlakyClassifier", {"grid": {"fail": [False, True], "n_neighbors": [3, 5]}})


def test_failures_and_warnings_are_explained(make_study):
    study = make_study(FLAKY)
    proc = study.snakemake()
    best = study.best()
    (failure,) = best["failures"]
    assert (failure["error"], failure["trials"], failure["configurations"]) == (
        "FloatingPointError: diverged on purpose",
        6,
        2,
    )
    assert failure["example"]["params"]["fail"] is True
    assert failure["traceback"].rstrip().endswith("FloatingPointError: diverged on purpose")
    assert failure["example_trial"].startswith(failure["example"]["config_key"])
    (warned,) = best["trial_warnings"]
    assert (warned["warning"], warned["trials"], warned["configurations"]) == (
        "ConvergenceWarning: did not converge (on purpose)",
        6,
        2,
    )
    assert warned["example"]["params"]["fail"] is False
    # n_warnings per configuration: every fold of a fitting configuration warns, none of a failing one.
    board = study.leaderboard()
    fails = [json.loads(p)["fail"] for p in board["params"]]
    assert board["n_warnings"].tolist() == [0 if f else 3 for f in fails]
    assert board["n_failed"].tolist() == [3 if f else 0 for f in fails]
    markdown = (study.out / "leaderboard.md").read_text()
    assert "## Failures: 6 of 12 trials, scored `error_score: nan`" in markdown
    assert "- 6 trials of 2 configurations: `FloatingPointError: diverged on purpose`" in markdown
    assert "  e.g. `fail=true, n_neighbors=" in markdown
    assert "- 6 trials of 2 configurations: `ConvergenceWarning: did not converge (on purpose)`" in markdown
    end = proc.stdout + proc.stderr
    assert "6 of 12 trials failed (recorded, scored nan):" in end
    assert "  6 x FloatingPointError: diverged on purpose" in end
    assert "warning in 6 trials: ConvergenceWarning: did not converge (on purpose)" in end
    page = (study.out / "report" / "study.html").read_text()
    assert "Why trials failed" in page and "FloatingPointError: diverged on purpose" in page
    assert "ConvergenceWarning: did not converge (on purpose)" in page
    failures = (study.out / "report" / "failures.html").read_text()
    assert failures.count("<pre>") == 1 and "Traceback (most recent call last)" in failures
    assert failures.count("FloatingPointError: diverged on purpose</code></h2>") == 1
    assert "2 of 4 configurations warned" in failures
    landing = (study.out / "report" / "landing.rst").read_text()
    assert "trials failed or timed out: see Failures_" in landing


LOGISTIC = {
    "study": "quiet",
    "data": {"loader": "iris"},
    "estimator": {
        "steps": [
            {"name": "scale", "class": "sklearn.preprocessing.StandardScaler"},
            {"name": "lr", "class": "sklearn.linear_model.LogisticRegression"},
        ]
    },
    "search": {"grid": {"lr__C": [0.1, 1.0]}},
    "cv": {"kind": "stratified", "n_splits": 3, "shuffle": True, "seed": 0},
    # Two threads a trial: snaketune passes n_jobs to estimators that use it, and must not pass it
    # to LogisticRegression, where it is deprecated since scikit-learn 1.8 (a FutureWarning each fit).
    "resources": {"threads": 2},
}


def test_logistic_regression_study_records_no_warning_snaketune_caused(make_study):
    import warnings

    from sklearn import datasets
    from sklearn import model_selection as ms
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    study = make_study(LOGISTIC)
    study.snakemake()
    records = [json.loads(f.read_text()) for f in study.trial_files()]
    assert len(records) == 6 and [r["warnings"] for r in records] == [[]] * 6
    assert study.best()["trial_warnings"] == [] and study.leaderboard()["n_warnings"].tolist() == [0, 0]
    X, y = datasets.load_iris(return_X_y=True)
    pipe = Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression())])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search = ms.GridSearchCV(
            pipe, LOGISTIC["search"]["grid"], cv=ms.StratifiedKFold(3, shuffle=True, random_state=0)
        ).fit(X, y)
    assert caught == []  # the same fits by hand warn about nothing either
    np.testing.assert_allclose(
        study.leaderboard()["mean_test_accuracy"], search.cv_results_["mean_test_score"], rtol=0, atol=1e-12
    )
