"""Nested cross-validation end to end (issue 13, part 2): outer scores equal scikit-learn's
``cross_validate(GridSearchCV(...), cv=outer)`` on the same splits; reruns do only what changed."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from sklearn import model_selection as ms

from tests.conftest import full_output, jobs_run

SCORING = ["accuracy", "f1_macro"]
NESTED_GRID = {
    "study": "nested",
    "data": {"loader": "iris"},
    "estimator": {"class": "sklearn.neighbors.KNeighborsClassifier"},
    "search": {"grid": {"n_neighbors": [1, 7, 25], "weights": ["uniform", "distance"]}},
    "cv": {"kind": "stratified", "n_splits": 3},
    "nested": {"kind": "stratified", "n_splits": 3, "shuffle": True, "seed": 1},
    "scoring": SCORING,
    "refit": "accuracy",
    "trials_per_job": 1,  # one job a trial: the rerun test counts trial jobs
}


def _prepared(study):
    (data_dir,) = (study.out / "data").iterdir()
    return np.load(data_dir / "X.npy"), np.load(data_dir / "y.npy")


def _check_against_sklearn(study, search):
    """nested.json's outer scores and winners against cross_validate(search, cv=outer), 1e-12."""
    X, y = _prepared(study)
    outer = ms.StratifiedKFold(3, shuffle=True, random_state=1)
    expected = ms.cross_validate(search, X, y, cv=outer, scoring=SCORING, return_estimator=True)
    doc = json.loads((study.out / "nested.json").read_text())
    for m in SCORING:
        np.testing.assert_allclose(doc["outer_scores"][m], expected[f"test_{m}"], rtol=0, atol=1e-12)
        assert doc["mean"][m] == pytest.approx(np.mean(expected[f"test_{m}"]), abs=1e-12)
        assert doc["std"][m] == pytest.approx(np.std(expected[f"test_{m}"]), abs=1e-12)
    for fold, fitted in zip(doc["outer_folds"], expected["estimator"], strict=True):
        assert fold["params"] == fitted.best_params_
        assert fold["inner_best"]["accuracy"] == pytest.approx(fitted.best_score_, abs=1e-12)
    return doc


@pytest.mark.slow
def test_nested_grid_equals_cross_validate_of_gridsearchcv_and_reruns_only_what_changed(make_study):
    from sklearn.neighbors import KNeighborsClassifier

    study = make_study(json.loads(json.dumps(NESTED_GRID)))  # a copy: the test edits its grid
    first = study.snakemake()
    assert jobs_run(first, "nested_trial") == 3 * 3 * 6  # outer x inner x candidates
    grid = NESTED_GRID["search"]["grid"]
    search = ms.GridSearchCV(KNeighborsClassifier(), grid, cv=ms.StratifiedKFold(3), scoring=SCORING, refit="accuracy")
    doc = _check_against_sklearn(study, search)
    assert doc["n_trials"] == 54 and doc["n_outer"] == 3 and doc["n_inner"] == 3
    assert doc["sentence"] in first.stdout + first.stderr  # said at the end of the run
    assert (study.out / "plots" / "nested.png").stat().st_size > 5000
    page = (study.out / "report" / "nested.html").read_text()
    assert "How good is the tuned model?" in page and f"{doc['mean']['accuracy']:.4f}" in page
    trials = {p: p.stat().st_mtime_ns for p in (study.out / "nested" / "trials").glob("*.json")}
    assert len(trials) == 54

    # A second run does nothing.
    again = study.snakemake("--dry-run")
    assert "Nothing to be done" in again.stdout + again.stderr

    # One more grid value: only its inner trials (and its study trials), then the steps after them.
    study.config["search"]["grid"]["n_neighbors"] = [1, 7, 25, 12]
    study.write()
    added = study.snakemake()
    assert jobs_run(added, "nested_trial") == 3 * 3 * 2
    assert jobs_run(added, "trial") == 3 * 2
    assert sum(jobs_run(added, f"nested_splits_{o}") for o in range(3)) == 0
    assert jobs_run(added, "nested_outer_splits") == 0
    assert sum(jobs_run(added, f"nested_outer_{o}") for o in range(3)) == 3
    assert jobs_run(added, "nested_summary") == 1
    assert all(p.stat().st_mtime_ns == t for p, t in trials.items())  # old inner trials untouched
    search.set_params(param_grid=study.config["search"]["grid"])
    doc = _check_against_sklearn(study, search)
    assert doc["n_trials"] == 72


