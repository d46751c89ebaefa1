"""Trial names follow what defines a trial's result (``snaketune/search/plan.py``).

A trial is named ``<config_key>_<fold>``; the key hashes everything that determines the
trial's scores (``defining_fields``). Changing any such key must rename every trial, or an edited
study would rerun nothing and show stale scores; changing anything else must rename none, or an
edit of a report setting would rerun the whole study. The configs go through the real
``load_config`` (data checks included) and ``make_plan``.
"""

from __future__ import annotations

import copy

import pytest
from sklearn import datasets
from sklearn import model_selection as ms
from sklearn.neighbors import KNeighborsClassifier

from snaketune.config.load import load_config
from snaketune.search.plan import make_plan
from tests.conftest import jobs_run
from tests.test_e2e_core import _assert_matches_sklearn

TABLE = "a,b,colour,y\n" + "".join(f"{i},{(i * 7) % 5},{['blue', 'red'][i % 3 == 0]},{i % 2}\n" for i in range(40))
KNN = "sklearn.neighbors.KNeighborsClassifier"
SCALER = "sklearn.preprocessing.StandardScaler"

# A bare estimator with several fixed parameters, on time-ordered folds.
PLAIN = {
    "study": "identity",
    "data": {"csv": "t.csv", "target": "y", "features": ["a", "b"]},
    "estimator": {"class": KNN, "params": {"algorithm": "brute", "leaf_size": 20, "p": 1}},
    "search": {"grid": {"n_neighbors": [1, 3], "weights": ["uniform", "distance"]}},
    "cv": {"kind": "time_series", "n_splits": 3, "gap": 0, "max_train_size": 12},
    "scoring": ["accuracy", "f1_macro"],
}
# A pipeline: a ColumnTransformer of two column groups, a scaler, the classifier.
PIPELINE = {
    "study": "identity",
    "data": {"csv": "t.csv", "target": "y", "features": ["a", "b", "colour"]},
    "estimator": {
        "steps": [
            {
                "name": "prep",
                "params": {"remainder": "drop"},
                "transformers": [
                    {"name": "num", "columns": ["a", "b"], "steps": [{"name": "scale", "class": SCALER}]},
                    {
                        "name": "cat",
                        "columns": ["colour"],
                        "steps": [
                            {
                                "name": "encode",
                                "class": "sklearn.preprocessing.OneHotEncoder",
                                "params": {"handle_unknown": "ignore"},
                            }
                        ],
                    },
                ],
            },
            {"name": "rescale", "class": SCALER, "params": {"with_std": True}},
            {"name": "knn", "class": KNN},
        ]
    },
    "search": {"grid": {"knn__n_neighbors": [1, 3]}},
    "cv": {"kind": "stratified", "n_splits": 3},
}
BASES = {"plain": PLAIN, "pipeline": PIPELINE}


def edited(config: dict, path: str, value) -> dict:
    """A copy of ``config`` with the key at dotted ``path`` (list indices as numbers) set to ``value``."""
    config = copy.deepcopy(config)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = config
    for part in parents:
        node = node[part]
    node[last] = value
    return config


@pytest.fixture
def plan(tmp_path):
    (tmp_path / "t.csv").write_text(TABLE)

    def make(config: dict):
        return make_plan(load_config(copy.deepcopy(config), tmp_path), tmp_path)

    return make


DEFINING = [
    ("plain", "estimator.params.algorithm", "kd_tree"),
    ("plain", "estimator.params.leaf_size", 40),
    ("plain", "estimator.params.p", 2),
    ("plain", "data.features", ["b", "a"]),
    ("plain", "cv.max_train_size", 9),
    ("plain", "cv.gap", 1),
    ("pipeline", "estimator.steps.1.params.with_std", False),
    ("pipeline", "estimator.steps.0.transformers.0.steps.0.params", {"with_mean": False}),
    ("pipeline", "estimator.steps.0.transformers.0.columns", ["a"]),
    ("pipeline", "estimator.steps.0.params.remainder", "passthrough"),
    ("pipeline", "data.features", ["colour", "a", "b"]),
]


