"""snaketune's searches with scikit-learn's ``scoring=None`` and callable scorers, against scikit-learn's.

Every fit runs the real workflow in a temporary study_dir; scikit-learn's search runs in the test on
the same folds, so every number compared is computed twice, two ways.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from sklearn import model_selection as ms
from sklearn.datasets import load_diabetes, load_iris
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import PoissonRegressor
from sklearn.metrics import fbeta_score, make_scorer
from sklearn.mixture import GaussianMixture
from sklearn.svm import SVC

import snaketune
from snaketune.search_cv import metric_names
from tests.scorers import plain_scorer
from tests.test_search_cv import TOL, assert_same_results, trial_files


@pytest.mark.slow
def test_scoring_none_is_the_estimators_own_score(tmp_path):
    # PoissonRegressor.score is D² (deviance explained), not r2: the trials call the estimator's score.
    X, y = load_diabetes(return_X_y=True)
    kwargs = dict(cv=ms.KFold(3, shuffle=True, random_state=0), return_train_score=True)
    grid = {"alpha": [0.1, 1.0]}
    model = PoissonRegressor(solver="newton-cholesky")  # lbfgs takes seconds here
    ours = snaketune.GridSearchCV(model, grid, study_dir=tmp_path, **kwargs).fit(X, y)
    theirs = ms.GridSearchCV(model, grid, **kwargs).fit(X, y)
    assert_same_results(ours, theirs)
    assert {"mean_test_score", "mean_train_score", "split2_train_score"} <= set(ours.cv_results_)
    assert type(ours.scorer_) is type(theirs.scorer_)  # scikit-learn's _PassthroughScorer
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=0, atol=TOL)


@pytest.mark.slow
def test_unsupervised_scoring_none_is_the_estimators_own_score(tmp_path):
    # fit(X): the trials fit and score with y=None, as scikit-learn's (GaussianMixture.score(X) is
    # the mean log-likelihood).
    X, _ = load_iris(return_X_y=True)
    grid = {"n_components": [1, 2], "covariance_type": ["full", "diag"]}
    kwargs = dict(cv=3, return_train_score=True)
    model = GaussianMixture(random_state=0)
    ours = snaketune.GridSearchCV(model, grid, study_dir=tmp_path, **kwargs).fit(X)
    theirs = ms.GridSearchCV(model, grid, **kwargs).fit(X)
    assert_same_results(ours, theirs)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    assert ours.score(X) == pytest.approx(theirs.score(X), abs=TOL)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:One or more of the test scores are non-finite")
def test_callable_scorers_single_and_mixed_with_names_and_refit(tmp_path):
    X, y = load_iris(return_X_y=True)
    cv = ms.StratifiedKFold(3, shuffle=True, random_state=0)
    grid = {"C": [0.1, 1.0], "gamma": [0.1]}
    f2 = make_scorer(fbeta_score, beta=2, average="macro")
    ours = snaketune.GridSearchCV(SVC(), grid, scoring=f2, cv=cv, study_dir=tmp_path).fit(X, y)
    assert_same_results(ours, ms.GridSearchCV(SVC(), grid, scoring=f2, cv=cv).fit(X, y))
    assert ours.scorer_ is f2
    # Another make_scorer of the same metric function (the same scorer name): other trials.
    f05 = make_scorer(fbeta_score, beta=0.5, average="macro")
    ours = snaketune.GridSearchCV(SVC(), grid, scoring=f05, cv=cv, study_dir=tmp_path).fit(X, y)
    assert_same_results(ours, ms.GridSearchCV(SVC(), grid, scoring=f05, cv=cv).fit(X, y))
    single = trial_files(tmp_path)
    assert len(single) == 2 * 2 * 3  # two scorers: each its own trials
    assert len(list(tmp_path.glob("results/search-*/inputs/scorer-*.pkl"))) == 2

    # A name and two callables; refit by a callable's name, then by a callable of the results.
    scoring = {"acc": "accuracy", "f2": f2, "margin": plain_scorer()}
    kwargs = dict(scoring=scoring, cv=cv, return_train_score=True)
    ours = snaketune.GridSearchCV(SVC(), grid, refit="margin", study_dir=tmp_path, **kwargs).fit(X, y)
    theirs = ms.GridSearchCV(SVC(), grid, refit="margin", **kwargs).fit(X, y)
    assert_same_results(ours, theirs)
    assert {"mean_test_f2", "split1_train_margin", "rank_test_acc"} <= set(ours.cv_results_)
    assert set(ours.scorer_) == {"acc", "f2", "margin"}
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    mixed = trial_files(tmp_path)
    assert len(mixed) == len(single) + 2 * 3 and {k: mixed[k] for k in single} == single

    def lowest_f2(results):  # refit=callable: best_index_ from cv_results_, no best_score_
        return int(np.argmin(results["mean_test_f2"]))

    # New scorer objects with the same content: the same trials, nothing recomputed.
    kwargs["scoring"] = {
        "acc": "accuracy",
        "f2": make_scorer(fbeta_score, beta=2, average="macro"),
        "margin": plain_scorer(),
    }
    ours = snaketune.GridSearchCV(SVC(), grid, refit=lowest_f2, study_dir=tmp_path, **kwargs).fit(X, y)
    theirs = ms.GridSearchCV(SVC(), grid, refit=lowest_f2, **kwargs).fit(X, y)
    assert ours.best_index_ == theirs.best_index_ and ours.best_params_ == theirs.best_params_
    assert not hasattr(ours, "best_score_") and not hasattr(theirs, "best_score_")
    assert trial_files(tmp_path) == mixed

    # A plain function alone, failing for some candidates: their scores are error_score, as scikit-learn's.
    def picky(estimator, X, y):
        if estimator.C < 1:
            raise ValueError("C too small to score")
        return float(np.mean(estimator.predict(X) == y))

    with pytest.warns(FitFailedWarning, match="C too small"):
        ours = snaketune.GridSearchCV(SVC(), grid, scoring=picky, cv=cv, study_dir=tmp_path).fit(X, y)
    with pytest.warns(UserWarning, match="Scoring failed"):
        theirs = ms.GridSearchCV(SVC(), grid, scoring=picky, cv=cv).fit(X, y)
    assert_same_results(ours, theirs)
    assert np.isnan(ours.cv_results_["mean_test_score"][0])


def test_the_same_callable_in_another_python_has_the_same_name():
    """A trial's key hashes the scorer's pickled bytes: another session (another hash seed) pickles
    the same scorer to the same bytes, so it finds its trials."""
    code = (
        "import hashlib, sys; sys.path.insert(0, sys.argv[1]); "
        "from sklearn.metrics import fbeta_score, make_scorer; from snaketune.search_cv import metric_names; "
        "from tests.scorers import plain_scorer; "
        "m = metric_names({'f2': make_scorer(fbeta_score, beta=2), 'margin': plain_scorer()}); "
        "print({k: hashlib.sha256(v).hexdigest() for k, v in m.pickled.items()})"
    )
    root = str(Path(__file__).resolve().parents[1])
    here = metric_names({"f2": make_scorer(fbeta_score, beta=2), "margin": plain_scorer()})
    expected = {k: hashlib.sha256(v).hexdigest() for k, v in here.pickled.items()}
    assert set(expected) == {"f2", "margin"}
    env = dict(os.environ, PYTHONHASHSEED="12345")  # another seed than this Python's (random, or the CI's)
    proc = subprocess.run([sys.executable, "-c", code, root], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == repr(expected)


def test_an_unpicklable_scorer_is_one_clear_error_before_anything_runs(tmp_path):
    X, y = load_iris(return_X_y=True)
    lock = threading.Lock()

    def locked_accuracy(estimator, X, y):
        with lock:
            return float(np.mean(estimator.predict(X) == y))

    study_dir = tmp_path / "study"
    for scoring, where in ((locked_accuracy, "scoring:"), ({"acc": "accuracy", "locked": locked_accuracy}, "'locked'")):
        search = snaketune.GridSearchCV(SVC(), {"C": [1.0]}, scoring=scoring, refit=False, cv=3, study_dir=study_dir)
        with pytest.raises(TypeError, match=f"{where}.* the scorer .*locked_accuracy.* cannot be serialised"):
            search.fit(X, y)
    assert not study_dir.exists()  # nothing stored, nothing run


def test_a_config_loads_only_scorers_its_own_search_stored(tmp_path):
    import cloudpickle

    from snaketune.config.load import ConfigError, load_config

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(b"not even read")
    inputs = tmp_path / "results" / "s" / "inputs"
    inputs.mkdir(parents=True)
    (inputs / "scorer-0.pkl").write_bytes(cloudpickle.dumps(make_scorer(fbeta_score, beta=2, average="macro")))
    config = {
        "study": "s",
        "data": {"loader": "iris"},
        "estimator": {"class": "sklearn.svm.SVC"},
        "search": {"grid": {"C": [1]}},
        "scoring": ["accuracy", "f2"],
    }
    for path in (str(evil), "evil.pkl", "results/s/inputs/../../../evil.pkl", "results/s/evil.pkl"):
        with pytest.raises(ConfigError, match="scorers.f2: .* is not in .*s/inputs"):
            load_config(dict(config, scorers={"f2": path}), tmp_path, check_data=False)
    loaded = load_config(dict(config, scorers={"f2": "results/s/inputs/scorer-0.pkl"}), tmp_path, check_data=False)
    assert loaded["scorers"] == {"f2": "results/s/inputs/scorer-0.pkl"} and loaded["refit"] == "accuracy"
    # A config names scorers only: a name no scorer has is refused, never resolved as anything else.
    with pytest.raises(ConfigError, match="unknown scorer 'results/s/inputs/scorer-0.pkl'"):
        load_config(dict(config, scoring=["results/s/inputs/scorer-0.pkl"]), tmp_path, check_data=False)
    with pytest.raises(ConfigError, match="scorers.accuracy: 'accuracy' names a scikit-learn scorer"):
        load_config(dict(config, scorers={"accuracy": "results/s/inputs/scorer-0.pkl"}), tmp_path, check_data=False)
    # scoring=None's own score, by its name: for an estimator that has one.
    assert load_config(dict(config, scoring="score"), tmp_path, check_data=False)["scoring"] == ["score"]


def test_unsupervised_with_a_dataframe_is_refused_before_anything_runs(tmp_path):
    import pandas as pd

    frame = pd.DataFrame(load_iris().data, columns=["a", "b", "c", "d"])
    search = snaketune.GridSearchCV(GaussianMixture(), {"n_components": [1, 2]}, cv=3, study_dir=tmp_path / "s")
    with pytest.raises(NotImplementedError, match="y=None .* not a DataFrame"):
        search.fit(frame)
    assert not list((tmp_path / "s").glob("results/*/*"))
