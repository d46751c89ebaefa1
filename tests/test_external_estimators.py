"""Estimators outside scikit-learn (XGBoost, LightGBM) are checked like scikit-learn's own.

Fixed and searched parameters are valid when an instance's ``get_params()`` reports them or its
``set_params()`` takes them, which is what GridSearchCV relies on; a likely typo of a reported
name is still one config error naming the key. The ``slow`` part runs an XGBoost and a LightGBM
study through real Snakemake and compares every score with GridSearchCV's, computed here from
scikit-learn alone (its own loader, its own StratifiedKFold, ``random_state`` = the config's
``seed``, which the package sets on every ``random_state`` left at None).
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from snaketune.config.load import ConfigError, load_config

xgboost = pytest.importorskip("xgboost")
lightgbm = pytest.importorskip("lightgbm")

ATOL = 1e-12

BASE = {
    "study": "ext",
    "data": {"loader": "iris"},
    "cv": {"kind": "stratified", "n_splits": 3},
    "scoring": ["accuracy"],
}
XGB = {"class": "xgboost.XGBClassifier", "params": {"n_estimators": 40, "max_depth": 3, "n_jobs": 1}}
LGBM = {"class": "lightgbm.LGBMClassifier", "params": {"verbose": -1, "n_estimators": 40, "n_jobs": 1}}


def config(estimator: dict, search: dict, **top) -> dict:
    out = copy.deepcopy(BASE)
    out.update(allowed_modules=["xgboost", "lightgbm"], estimator=copy.deepcopy(estimator), search=search, **top)
    return out


def problems(cfg: dict) -> list[str]:
    try:
        load_config(cfg)
    except ConfigError as exc:
        return exc.problems
    return []


# --- the config check -----------------------------------------------------------------------------


@pytest.mark.parametrize("estimator", [XGB, LGBM], ids=["xgboost", "lightgbm"])
def test_fixed_parameters_accepted(estimator):
    assert problems(config(estimator, {"grid": {"learning_rate": [0.1, 0.3]}})) == []


@pytest.mark.parametrize(
    "estimator, grid",
    [
        (XGB, {"max_depth": [2, 3], "n_estimators": [10, 20], "subsample": [0.5, 1.0]}),
        (LGBM, {"n_estimators": [10, 20], "verbose": [-1]}),
        # LightGBM's own names, which its get_params() reports only once set: set_params takes them.
        ({"class": "lightgbm.LGBMClassifier"}, {"verbose": [-1], "min_data_in_leaf": [5, 10]}),
    ],
    ids=["xgboost", "lightgbm", "lightgbm-native"],
)
def test_searched_parameters_accepted(estimator, grid):
    assert problems(config(estimator, {"grid": grid})) == []
    random = {"random": {"n_iter": 2, "params": grid}}
    assert problems(config(estimator, random)) == []


def test_pipeline_with_xgboost_step_accepted():
    pipeline = {
        "steps": [
            {"name": "scale", "class": "sklearn.preprocessing.StandardScaler"},
            {"name": "xgb", "class": "xgboost.XGBClassifier", "params": {"n_estimators": 10, "verbosity": 0}},
        ]
    }
    assert problems(config(pipeline, {"grid": {"xgb__max_depth": [2, 3], "scale__with_mean": [True]}})) == []


@pytest.mark.parametrize(
    "estimator, search, key, fragment",
    [
        (
            {"class": "xgboost.XGBClassifier", "params": {"n_estimatorz": 40}},
            {"grid": {"max_depth": [2]}},
            "estimator.params.n_estimatorz",
            "XGBClassifier has no parameter 'n_estimatorz' (did you mean 'n_estimators'?)",
        ),
        (
            {"class": "lightgbm.LGBMClassifier", "params": {"n_estimatorz": 40}},
            {"grid": {"max_depth": [2]}},
            "estimator.params.n_estimatorz",
            "LGBMClassifier has no parameter 'n_estimatorz' (did you mean 'n_estimators'?)",
        ),
        (
            XGB,
            {"grid": {"max_dept": [2, 3]}},
            "search.grid.max_dept",
            "the estimator has no parameter 'max_dept' (did you mean 'max_depth'?)",
        ),
        (
            LGBM,
            {"random": {"n_iter": 2, "params": {"learning_rat": [0.1, 0.3]}}},
            "search.random.params.learning_rat",
            "the estimator has no parameter 'learning_rat' (did you mean 'learning_rate'?)",
        ),
        (
            {"steps": [{"name": "xgb", "class": "xgboost.XGBClassifier"}]},
            {"grid": {"xgb__max_dept": [2]}},
            "search.grid.xgb__max_dept",
            "XGBClassifier has no 'max_dept'; did you mean 'xgb__max_depth'?",
        ),
    ],
    ids=["xgboost-fixed", "lightgbm-fixed", "xgboost-grid", "lightgbm-random", "xgboost-pipeline"],
)
def test_misspelt_parameter_is_one_line_naming_the_key(estimator, search, key, fragment):
    (line,) = problems(config(estimator, search))
    assert line.startswith(f"{key}: "), line
    assert fragment in line, line
    assert "\n" not in line


def test_scikit_learn_still_strict():
    """set_params of a scikit-learn estimator refuses unknown names: so does the check, typo or not."""
    knn = {"class": "sklearn.neighbors.KNeighborsClassifier", "params": {"verbose": 1}}
    (line,) = problems(config(knn, {"grid": {"n_neighbors": [1]}}))
    assert line.startswith("estimator.params.verbose: KNeighborsClassifier has no parameter 'verbose'"), line
    (line,) = problems(config({"class": "sklearn.neighbors.KNeighborsClassifier"}, {"grid": {"verbose": [1]}}))
    assert line.startswith("search.grid.verbose: the estimator has no parameter 'verbose'"), line


# --- end to end: scores equal GridSearchCV's ------------------------------------------------------

SEED = 7
CV_SEED = 2
SCORING = ["accuracy", "neg_log_loss"]
GRID = {"learning_rate": [0.1, 0.3]}
CASES = {
    "xgboost": ("breast_cancer", "xgboost.XGBClassifier", {"n_estimators": 20, "max_depth": 3, "n_jobs": 1}),
    "lightgbm": ("iris", "lightgbm.LGBMClassifier", {"n_estimators": 20, "max_depth": 3, "n_jobs": 1, "verbose": -1}),
}


def _reference(case: str, **changes):
    """GridSearchCV on the same data and folds, from scikit-learn and the library alone."""
    from sklearn import datasets
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    loader, _, fixed = CASES[case]
    X, y = getattr(datasets, f"load_{loader}")(return_X_y=True)
    cls = xgboost.XGBClassifier if case == "xgboost" else lightgbm.LGBMClassifier
    # random_state: both leave it at None by default, so the study's top-level seed is set on it.
    estimator = cls(**{**fixed, **changes}, random_state=SEED)
    cv = StratifiedKFold(3, shuffle=True, random_state=CV_SEED)
    return GridSearchCV(estimator, GRID, cv=cv, scoring=SCORING, refit="accuracy").fit(X, y)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_study_scores_equal_gridsearchcv(make_study, case):
    loader, path, fixed = CASES[case]
    study = make_study(
        {
            "study": f"ext-{case}",
            "seed": SEED,
            "data": {"loader": loader},
            "allowed_modules": [path.split(".")[0]],
            "estimator": {"class": path, "params": fixed},
            "search": {"grid": GRID},
            "cv": {"kind": "stratified", "n_splits": 3, "shuffle": True, "seed": CV_SEED},
            "scoring": SCORING,
            "refit": "accuracy",
        }
    )
    study.snakemake()
    search = _reference(case)
    reference = search.cv_results_
    frame = study.leaderboard()
    assert list(frame["params"].map(json.loads)) == reference["params"]
    for m in SCORING:
        for col in [f"mean_test_{m}", f"std_test_{m}"] + [f"split{k}_test_{m}" for k in range(3)]:
            np.testing.assert_allclose(frame[col].to_numpy(float), reference[col], rtol=0, atol=ATOL, err_msg=col)
        assert "split3_test_" + m not in frame.columns
        np.testing.assert_array_equal(frame[f"rank_test_{m}"].to_numpy(), reference[f"rank_test_{m}"])
    assert study.best()["params"] == search.best_params_
    # The comparison can tell the fixed parameters apart: other values give other scores.
    other = _reference(case, max_depth=2).cv_results_
    assert not np.allclose(other["mean_test_neg_log_loss"], reference["mean_test_neg_log_loss"], rtol=0, atol=ATOL)
