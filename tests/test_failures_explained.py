"""Failures are explained, not only counted: the error and warning messages reach best.json, the
end of the run and the report, as GridSearchCV prints "n fits failed with the following error"."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

FLAKY = {
    "study": "why",
    "data": {"loader": "iris"},
    "estimator": {"class": "tests.estimators.FlakyClassifier"},
    "allowed_modules": ["tests.estimators"],
    "search": {"grid": {"fail": [False, True], "n_neighbors": [3, 5]}},
    "cv": {"n_splits": 3},
}


def test_failures_and_warnings_are_explained(make_study):
    study = make_study(FLAKY)
    proc = study.snakemake()
    best = study.best()
    assert best["failures"] == [{"error": "FloatingPointError: diverged on purpose", "trials": 6}]
    assert best["trial_warnings"] == [{"warning": "ConvergenceWarning: did not converge (on purpose)", "trials": 6}]
    end = proc.stdout + proc.stderr
    assert "6 of 12 trials failed (recorded, scored nan):" in end
    assert "  6 x FloatingPointError: diverged on purpose" in end
    assert "warning in 6 trials: ConvergenceWarning: did not converge (on purpose)" in end
    page = (study.out / "report" / "study.html").read_text()
    assert "Why trials failed" in page and "FloatingPointError: diverged on purpose" in page
    assert "ConvergenceWarning: did not converge (on purpose)" in page
