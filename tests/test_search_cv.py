"""snaketune.GridSearchCV / RandomizedSearchCV against scikit-learn's, on the same folds.

Every fit runs the real workflow (Snakemake, warm worker) in a temporary study_dir; scikit-learn's
search runs in the test on the same data, so the numbers compared are computed twice, two ways.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import loguniform
from sklearn import model_selection as ms
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.svm import SVC

import snaketune
from snaketune import engine

TOL = 1e-12


def assert_same_results(ours, theirs) -> None:
    """Every score column, rank and parameter of cv_results_, and the best_* attributes."""
    ref = theirs.cv_results_
    got = ours.cv_results_
    score_keys = [k for k in ref if "_test_" in k or "_train_" in k or k.startswith("rank_")]
    assert score_keys and set(score_keys) <= set(got)
    for key in score_keys:
        np.testing.assert_allclose(got[key], ref[key], rtol=0, atol=TOL, err_msg=key)
    assert got["params"] == ref["params"]
    for key in (k for k in ref if k.startswith("param_")):
        assert list(got[key]) == list(ref[key]), key
    assert ours.best_index_ == theirs.best_index_
    assert ours.best_params_ == theirs.best_params_
    assert ours.best_score_ == pytest.approx(theirs.best_score_, abs=TOL)
    assert ours.n_splits_ == theirs.n_splits_
    assert ours.multimetric_ == theirs.multimetric_


class Unpicklable:
    """Copies (as clone does) but cannot be pickled, like an open connection a step keeps."""

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        raise TypeError("cannot pickle an open handle")


def trial_files(study_dir: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in study_dir.glob("results/search-*/trials/*.json")}


@pytest.mark.slow
def test_grid_multimetric_equal_grown_grid_only_new_folds_new_process_nothing(tmp_path, monkeypatch):
    X, y = load_iris(return_X_y=True)
    cv = ms.StratifiedKFold(3, shuffle=True, random_state=0)
    grid = {"C": [0.1, 1.0, 10.0], "gamma": [0.01, 0.1]}
    kwargs = dict(scoring=["accuracy", "f1_macro"], refit="f1_macro", cv=cv, return_train_score=True)
    engine.stop()  # this fit starts its engine (an earlier test's may still be up)
    ours = snaketune.GridSearchCV(SVC(), grid, n_jobs=2, study_dir=tmp_path, **kwargs).fit(X, y)
    # A local run has nothing to time (its batch job runs its trials on forks): no timing is kept.
    # The fit's own process ran trials while its engine started (this pid), the run the others.
    assert not list(tmp_path.glob("results/search-*/.snaketune/trials_per_job.json"))
    pids = {json.loads(p.read_text())["pid"] for p in tmp_path.glob("results/search-*/trials/*.json")}
    assert os.getpid() in pids
    theirs = ms.GridSearchCV(SVC(), grid, **kwargs).fit(X, y)
    assert_same_results(ours, theirs)
    assert "split2_train_accuracy" in ours.cv_results_
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    assert ours.score(X, y) == theirs.score(X, y)
    assert set(ours.scorer_) == {"accuracy", "f1_macro"} and ours.refit_time_ >= 0
    first = trial_files(tmp_path)
    assert len(first) == 6 * 3

    grown = dict(grid, C=[*grid["C"], 100.0])  # two new candidates: 6 new trials, no others
    ours = snaketune.GridSearchCV(SVC(), grown, n_jobs=2, study_dir=tmp_path, **kwargs).fit(X, y)
    assert_same_results(ours, ms.GridSearchCV(SVC(), grown, **kwargs).fit(X, y))
    second = trial_files(tmp_path)
    assert len(second) == 8 * 3
    assert {k: second[k] for k in first} == first  # not one old trial rewritten

    # The same call in another Python computes nothing.
    script = (
        "import sys, snaketune; from sklearn.datasets import load_iris; from sklearn.svm import SVC; "
        "from sklearn.model_selection import StratifiedKFold; X, y = load_iris(return_X_y=True); "
        f"s = snaketune.GridSearchCV(SVC(), {grown!r}, n_jobs=2, study_dir=sys.argv[1], scoring=['accuracy', "
        "'f1_macro'], refit='f1_macro', cv=StratifiedKFold(3, shuffle=True, random_state=0), "
        "return_train_score=True).fit(X, y); print(s.best_params_)"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "snakemake" not in (proc.stdout + proc.stderr).lower()  # every trial is there: no run at all
    assert trial_files(tmp_path) == second


@pytest.mark.slow
def test_randomized_pipeline_on_a_dataframe_with_groups(tmp_path):
    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "colour": rng.choice(["red", "green", "blue"], size=n),
        }
    )
    y = ((frame["a"] + (frame["colour"] == "red")) > 0.3).astype(int).to_numpy()
    groups = np.repeat(np.arange(12), 10)
    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer([("num", StandardScaler(), ["a", "b"]), ("cat", OneHotEncoder(), ["colour"])]),
            ),
            ("clf", LogisticRegression()),
        ]
    )
    space = {"clf__C": loguniform(1e-3, 1e2), "prep__num__with_mean": [True, False]}
    kwargs = dict(n_iter=4, random_state=0, cv=ms.GroupKFold(3))
    ours = snaketune.RandomizedSearchCV(model, space, n_jobs=2, study_dir=tmp_path, **kwargs).fit(
        frame, y, groups=groups
    )
    theirs = ms.RandomizedSearchCV(model, space, **kwargs).fit(frame, y, groups=groups)
    assert_same_results(ours, theirs)
    assert "mean_test_score" in ours.cv_results_
    np.testing.assert_allclose(ours.predict_proba(frame), theirs.predict_proba(frame), rtol=0, atol=TOL)
    assert list(ours.feature_names_in_) == ["a", "b", "colour"]


@pytest.mark.slow
def test_fit_inside_a_running_event_loop_with_a_notebook_lambda(tmp_path):
    X, y = load_iris(return_X_y=True)
    model = Pipeline([("double", FunctionTransformer(lambda Z: Z * 2.0)), ("svc", SVC())])
    grid = {"svc__C": [0.5, 5.0]}

    async def notebook_cell():
        return snaketune.GridSearchCV(model, grid, cv=3, n_jobs=2, study_dir=tmp_path).fit(X, y)

    ours = asyncio.run(notebook_cell())
    assert_same_results(ours, ms.GridSearchCV(model, grid, cv=3).fit(X, y))


@pytest.mark.slow
def test_nested_in_cross_validate(tmp_path):
    X, y = load_iris(return_X_y=True)
    grid = {"C": [0.1, 10.0]}
    outer = ms.KFold(2, shuffle=True, random_state=1)
    ours = ms.cross_validate(snaketune.GridSearchCV(SVC(), grid, cv=3, n_jobs=2, study_dir=tmp_path), X, y, cv=outer)
    theirs = ms.cross_validate(ms.GridSearchCV(SVC(), grid, cv=3), X, y, cv=outer)
    np.testing.assert_allclose(ours["test_score"], theirs["test_score"], rtol=0, atol=TOL)


def test_clone_and_params_round_trip():
    search = snaketune.RandomizedSearchCV(SVC(), {"C": [1, 2]}, n_iter=2, study_dir="x", trial_timeout=5)
    copy = clone(search)
    assert copy.get_params()["study_dir"] == "x" and copy.get_params()["trial_timeout"] == 5
    assert copy.set_params(n_iter=3).n_iter == 3


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda d: snaketune.GridSearchCV(SVC(), {"Cc": [1]}, study_dir=d), ValueError, "Invalid parameter 'Cc'"),
        (lambda d: snaketune.GridSearchCV(SVC(), {"C": [1]}, scoring="acuracy", study_dir=d), ValueError, "acuracy"),
        (
            lambda d: snaketune.GridSearchCV(SVC(), {"C": [1]}, scoring=["accuracy", "f1_macro"], study_dir=d),
            ValueError,
            "multi-metric scoring",
        ),
        (lambda d: snaketune.GridSearchCV(SVC(), {"C": 1}, study_dir=d), TypeError, "Parameter grid"),
        (lambda d: snaketune.GridSearchCV(SVC(), {"C": [1]}, cv=500, study_dir=d), ValueError, "n_splits=500"),
        (
            lambda d: snaketune.GridSearchCV(
                Pipeline([("f", FunctionTransformer(kw_args={"handle": Unpicklable()})), ("svc", SVC())]),
                {"svc__C": [1]},
                study_dir=d,
            ),
            TypeError,
            "parameter 'f__kw_args'",
        ),
        (
            lambda d: snaketune.GridSearchCV(SVC(), {"class_weight": [{0: 1.0, 1: 2.0}]}, study_dir=d),
            ValueError,
            "parameter 'class_weight'",
        ),
        (
            lambda d: snaketune.GridSearchCV(SVC(), {"C": [1]}, trial_timeout=0, study_dir=d),
            ValueError,
            "trial_timeout",
        ),
        (lambda d: snaketune.GridSearchCV(SVC(), [{"C": [1]}, {}], study_dir=d), NotImplementedError, "cross_validate"),
    ],
)
def test_bad_input_raises_before_anything_runs(tmp_path, make, error, match):
    X, y = load_iris(return_X_y=True)
    study_dir = tmp_path / "study"
    with pytest.raises(error, match=match):
        make(study_dir).fit(X, y)
    assert not list(study_dir.glob("results/*/trials"))


def test_a_config_loads_only_a_pickle_its_own_search_stored(tmp_path):
    from snaketune.config.load import ConfigError, load_config

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(b"not even read")
    config = {
        "study": "s",
        "data": {"loader": "iris"},
        "estimator": {"pickle": str(evil)},
        "search": {"grid": {"C": [1]}},
    }
    with pytest.raises(ConfigError, match="estimator.pickle: .* is not in .*s/inputs"):
        load_config(config, tmp_path)
    # Relative paths (a search names its inputs relative to study_dir) are vetted the same way.
    (tmp_path / "results" / "s" / "inputs").mkdir(parents=True)
    for path in ("evil.pkl", "results/s/inputs/../../../evil.pkl", "results/s/evil.pkl"):
        with pytest.raises(ConfigError, match="estimator.pickle: .* is not in .*s/inputs"):
            load_config(dict(config, estimator={"pickle": path}), tmp_path)


@pytest.mark.slow
def test_a_moved_study_dir_keeps_its_trials(tmp_path, capsys):
    X, y = load_iris(return_X_y=True)
    cv = ms.StratifiedKFold(3, shuffle=True, random_state=0)
    grid = {"C": [0.1, 1.0], "gamma": [0.1]}
    snaketune.GridSearchCV(SVC(), grid, cv=cv, study_dir=tmp_path / "a").fit(X, y)
    before = trial_files(tmp_path / "a")
    (config,) = (tmp_path / "a").glob("results/search-*/.snaketune/search.yaml")
    assert str(tmp_path) not in config.read_text()  # the stored inputs by relative paths
    (tmp_path / "a").rename(tmp_path / "b")
    capsys.readouterr()

    ours = snaketune.GridSearchCV(SVC(), grid, cv=cv, study_dir=tmp_path / "b").fit(X, y)
    assert "trials" not in capsys.readouterr().out  # no run: every trial was found
    assert trial_files(tmp_path / "b") == before
    assert_same_results(ours, ms.GridSearchCV(SVC(), grid, cv=cv).fit(X, y))

    grown = dict(grid, C=[0.1, 1.0, 10.0])  # a run in the moved folder computes the new candidate only
    ours = snaketune.GridSearchCV(SVC(), grown, cv=cv, study_dir=tmp_path / "b").fit(X, y)
    # The summary lists what the search's run made: the leaderboard, no model, figures or report.
    assert "/: leaderboard.md, leaderboard.csv, best.json\n" in capsys.readouterr().out
    after = trial_files(tmp_path / "b")
    assert len(after) == len(before) + 3 and {k: after[k] for k in before} == before
    assert_same_results(ours, ms.GridSearchCV(SVC(), grown, cv=cv).fit(X, y))


@pytest.mark.slow
def test_a_fit_waits_while_another_fit_of_the_same_data_runs(tmp_path):
    import fcntl
    import threading
    import time

    from snaketune.search_cv import store_inputs

    X, y = load_iris(return_X_y=True)
    cv = ms.KFold(2, shuffle=True, random_state=0)
    study = tmp_path / "results" / store_inputs(tmp_path / "results", X, y, SVC(), list(cv.split(X, y))).study
    (study / ".snaketune").mkdir(parents=True)
    with open(study / ".snaketune" / "fit.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as a fit running in another Python holds it
        fitted = {}
        thread = threading.Thread(
            target=lambda: fitted.setdefault(
                "ours", snaketune.GridSearchCV(SVC(), {"C": [1.0]}, cv=cv, study_dir=tmp_path).fit(X, y)
            )
        )
        thread.start()
        time.sleep(3)
        assert thread.is_alive()
        assert not (study / ".snaketune" / "search.yaml").exists() and not list(study.glob("trials/*.json"))
    thread.join(120)
    assert_same_results(fitted["ours"], ms.GridSearchCV(SVC(), {"C": [1.0]}, cv=cv).fit(X, y))


PROGRESS_LINES = [
    "snaketune: study search-1 -> results/search-1/\n",
    "[0:00:05] 60/150 trials (40%), 0 failed, best accuracy 0.9833, about 0:00:07 left\n",
    "[0:00:10] 150/150 trials (100%), 0 failed, best accuracy 0.9839\n",
    "ran 150 trials in 0:00:11 (150 ok, 0 failed); 0 done before\n",
]


def test_run_output_outside_a_notebook_is_every_line_as_it_comes():
    import io

    from snaketune.search_cv import RunOutput, in_notebook

    assert not in_notebook()  # pytest is no Jupyter kernel
    stream = io.StringIO()
    output = RunOutput(stream, notebook=in_notebook())
    for line in PROGRESS_LINES:
        output.write(line)
    output.close()
    assert stream.getvalue() == "".join(PROGRESS_LINES)


def test_run_output_in_a_notebook_turns_progress_lines_into_a_bar():
    import io

    from tqdm import tqdm

    from snaketune.search_cv import RunOutput

    stream, drawn, bars = io.StringIO(), io.StringIO(), []
    output = RunOutput(stream, notebook=True, bar_factory=lambda **kw: bars.append(tqdm(file=drawn, **kw)) or bars[-1])
    for line in PROGRESS_LINES[:2]:
        output.write(line)
    assert bars[0].n == 60 and bars[0].total == 150
    for line in PROGRESS_LINES[2:]:
        output.write(line)
    assert len(bars) == 1 and bars[0].n == 150
    output.close()
    assert stream.getvalue() == PROGRESS_LINES[0] + PROGRESS_LINES[3]  # the rest as lines
    assert "150/150" in drawn.getvalue() and "best accuracy 0.9839" in drawn.getvalue()