@pytest.mark.slow
def test_nested_random_search_batched_equals_randomizedsearchcv(make_study):
    """Random search, several inner trials a job: still cross_validate(RandomizedSearchCV)."""
    from scipy.stats import loguniform
    from sklearn.linear_model import LogisticRegression

    config = dict(
        NESTED_GRID,
        study="nested_random",
        estimator={"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 500}},
        search={"random": {"n_iter": 4, "seed": 3, "params": {"C": {"loguniform": [0.01, 100]}}}},
        trials_per_job=6,
    )
    study = make_study(config)
    proc = study.snakemake()
    assert jobs_run(proc, "nested_trial") == 0
    batches = re.findall(r"^\s*nested_trials_\d_\S+\s+(\d+)\s*$", full_output(proc), re.M)
    assert batches and len(batches) < 3 * 3 * 4
    assert len(list((study.out / "nested" / "trials").glob("*.json"))) == 3 * 3 * 4
    search = ms.RandomizedSearchCV(
        LogisticRegression(max_iter=500),
        {"C": loguniform(0.01, 100)},
        n_iter=4,
        random_state=3,
        cv=ms.StratifiedKFold(3),
        scoring=SCORING,
        refit="accuracy",
    )
    _check_against_sklearn(study, search)


def test_nested_config_errors(tmp_path):
    from snaketune.config.load import ConfigError, load_config

    bad = dict(NESTED_GRID, search={"successive_halving": {"n_candidates": 3, "params": {"n_neighbors": [1, 2]}}})
    with pytest.raises(ConfigError) as info:
        load_config(bad, tmp_path, check_data=False)
    assert "nested: works with grid and random search, not successive_halving" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_config(dict(NESTED_GRID, nested={"kind": "loo"}), tmp_path, check_data=False)
    assert str(info.value).startswith("config error: nested.kind")


def _nested_plan(**changes):
    from snaketune.config.load import load_config
    from snaketune.search.nested import make_nested_plan
    from snaketune.search.plan import make_plan

    raw = json.loads(json.dumps(dict(NESTED_GRID, **changes)))
    if raw["nested"] is None:
        del raw["nested"]
    config = load_config(raw, ".", check_data=False)
    main = make_plan(config, ".")
    return main, make_nested_plan(config, main)


def test_inner_trials_are_named_by_their_outer_fold():
    main, nested = _nested_plan()
    keys = [set(plan.config_keys) for plan in nested.inner]
    assert len(keys) == 3 and all(len(k) == 6 for k in keys)
    assert len(set.union(*keys, set(main.config_keys))) == 4 * 6  # no name shared by two searches
    assert len({plan.splits_path for plan in nested.inner}) == 3
    assert all(p.startswith(f"{main.out}/nested/trials/") for p in nested.trial_paths)
    assert nested.n_trials == len(nested.trial_paths) == 54
    trial = nested.inner[2].trial_ids[4]
    assert nested.plan_of(trial) is nested.inner[2]
    spec = nested.inner[2].spec(trial)
    assert spec["splits"] == nested.inner[2].splits_path and spec["data_dir"] == main.data_dir
    # The study's own trials do not change with nested; the inner ones change with the outer scheme
    # or the inner cv, not with settings that do not change results.
    main_alone, none = _nested_plan(nested=None)
    assert none is None and main_alone.trial_ids == main.trial_ids
    assert _nested_plan(trial_timeout=9, report={"top_n": 2})[1].trial_paths == nested.trial_paths
    assert not set(_nested_plan(nested=dict(NESTED_GRID["nested"], seed=2))[1].trial_paths) & set(nested.trial_paths)
    grown = _nested_plan(search={"grid": {"n_neighbors": [1, 7, 25, 12], "weights": ["uniform", "distance"]}})[1]
    assert set(nested.trial_paths) < set(grown.trial_paths)


def test_nested_splits_checked_before_any_trial(tmp_path):
    """The cv scheme must split every outer training fold: iris has 50 rows a class, an outer
    training fold of 3 stratified folds 33 or 34, so 40 inner folds is one config error."""
    from snaketune.config.load import ConfigError, load_config

    load_config(dict(NESTED_GRID, cv={"kind": "stratified", "n_splits": 30}), tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config(dict(NESTED_GRID, cv={"kind": "stratified", "n_splits": 40}), tmp_path)
    (line,) = str(info.value).splitlines()
    assert line.startswith("config error: nested: the cv scheme cannot split outer fold 0's 100 training rows")


def test_incomplete_marks_on_whole_nested_trials_are_cleared(tmp_path, monkeypatch):
    """A kill -9 between an inner trial's write and Snakemake's bookkeeping does not redo it."""
    import base64
    from types import SimpleNamespace

    from snaketune.base.jsonutil import write_json_atomic
    from snaketune.evaluation.records import TrialRecord, TrialStatus
    from snaketune.workflow.jobs import release_finished_trials

    monkeypatch.chdir(tmp_path)
    trials = tmp_path / "results" / "s" / "nested" / "trials"
    trials.mkdir(parents=True)
    whole = TrialRecord("abc_0", "abc", 0, {}, TrialStatus.OK, {"accuracy": 1.0}, 0.1, 0.1)
    write_json_atomic(trials / "abc_0.json", whole.to_dict())
    (trials / "abc_1.json").write_text('{"trial_id": "ab')  # partial: keep its mark
    marks = tmp_path / ".snakemake" / "incomplete"
    marks.mkdir(parents=True)
    for name in ("abc_0.json", "abc_1.json"):
        (marks / base64.urlsafe_b64encode(f"results/s/nested/trials/{name}".encode()).decode()).write_text("{}")
    assert release_finished_trials(SimpleNamespace(out="results/s")) == 1
    assert len(list(marks.iterdir())) == 1
