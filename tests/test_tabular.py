"""Real tables: text columns and missing values, a ColumnTransformer in the config, grouped and
time-ordered CV.

The expected side is scikit-learn, pandas and numpy alone: the test reads the CSV itself, holds
out the test rows itself, builds the Pipeline/ColumnTransformer and the splitter by hand and runs
``GridSearchCV`` on the same folds. Scores are compared at ``atol=1e-12``.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn import model_selection as ms
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import get_scorer
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from snaketune.config.load import ConfigError, load_config
from tests.conftest import REPO

ATOL = 1e-12


def _load_example(name):
    import yaml

    return yaml.safe_load((REPO / "examples" / name).read_text())


def _assert_equal_to_search(frame, search, metrics):
    """Leaderboard rows equal ``cv_results_``: parameters and ranks exactly, scores at 1e-12."""
    ref = search.cv_results_
    assert list(frame["params"].map(json.loads)) == ref["params"]
    n_splits = search.n_splits_
    for m in metrics:
        for col in [f"mean_test_{m}"] + [f"split{k}_test_{m}" for k in range(n_splits)]:
            np.testing.assert_allclose(frame[col].to_numpy(float), ref[col], rtol=0, atol=ATOL, err_msg=col)
        assert f"split{n_splits}_test_{m}" not in frame.columns
        np.testing.assert_array_equal(frame[f"rank_test_{m}"].to_numpy(), ref[f"rank_test_{m}"])


@pytest.mark.slow
def test_penguins_example_equals_gridsearchcv(make_study):
    config = _load_example("penguins.yaml")
    study = make_study(config)
    (study.workdir / "examples" / "data").mkdir(parents=True)
    shutil.copy(REPO / "examples" / "data" / "penguins.csv", study.workdir / "examples" / "data")
    study.snakemake()

    table = pd.read_csv(REPO / "examples" / "data" / "penguins.csv")
    features = config["data"]["features"]
    assert table[features].isna().any().all() == False and table["sex"].isna().sum() == 11  # noqa: E712
    X, y = table[features], table["species"].to_numpy()
    X, X_test, y, y_test = ms.train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    prep = ColumnTransformer(
        [
            (
                "num",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                make_column_selector(dtype_include="number"),
            ),
            (
                "cat",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("encode", OneHotEncoder(handle_unknown="ignore")),
                    ]
                ),
                ["island", "sex"],
            ),
        ]
    )
    metrics = ["accuracy", "balanced_accuracy"]
    search = ms.GridSearchCV(
        Pipeline([("prep", prep), ("clf", LogisticRegression(max_iter=1000, random_state=0))]),
        config["search"]["grid"],
        cv=ms.StratifiedKFold(5, shuffle=True, random_state=0),
        scoring=metrics,
        refit="accuracy",
    ).fit(X, y)
    _assert_equal_to_search(study.leaderboard(), search, metrics)
    refit = json.loads((study.out / "refit.json").read_text())
    assert refit["params"] == search.best_params_ and (refit["n_train"], refit["n_test"]) == (len(y), len(y_test))
    for m in metrics:
        expected = get_scorer(m)(search.best_estimator_, X_test, y_test)
        assert abs(refit["test_scores"][m] - expected) <= ATOL


def _grouped_table(path):
    """60 rows in 12 groups; a text column and missing values; the label depends on the group."""
    rng = np.random.default_rng(4)
    site = np.repeat(np.arange(12), 5)
    rng.shuffle(site)
    group = np.array([f"site{g:02d}" for g in site])
    x1 = rng.normal(size=60) + (site % 2) * 1.5
    x2 = rng.normal(size=60)
    x2[[3, 17, 40]] = np.nan
    colour = rng.choice(["red", "green", "blue"], size=60)
    label = np.where(x1 + 0.3 * (colour == "red") > 0.6, "yes", "no")
    pd.DataFrame({"x1": x1, "site": group, "x2": x2, "colour": colour, "label": label}).to_csv(path, index=False)


GROUP_CV = {
    "group_kfold": ({"kind": "group_kfold", "n_splits": 3}, ms.GroupKFold(3)),
    "stratified_group_kfold": (
        {"kind": "stratified_group_kfold", "n_splits": 3, "shuffle": True, "seed": 5},
        ms.StratifiedGroupKFold(3, shuffle=True, random_state=5),
    ),
    "leave_one_group_out": ({"kind": "leave_one_group_out"}, ms.LeaveOneGroupOut()),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(GROUP_CV))
def test_group_kinds_equal_gridsearchcv_with_groups(make_study, kind):
    cv, splitter = GROUP_CV[kind]
    config = {
        "study": "groups",
        "data": {"csv": "grouped.csv", "target": "label", "groups": "site", "test_size": 0.25, "seed": 1},
        "estimator": {
            "steps": [
                {
                    "name": "prep",
                    "transformers": [
                        {
                            "name": "num",
                            "columns": ["x1", "x2"],
                            "steps": [{"name": "impute", "class": "sklearn.impute.SimpleImputer"}],
                        },
                        {
                            "name": "cat",
                            "columns": {"dtype_exclude": "number"},
                            "steps": [{"name": "encode", "class": "sklearn.preprocessing.OneHotEncoder"}],
                        },
                    ],
                },
                {"name": "knn", "class": "sklearn.neighbors.KNeighborsClassifier"},
            ]
        },
        "search": {"grid": {"knn__n_neighbors": [1, 7], "prep__num__impute__strategy": ["mean", "median"]}},
        "cv": cv,
        "trials_per_job": 4,
    }
    study = make_study(config)
    _grouped_table(study.workdir / "grouped.csv")
    study.snakemake()

    table = pd.read_csv(study.workdir / "grouped.csv")
    X, y, groups = table.drop(columns=["label", "site"]), table["label"].to_numpy(), table["site"].to_numpy()
    train, test = next(ms.GroupShuffleSplit(1, test_size=0.25, random_state=1).split(X, y, groups))
    train, test = np.sort(train), np.sort(test)
    assert not set(groups[train]) & set(groups[test])  # whole groups held out
    prep = ColumnTransformer(
        [
            ("num", Pipeline([("impute", SimpleImputer())]), ["x1", "x2"]),
            ("cat", Pipeline([("encode", OneHotEncoder())]), make_column_selector(dtype_exclude="number")),
        ]
    )
    search = ms.GridSearchCV(
        Pipeline([("prep", prep), ("knn", KNeighborsClassifier())]),
        config["search"]["grid"],
        cv=splitter,
        scoring="accuracy",
    ).fit(X.iloc[train], y[train], groups=groups[train])
    frame = study.leaderboard()
    frame = frame.rename(columns=lambda c: c.replace("_accuracy", "_score"))
    _assert_equal_to_search(frame, search, ["score"])
    refit = json.loads((study.out / "refit.json").read_text())
    expected = search.best_estimator_.score(X.iloc[test], y[test])
    assert refit["n_test"] == len(test) and abs(refit["test_scores"]["accuracy"] - expected) <= ATOL


@pytest.mark.slow
@pytest.mark.parametrize(
    "cv",
    [{"gap": 2, "test_size": 15}, {"gap": 2, "test_size": 15, "max_train_size": 30}],
    ids=["gap", "gap-max_train_size"],
)
def test_time_series_equals_gridsearchcv_with_timeseriessplit(make_study, cv):
    rng = np.random.default_rng(7)
    t = np.arange(120)
    frame = pd.DataFrame({"t": t, "lag": np.sin(t / 6) + rng.normal(scale=0.1, size=120)})
    frame["y"] = 2 * frame["lag"] + 0.01 * t + rng.normal(scale=0.2, size=120)
    config = {
        "study": "ts",
        "data": {"csv": "series.csv", "target": "y", "test_size": 0.2},
        "estimator": {"class": "sklearn.linear_model.Ridge"},
        "search": {"grid": {"alpha": [0.1, 1.0, 100.0]}},
        "cv": {"kind": "time_series", "n_splits": 4, **cv},
        "scoring": ["r2", "neg_mean_absolute_error"],
    }
    study = make_study(config)
    frame.to_csv(study.workdir / "series.csv", index=False)
    study.snakemake()

    table = pd.read_csv(study.workdir / "series.csv")
    X, y = table[["t", "lag"]], table["y"].to_numpy()
    n_train = 96  # the last 20 % of the rows are held out, in file order
    # The first fold trains on 96 - 4 * 15 - 2 = 34 rows: max_train_size 30 shortens every fold.
    search = ms.GridSearchCV(
        Ridge(),
        config["search"]["grid"],
        cv=ms.TimeSeriesSplit(4, **cv),
        scoring=config["scoring"],
        refit="r2",
    ).fit(X.iloc[:n_train], y[:n_train])
    _assert_equal_to_search(study.leaderboard(), search, config["scoring"])
    refit = json.loads((study.out / "refit.json").read_text())
    expected = get_scorer("r2")(search.best_estimator_, X.iloc[n_train:], y[n_train:])
    assert refit["n_test"] == 24 and abs(refit["test_scores"]["r2"] - expected) <= ATOL


# --- bad input: one line each, naming the key and the column ----------------------------------

TABLE = "a,colour,site,y\n" + "".join(
    f"{'' if i == 7 else i},{'' if i == 5 else ['blue', 'red'][i % 2]},{i % 4},{i % 2}\n" for i in range(24)
)
PREP = {
    "name": "prep",
    "transformers": [
        {
            "name": "num",
            "columns": ["a"],
            "steps": [
                {"name": "impute", "class": "sklearn.impute.SimpleImputer"},
                {"name": "scale", "class": "sklearn.preprocessing.StandardScaler"},
            ],
        },
        {
            "name": "cat",
            "columns": ["colour"],
            "steps": [
                {"name": "impute", "class": "sklearn.impute.SimpleImputer", "params": {"strategy": "most_frequent"}},
                {"name": "encode", "class": "sklearn.preprocessing.OneHotEncoder"},
            ],
        },
    ],
}
KNN = {"name": "knn", "class": "sklearn.neighbors.KNeighborsClassifier"}


def _config(data=None, steps=None, cv=None, grid=None):
    return {
        "study": "s",
        "data": {"csv": "t.csv", "target": "y", "features": ["a", "colour"], **(data or {})},
        "estimator": {"steps": steps or [PREP, KNN]},
        "search": {"grid": grid or {"knn__n_neighbors": [1, 3]}},
        "cv": cv or {"kind": "stratified", "n_splits": 3},
    }


ERRORS = [
    ("unknown-feature", _config(data={"features": ["a", "color"]}), "data.features", "column 'color' not in"),
    ("unknown-groups", _config(data={"groups": "sites"}), "data.groups", "did you mean 'site'"),
    ("group-kind-without-groups", _config(cv={"kind": "group_kfold"}), "cv.kind", "data.groups"),
    ("groups-with-plain-kfold", _config(data={"groups": "site"}), "data.groups", "ignores groups"),
    ("more-folds-than-groups", _config(data={"groups": "site"}, cv={"kind": "group_kfold"}), "cv.n_splits", "4 groups"),
    ("time-series-fraction", _config(cv={"kind": "time_series", "test_size": 0.2}), "cv.test_size", "integer"),
    (
        "text-column-not-encoded",
        _config(
            steps=[{**PREP, "transformers": PREP["transformers"][:1]} | {"params": {"remainder": "passthrough"}}, KNN]
        ),
        "estimator",
        "column 'colour' holds text or categories that KNeighborsClassifier cannot take; encode it",
    ),
    (
        "text-column-no-pipeline",
        _config(data={"features": ["site", "colour"]}, steps=[KNN]),
        "estimator",
        "column 'colour' holds text or categories that KNeighborsClassifier",
    ),
    (
        "missing-values-not-imputed",
        _config(
            steps=[
                {
                    **PREP,
                    "transformers": [
                        {**PREP["transformers"][0], "steps": PREP["transformers"][0]["steps"][1:]},
                        PREP["transformers"][1],
                    ],
                },
                KNN,
            ]
        ),
        "estimator",
        "column 'a' has missing values that KNeighborsClassifier cannot take; add sklearn.impute.SimpleImputer",
    ),
    (
        "unknown-group-column",
        _config(steps=[{**PREP, "transformers": [{**PREP["transformers"][0], "columns": ["b"]}]}, KNN]),
        "estimator.steps[0].transformers[0].columns",
        "column 'b' is not a feature",
    ),
    (
        "text-column-but-nan-is-fine",  # HistGradientBoosting takes the missing 'a'; only 'colour' is named
        _config(
            steps=[{"name": "hgb", "class": "sklearn.ensemble.HistGradientBoostingClassifier"}],
            grid={"hgb__max_iter": [5]},
        ),
        "estimator",
        "column 'colour' holds text or categories that HistGradientBoostingClassifier cannot take",
    ),
    ("group-search-name", _config(grid={"prep__num__scal__with_mean": [True]}), "search.grid", "did you mean"),
    (
        "group-step-class",
        _config(steps=[{**PREP, "transformers": [{**PREP["transformers"][0], "steps": [KNN]}]}, KNN]),
        "estimator.steps[0].transformers[0].steps[0].class",
        "no transform",
    ),
]


@pytest.mark.parametrize(("config", "key", "fragment"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_bad_tabular_input_gets_one_line(tmp_path, config, key, fragment):
    (tmp_path / "t.csv").write_text(TABLE)
    with pytest.raises(ConfigError) as info:
        load_config(config, tmp_path)
    lines = str(info.value).splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"config error: {key}") and fragment in lines[0], lines[0]


def test_good_tabular_config_passes(tmp_path):
    (tmp_path / "t.csv").write_text(TABLE)
    config = load_config(_config(data={"groups": "site"}, cv={"kind": "group_kfold", "n_splits": 2}), tmp_path)
    assert config["cv"]["kind"] == "group_kfold"


def test_leave_one_group_out_has_a_fold_per_training_group(tmp_path):
    from snaketune.search.plan import make_plan

    (tmp_path / "t.csv").write_text(TABLE)
    logo = {"kind": "leave_one_group_out"}
    config = load_config(_config(data={"groups": "site"}, cv=logo), tmp_path)
    assert make_plan(config, tmp_path).n_folds == 4
    # One of the four groups is held out whole (GroupShuffleSplit): three folds remain.
    config = load_config(_config(data={"groups": "site", "test_size": 0.25}, cv=logo), tmp_path)
    assert make_plan(config, tmp_path).n_folds == 3


def test_threads_reach_the_classifier_not_the_column_transformer():
    from snaketune.base.estimator import build_estimator
    from snaketune.evaluation.records import TrialSpec
    from snaketune.evaluation.trial import thread_parameters

    spec = _load_example("penguins.yaml")["estimator"]
    # A classifier whose n_jobs is current (LogisticRegression's is deprecated: never passed).
    spec["steps"][-1] = {"name": "clf", "class": "sklearn.neighbors.KNeighborsClassifier"}
    trial = TrialSpec("t_0", 0, spec, ["accuracy"], "d", "s.npz", params={"clf__n_neighbors": 3})
    assert thread_parameters(build_estimator(spec), trial, 2) == {"clf__n_jobs": 2}