@pytest.mark.parametrize(("base", "path", "value"), DEFINING, ids=[f"{b}-{p}" for b, p, _ in DEFINING])
def test_a_key_that_defines_results_renames_every_trial(plan, base, path, value):
    before = plan(BASES[base])
    after = plan(edited(BASES[base], path, value))
    assert len(after.config_keys) == len(before.config_keys) == len(set(before.config_keys))
    assert not set(after.config_keys) & set(before.config_keys), path
    assert not set(after.trial_ids) & set(before.trial_ids)


NOT_DEFINING = [
    ("trial_timeout", 5),
    ("trials_per_job", 4),
    ("job_seconds", 3),
    ("worker", False),
    ("resources", {"threads": 2, "mem_mb": 500, "runtime": 10}),
    ("report", {"top_n": 3, "alpha": 0.1, "rope": 0.01}),
    ("refit", "f1_macro"),
    ("error_score", 0),
    ("nested", {"kind": "kfold", "n_splits": 2}),
    ("study", "renamed"),
    ("output_dir", "elsewhere"),
]


@pytest.mark.parametrize(("path", "value"), NOT_DEFINING, ids=[p for p, _ in NOT_DEFINING])
def test_a_key_that_does_not_define_results_renames_nothing(plan, path, value):
    config = dict(PLAIN, cv={"kind": "stratified", "n_splits": 3})  # nested CV takes no time series
    assert plan(edited(config, path, value)).trial_ids == plan(config).trial_ids


@pytest.mark.slow
def test_editing_fixed_estimator_params_reruns_every_trial_with_gridsearchcv_scores(make_study):
    config = {
        "study": "edit",
        "data": {"loader": "iris"},
        "estimator": {"class": KNN, "params": {"algorithm": "brute", "p": 1}},
        "search": {"grid": {"n_neighbors": [1, 5, 9]}},
        "cv": {"kind": "stratified", "n_splits": 3, "shuffle": True, "seed": 2},
        "scoring": ["accuracy"],
        "trials_per_job": 1,  # one trial job a trial: the job count is the number of trials run
    }
    study = make_study(config)
    X, y = datasets.load_iris(return_X_y=True)
    folds = ms.StratifiedKFold(3, shuffle=True, random_state=2)
    for p in (1, 2):
        study.config["estimator"]["params"]["p"] = p
        study.write()
        before = {f.name for f in study.trial_files()}
        assert jobs_run(study.snakemake()) == 3 * 3
        assert len({f.name for f in study.trial_files()} - before) == 3 * 3
        search = ms.GridSearchCV(
            KNeighborsClassifier(algorithm="brute", p=p),
            {"n_neighbors": [1, 5, 9]},
            cv=folds,
            scoring=["accuracy"],
            refit="accuracy",
        ).fit(X, y)
        _assert_matches_sklearn(study.leaderboard(), search.cv_results_, ["accuracy"], 3)


def test_a_fold_file_is_named_by_its_content_not_its_path(tmp_path):
    """``cv.kind: folds``: the same splits at another path (a moved study folder) name the same
    trials; the file rewritten in place with other splits names new ones."""
    import numpy as np

    X, y = datasets.load_iris(return_X_y=True)

    def save(path, seed):
        arrays = {}
        for k, (train, test) in enumerate(ms.KFold(3, shuffle=True, random_state=seed).split(X)):
            arrays[f"train_{k}"], arrays[f"test_{k}"] = train, test
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **arrays)

    def keys(folder):
        config = {
            "study": "s",
            "data": {"loader": "iris", "test_size": 0},
            "estimator": {"class": "sklearn.neighbors.KNeighborsClassifier"},
            "search": {"grid": {"n_neighbors": [1, 5]}},
            "cv": {"kind": "folds", "file": "folds.npz"},
        }
        return make_plan(load_config(config, folder), folder).config_keys

    for folder in ("a", "b"):
        save(tmp_path / folder / "folds.npz", seed=0)
    import os

    cwd = os.getcwd()
    try:
        os.chdir(tmp_path / "a")
        first = keys(tmp_path / "a")
        os.chdir(tmp_path / "b")
        assert keys(tmp_path / "b") == first
        save(tmp_path / "b" / "folds.npz", seed=1)
        assert not set(keys(tmp_path / "b")) & set(first)
    finally:
        os.chdir(cwd)
