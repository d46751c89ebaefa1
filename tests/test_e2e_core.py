"""End to end: real ``snakemake --cores 2`` on small studies, checked against scikit-learn.

The expected side of every parity test is built from scikit-learn, pandas and numpy alone: the
test loads the data itself (``sklearn.datasets``, ``pd.read_csv``/``pd.read_parquet``), holds
out the test set with its own ``train_test_split`` (stratified for classification, ``data.seed``,
``data.test_size``, as the config schema documents), builds the splitter object for the ``cv``
section by hand, and runs ``GridSearchCV``/``RandomizedSearchCV`` on that. Nothing here imports
``snaketune`` or reads the study's prepared arrays or stored splits, so a bug in data preparation,
the held-out split or the ``cv.kind`` -> splitter mapping fails these tests. Scores are compared
at ``atol=1e-12, rtol=0``; ranks and parameters exactly.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from sklearn import datasets
from sklearn import model_selection as ms
from sklearn.metrics import get_scorer

from tests.conftest import jobs_run, without_timings

pytestmark = pytest.mark.slow

ATOL = 1e-12

KNN_GRID = {
    "study": "knn",
    "data": {"loader": "iris"},
    "estimator": {"class": "sklearn.neighbors.KNeighborsClassifier"},
    "search": {"grid": {"n_neighbors": [1, 3, 7, 15], "metric": ["euclidean", "manhattan"]}},
    "cv": {"kind": "stratified", "n_splits": 4, "shuffle": True, "seed": 3},
    "scoring": ["accuracy", "f1_macro"],
    "refit": "accuracy",
}


# --- the expected side: scikit-learn / pandas / numpy only ------------------------------------


def _train_test(X, y, *, test_size: float, seed: int = 0, classification: bool):
    """The held-out split as the schema documents it: ``data.test_size``, ``data.seed``, stratified
    for classification. Returns ``X, y, X_test, y_test`` (the whole data set when test_size is 0)."""
    if not test_size:
        return X, y, X[:0], y[:0]
    X, X_test, y, y_test = ms.train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=y if classification else None
    )
    return X, y, X_test, y_test


def _assert_matches_sklearn(frame, reference, metrics, n_splits, *, train: bool = False):
    """Leaderboard ``frame`` equals ``cv_results_`` ``reference``: params and ranks exactly, every
    score column at atol 1e-12."""
    assert len(frame) == len(reference["params"])
    assert list(frame["params"].map(json.loads)) == [
        {k: (list(v) if isinstance(v, tuple) else v) for k, v in p.items()} for p in reference["params"]
    ]
    sets = ["test", "train"] if train else ["test"]
    for m in metrics:
        for s in sets:
            columns = [f"mean_{s}_{m}", f"std_{s}_{m}"] + [f"split{k}_{s}_{m}" for k in range(n_splits)]
            for col in columns:
                assert col in frame.columns, f"leaderboard lacks {col}"
                np.testing.assert_allclose(frame[col].to_numpy(float), reference[col], rtol=0, atol=ATOL, err_msg=col)
        assert f"split{n_splits}_test_{m}" not in frame.columns, "more folds than the splitter yields"
        np.testing.assert_array_equal(frame[f"rank_test_{m}"].to_numpy(), reference[f"rank_test_{m}"])
    if not train:
        assert not [c for c in frame.columns if "_train_" in c], "train scores without return_train_score"


def _assert_refit_matches(study, search, X_test, y_test, metrics):
    """refit.json: the held-out size and each metric of the best model on it, against
    ``search.best_estimator_`` scored on the test's own held-out rows."""
    refit = json.loads((study.out / "refit.json").read_text())
    assert refit["n_test"] == len(y_test)
    assert json.loads(json.dumps(refit["params"])) == json.loads(json.dumps(search.best_params_))
    if len(y_test):
        for m in metrics:
            expected = get_scorer(m)(search.best_estimator_, X_test, y_test)
            assert abs(refit["test_scores"][m] - expected) <= ATOL, (m, refit["test_scores"][m], expected)
    else:
        assert refit["test_scores"] == {}
    return refit


# --- today's parity tests, now with an independent expected side --------------------------------


def test_grid_leaderboard_equals_gridsearchcv(make_study):
    from sklearn.neighbors import KNeighborsClassifier

    study = make_study(KNN_GRID)
    study.snakemake()
    X, y = datasets.load_iris(return_X_y=True)
    search = ms.GridSearchCV(
        KNeighborsClassifier(),
        KNN_GRID["search"]["grid"],
        cv=ms.StratifiedKFold(4, shuffle=True, random_state=3),
        scoring=KNN_GRID["scoring"],
        refit="accuracy",
    ).fit(X, y)
    frame = study.leaderboard()
    _assert_matches_sklearn(frame, search.cv_results_, KNN_GRID["scoring"], 4)
    assert study.best()["params"] == search.best_params_
    refit = _assert_refit_matches(study, search, X[:0], y[:0], KNN_GRID["scoring"])
    assert refit["n_train"] == 150
    assert len(study.trial_files()) == 8 * 4
    record = json.loads(study.trial_files()[0].read_text())
    for key in (
        "params",
        "fold",
        "test_scores",
        "fit_time",
        "score_time",
        "status",
        "seed",
        "versions",
        "host",
        "start",
        "end",
    ):
        assert key in record
    assert record["status"] == "ok" and set(record["versions"]) >= {"python", "numpy", "sklearn"}
    for plot in study.out.glob("plots/*.png"):
        assert plot.stat().st_size > 5000
    assert (study.out / "model.pkl").stat().st_size > 0


def test_random_search_samples_like_randomizedsearchcv(make_study):
    from scipy.stats import loguniform
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    config = {
        "study": "svc",
        "data": {"loader": "wine", "test_size": 0.25, "seed": 1},
        "estimator": {
            "steps": [
                {"name": "scale", "class": "sklearn.preprocessing.StandardScaler"},
                {"name": "svc", "class": "sklearn.svm.SVC"},
            ]
        },
        "search": {
            "random": {
                "n_iter": 6,
                "seed": 42,
                "params": {
                    "svc__C": {"loguniform": [1e-2, 1e3]},
                    "svc__gamma": {"loguniform": [1e-4, 1e1]},
                    "svc__tol": [1e-4, 1e-3, 1e-2, 1e-1],
                },
            }
        },
        "cv": {"kind": "stratified", "n_splits": 3},
        "scoring": "accuracy",
    }
    study = make_study(config)
    study.snakemake()
    X, y, X_test, y_test = _train_test(
        *datasets.load_wine(return_X_y=True), test_size=0.25, seed=1, classification=True
    )
    search = ms.RandomizedSearchCV(
        Pipeline([("scale", StandardScaler()), ("svc", SVC())]),
        {
            "svc__C": loguniform(1e-2, 1e3),
            "svc__gamma": loguniform(1e-4, 1e1),
            "svc__tol": [1e-4, 1e-3, 1e-2, 1e-1],
        },
        n_iter=6,
        random_state=42,
        cv=ms.StratifiedKFold(3),
        scoring=["accuracy"],  # metric-named columns, as in our leaderboard
        refit="accuracy",
    ).fit(X, y)
    _assert_matches_sklearn(study.leaderboard(), search.cv_results_, ["accuracy"], 3)
    refit = _assert_refit_matches(study, search, X_test, y_test, ["accuracy"])
    assert (refit["n_train"], refit["n_test"]) == (133, 45)


def test_reruns_only_what_changed(make_study):
    config = json.loads(json.dumps(KNN_GRID))
    config["search"]["grid"] = {"n_neighbors": [1, 5], "metric": ["euclidean"]}
    config["trials_per_job"] = 1  # count trial jobs (batching has its own tests)
    study = make_study(config)
    first = study.snakemake()
    assert jobs_run(first) == 8
    files = {p.name: p.stat().st_mtime_ns for p in study.trial_files()}

    # Nothing changed: zero jobs.
    again = study.snakemake()
    assert jobs_run(again) == 0 and "Nothing to be done" in again.stdout + again.stderr

    # One new grid value: exactly its folds run; old trial files untouched.
    study.config["search"]["grid"]["n_neighbors"] = [1, 5, 9]
    study.write()
    added = study.snakemake()
    assert jobs_run(added) == 4
    assert all(study.out.joinpath("trials", n).stat().st_mtime_ns == t for n, t in files.items())
    assert len(study.leaderboard()) == 3

    # Reverting reuses the old files; unrelated edits (report size, timeout) run no trial.
    study.config["search"]["grid"]["n_neighbors"] = [1, 5]
    study.config["report"] = {"top_n": 3}
    study.config["trial_timeout"] = 100
    study.write()
    reverted = study.snakemake()
    assert jobs_run(reverted) == 0
    assert len(study.leaderboard()) == 2

    # A deleted trial file reruns that trial only.
    victim = study.out / "trials" / f"{study.leaderboard()['config_key'][0]}_1.json"
    victim.unlink()
    redo = study.snakemake()
    assert jobs_run(redo) == 1 and victim.exists()


def test_refit_is_copied_when_the_best_is_unchanged(make_study):
    """An edit that leaves the best configuration as it was copies the refit model from
    <study>/.cache/refit (the same bytes) instead of fitting it again; a new best is fitted."""
    config = json.loads(json.dumps(KNN_GRID))
    config["search"]["grid"] = {"n_neighbors": [5, 9], "metric": ["euclidean"]}
    study = make_study(config)
    study.snakemake()
    log = study.out / "logs" / "refit.log"
    assert "copied" not in log.read_text()
    model, summary = (study.out / "model.pkl").read_bytes(), (study.out / "refit.json").read_text()
    best = json.loads((study.out / "best.json").read_text())["params"]

    # A clearly worse value (k = 100 of 112 training rows): the best stays, its refit is copied.
    study.config["search"]["grid"]["n_neighbors"] = [5, 9, 100]
    study.write()
    study.snakemake()
    assert json.loads((study.out / "best.json").read_text())["params"] == best
    assert "copied from" in log.read_text(), log.read_text()
    assert (study.out / "model.pkl").read_bytes() == model
    assert (study.out / "refit.json").read_text() == summary

    # Only k = 100 left: a new best, fitted anew.
    study.config["search"]["grid"]["n_neighbors"] = [100]
    study.write()
    study.snakemake()
    assert "copied" not in log.read_text()
    assert json.loads((study.out / "refit.json").read_text())["params"]["n_neighbors"] == 100


def test_worker_and_in_process_give_identical_trials(make_study):
    config = json.loads(json.dumps(KNN_GRID))
    config["search"]["grid"] = {"n_neighbors": [2, 6], "metric": ["chebyshev"]}
    config["trials_per_job"] = 1
    warm = make_study(dict(config, worker=True), name="warm")
    cold = make_study(dict(config, worker=False), name="cold")
    warm.snakemake()
    cold.snakemake()
    assert "warm worker" in next((warm.out / "logs" / "trials").glob("*.log")).read_text()
    assert not (cold.out / "logs" / "worker.log").exists()
    drop = {"fit_time", "score_time", "fit_cpu", "score_cpu", "pid", "start", "end"}
    for w, c in zip(warm.trial_files(), cold.trial_files(), strict=True):
        assert w.name == c.name
        a, b = json.loads(w.read_text()), json.loads(c.read_text())
        assert {k: v for k, v in a.items() if k not in drop} == {k: v for k, v in b.items() if k not in drop}
    assert without_timings(warm.leaderboard()).equals(without_timings(cold.leaderboard()))


def test_list_of_grids_equals_gridsearchcv(make_study):
    from sklearn.svm import SVC

    grid = [{"kernel": ["linear"], "C": [0.1, 1.0]}, {"kernel": ["rbf"], "C": [1.0], "gamma": [0.01, 0.1]}]
    config = {
        "study": "subgrids",
        "data": {"loader": "breast_cancer"},
        "estimator": {"class": "sklearn.svm.SVC"},
        "search": {"grid": grid},
        "cv": {"kind": "kfold", "n_splits": 3, "shuffle": True, "seed": 1},
        "scoring": ["accuracy"],
    }
    study = make_study(config)
    study.snakemake()
    X, y = datasets.load_breast_cancer(return_X_y=True)
    search = ms.GridSearchCV(
        SVC(), grid, cv=ms.KFold(3, shuffle=True, random_state=1), scoring=["accuracy"], refit="accuracy"
    ).fit(X, y)
    frame = study.leaderboard()
    _assert_matches_sklearn(frame, search.cv_results_, ["accuracy"], 3)
    assert frame["param_gamma"].isna().sum() == 2  # masked where a sub-grid has no gamma
    assert (study.out / "report" / "study.html").exists()


# --- every cv.kind and the held-out split, each against a splitter built by hand --------------------

# (config's cv section, data.test_size, data.seed, the splitter scikit-learn is given). Defaults
# per the schema: kind auto, n_splits 5, n_repeats 1, shuffle false, cv.test_size 0.2, seeds 0.
CV_CASES = {
    "auto": ({"kind": "auto"}, 0.2, None, ms.StratifiedKFold(5)),
    "auto-default": (None, 0.3, 5, ms.StratifiedKFold(5)),
    "kfold": (
        {"kind": "kfold", "n_splits": 4, "shuffle": True, "seed": 7},
        0.2,
        3,
        ms.KFold(4, shuffle=True, random_state=7),
    ),
    "stratified": (
        {"kind": "stratified", "n_splits": 3, "shuffle": True, "seed": 11},
        0.25,
        5,
        ms.StratifiedKFold(3, shuffle=True, random_state=11),
    ),
    "stratified-unshuffled": ({"kind": "stratified", "n_splits": 3}, 0.2, 8, ms.StratifiedKFold(3)),
    "repeated_kfold": (
        {"kind": "repeated_kfold", "n_splits": 3, "n_repeats": 2, "seed": 2},
        0.2,
        9,
        ms.RepeatedKFold(n_splits=3, n_repeats=2, random_state=2),
    ),
    "repeated_stratified": (
        {"kind": "repeated_stratified", "n_splits": 3, "n_repeats": 2, "seed": 4},
        0.3,
        1,
        ms.RepeatedStratifiedKFold(n_splits=3, n_repeats=2, random_state=4),
    ),
    "shuffle_split": (
        {"kind": "shuffle_split", "n_splits": 4, "test_size": 0.3, "seed": 9},
        0.2,
        6,
        ms.ShuffleSplit(4, test_size=0.3, random_state=9),
    ),
    "stratified_shuffle_split": (
        {"kind": "stratified_shuffle_split", "n_splits": 4, "test_size": 0.25, "seed": 6},
        0.25,
        12,
        ms.StratifiedShuffleSplit(4, test_size=0.25, random_state=6),
    ),
    "stratified_shuffle_split-default": (
        {"kind": "stratified_shuffle_split", "n_splits": 3},
        0.2,
        2,
        ms.StratifiedShuffleSplit(3, test_size=0.2, random_state=0),
    ),
}


@pytest.mark.parametrize("case", list(CV_CASES))
def test_cv_kind_and_held_out_split_equal_sklearn(make_study, case):
    from sklearn.neighbors import KNeighborsClassifier

    cv, test_size, data_seed, splitter = CV_CASES[case]
    data = {"loader": "iris", "test_size": test_size}
    if data_seed is not None:
        data["seed"] = data_seed
    grid = {"n_neighbors": [1, 5, 9], "weights": ["uniform"]}
    config = {
        "study": f"cv-{case}",
        "data": data,
        "estimator": {"class": "sklearn.neighbors.KNeighborsClassifier"},
        "search": {"grid": grid},
        "scoring": ["accuracy", "f1_macro"],
        "trials_per_job": "auto",
    }
    if cv is not None:
        config["cv"] = cv
    study = make_study(config)
    study.snakemake()

    X, y, X_test, y_test = _train_test(
        *datasets.load_iris(return_X_y=True), test_size=test_size, seed=data_seed or 0, classification=True
    )
    n_splits = splitter.get_n_splits(X, y)
    search = ms.GridSearchCV(
        KNeighborsClassifier(), grid, cv=splitter, scoring=["accuracy", "f1_macro"], refit="accuracy"
    ).fit(X, y)
    _assert_matches_sklearn(study.leaderboard(), search.cv_results_, ["accuracy", "f1_macro"], n_splits)
    assert study.best()["params"] == search.best_params_
    refit = _assert_refit_matches(study, search, X_test, y_test, ["accuracy", "f1_macro"])
    assert (refit["n_train"], refit["n_test"]) == (len(y), len(y_test))
    # cross_validate on the same hand-built splitter: the first configuration's folds once more.
    first = ms.cross_validate(KNeighborsClassifier(n_neighbors=1), X, y, cv=splitter, scoring=["accuracy"])
    np.testing.assert_allclose(
        [study.leaderboard()[f"split{k}_test_accuracy"][0] for k in range(n_splits)],
        first["test_accuracy"],
        rtol=0,
        atol=ATOL,
    )


# --- regression, files with string labels, train scores and seed -> random_state -------------------


def test_regression_equals_gridsearchcv(make_study):
    """diabetes + Ridge: float targets are regression, so the held-out split is not stratified and
    cv ``auto`` is plain ``KFold(5)`` (check_cv's choice for a regressor)."""
    from sklearn.linear_model import Ridge

    grid = {"alpha": [0.01, 0.3, 3.0, 30.0]}
    scoring = ["r2", "neg_mean_squared_error"]
    config = {
        "study": "ridge",
        "data": {"loader": "diabetes", "test_size": 0.2, "seed": 4},
        "estimator": {"class": "sklearn.linear_model.Ridge"},
        "search": {"grid": grid},
        "scoring": scoring,
        "trials_per_job": "auto",
    }
    study = make_study(config)
    study.snakemake()
    X, y, X_test, y_test = _train_test(
        *datasets.load_diabetes(return_X_y=True), test_size=0.2, seed=4, classification=False
    )
    search = ms.GridSearchCV(Ridge(), grid, cv=ms.KFold(5), scoring=scoring, refit="r2").fit(X, y)
    _assert_matches_sklearn(study.leaderboard(), search.cv_results_, scoring, 5)
    assert study.best()["params"] == search.best_params_
    refit = _assert_refit_matches(study, search, X_test, y_test, scoring)
    assert (refit["n_train"], refit["n_test"]) == (353, 89)


def test_integer_regression_target_equals_gridsearchcv(make_study):
    """An integer target with a regressor is a regression target (the estimator decides, as
    ``check_cv`` does): ``test_size: 0.2`` holds out rows with a plain ``train_test_split`` (most
    values occur once, so a stratified split would fail) and ``cv.kind: auto`` is ``KFold``."""
    import pandas as pd
    from sklearn.neighbors import KNeighborsRegressor

    X, y = datasets.load_diabetes(return_X_y=True, as_frame=True)
    table = X.assign(progression=y.astype(int))
    grid = {"n_neighbors": [3, 10, 30], "weights": ["uniform", "distance"]}
    scoring = ["neg_root_mean_squared_error", "r2"]
    study = make_study(
        {
            "study": "int-target",
            "data": {"csv": "diabetes.csv", "target": "progression", "test_size": 0.2, "seed": 3},
            "estimator": {"class": "sklearn.neighbors.KNeighborsRegressor"},
            "search": {"grid": grid},
            "scoring": scoring,
        }
    )
    table.to_csv(study.workdir / "diabetes.csv", index=False)
    study.snakemake()

    table = pd.read_csv(study.workdir / "diabetes.csv")
    y = table.pop("progression").to_numpy()
    assert y.dtype.kind == "i" and np.unique(y, return_counts=True)[1].min() == 1
    X, X_test, y, y_test = ms.train_test_split(table, y, test_size=0.2, random_state=3)
    search = ms.GridSearchCV(KNeighborsRegressor(), grid, cv=ms.KFold(5), scoring=scoring, refit=scoring[0]).fit(X, y)
    _assert_matches_sklearn(study.leaderboard(), search.cv_results_, scoring, 5)
    refit = _assert_refit_matches(study, search, X_test, y_test, scoring)
    assert (refit["n_train"], refit["n_test"]) == (353, 89)
    # leaderboard.md shows the loss as a loss, RMSE, positive, the best (lowest) first, while
    # leaderboard.csv keeps scikit-learn's neg_* column (compared above).
    lines = (study.out / "leaderboard.md").read_text().splitlines()
    assert lines[0] == "# Leaderboard (top 20 by RMSE; lower is better)"
    header = next(line for line in lines if line.startswith("| rank"))
    assert [c.strip() for c in header.strip("|").split("|")][1:4] == ["mean RMSE", "mean R²", "std RMSE"]
    rows = [line.strip("|").split("|") for line in lines if line.startswith("|") and line[2:3].isdigit()]
    rmse = [float(r[1]) for r in rows]
    assert rmse == sorted(rmse) and all(v > 0 for v in rmse) and len(rmse) == 6
    best_rmse = -search.cv_results_["mean_test_neg_root_mean_squared_error"][search.best_index_]
    assert rmse[0] == pytest.approx(best_rmse, abs=5e-5)
    # 5 folds: the warning advises repeated k-fold, which the checker accepts for this regressor.
    from snaketune.config.load import load_config
    from tests.test_compare import advised_section

    # The ROPE is in the metric's units: 1 % of the best RMSE (about 0.6), not 0.01.
    assert study.best()["comparison"]["rope"] == float(f"{0.01 * abs(search.best_score_):.3g}")
    section = advised_section(study.best()["comparison"]["warning"])
    assert section["kind"] == "repeated_kfold"
    load_config(dict(study.config, cv=section), study.workdir)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_table_file_with_string_labels_equals_gridsearchcv(make_study, fmt):
    """A Parquet (or CSV) file whose target holds strings, end to end. The labels' alphabetical
    order differs from the data's order, so an encoding that broke stratification or the class
    order of f1/log-loss would show."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    wine = datasets.load_wine(as_frame=True)
    frame = wine.data.copy()
    frame.insert(3, "cultivar", np.array(["nebbiolo", "grignolino", "barbera"])[wine.target])
    study = make_study(
        {
            "study": f"wine-{fmt}",
            "data": {fmt: f"wine.{fmt}", "target": "cultivar", "test_size": 0.25, "seed": 2},
            "estimator": {
                "steps": [
                    {"name": "scale", "class": "sklearn.preprocessing.StandardScaler"},
                    {"name": "clf", "class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 500}},
                ]
            },
            "search": {"grid": {"clf__C": [0.01, 0.1, 1.0]}},
            "cv": {"kind": "stratified", "n_splits": 3, "shuffle": True, "seed": 1},
            "scoring": ["accuracy", "f1_macro", "neg_log_loss"],
            "trials_per_job": "auto",
        }
    )
    path = study.workdir / f"wine.{fmt}"
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
        table = pd.read_parquet(path)
    else:
        frame.to_csv(path, index=False)
        table = pd.read_csv(path)
    study.snakemake()

    y = table["cultivar"].to_numpy()
    X = table.drop(columns=["cultivar"]).to_numpy(dtype=float)
    assert y.dtype.kind in "OUT" and isinstance(y[0], str)
    X, y, X_test, y_test = _train_test(X, y, test_size=0.25, seed=2, classification=True)
    scoring = ["accuracy", "f1_macro", "neg_log_loss"]
    search = ms.GridSearchCV(
        Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))]),
        {"clf__C": [0.01, 0.1, 1.0]},
        cv=ms.StratifiedKFold(3, shuffle=True, random_state=1),
        scoring=scoring,
        refit="accuracy",
    ).fit(X, y)
    _assert_matches_sklearn(study.leaderboard(), search.cv_results_, scoring, 3)
    refit = _assert_refit_matches(study, search, X_test, y_test, scoring)
    assert (refit["n_train"], refit["n_test"]) == (133, 45)


@pytest.mark.parametrize("worker", [True, False], ids=["worker", "in-process"])
def test_seed_and_train_scores_equal_gridsearchcv(make_study, worker):
    """A RandomForestClassifier study with a top-level ``seed`` and ``return_train_score``: equal
    to GridSearchCV with ``random_state=seed`` set explicitly (scores, train scores, and the refit
    model's predictions), with and without the warm worker. make_classification's data come from
    ``data.seed``."""
    from sklearn.ensemble import RandomForestClassifier

    seed = 11
    gen = {"n_samples": 120, "n_features": 6, "n_informative": 3, "n_redundant": 1}
    grid = {"max_depth": [2, None], "max_features": [0.5, 1.0]}
    scoring = ["accuracy", "roc_auc"]
    config = {
        "study": "rf-seed",
        "seed": seed,
        "data": {"generator": "make_classification", "params": gen, "seed": 4},
        "estimator": {"class": "sklearn.ensemble.RandomForestClassifier", "params": {"n_estimators": 8, "n_jobs": 1}},
        "search": {"grid": grid},
        "cv": {"kind": "stratified", "n_splits": 3, "shuffle": True, "seed": 2},
        "scoring": scoring,
        "return_train_score": True,
        "worker": worker,
        "trials_per_job": "auto",
    }
    study = make_study(config)
    study.snakemake()
    X, y = datasets.make_classification(**gen, random_state=4)
    cv = ms.StratifiedKFold(3, shuffle=True, random_state=2)

    def grid_search(random_state):
        return ms.GridSearchCV(
            RandomForestClassifier(n_estimators=8, n_jobs=1, random_state=random_state),
            grid,
            cv=cv,
            scoring=scoring,
            refit="accuracy",
            return_train_score=True,
        ).fit(X, y)

    search = grid_search(seed)
    frame = study.leaderboard()
    _assert_matches_sklearn(frame, search.cv_results_, scoring, 3, train=True)
    assert study.best()["params"] == search.best_params_
    # The test can tell seeds apart: another random_state gives other scores.
    other = grid_search(seed + 1).cv_results_
    assert not np.allclose(other["mean_test_roc_auc"], search.cv_results_["mean_test_roc_auc"], rtol=0, atol=ATOL)
    # The refit model (a pickle this test's study wrote) is GridSearchCV's best_estimator_.
    with open(study.out / "model.pkl", "rb") as fh:
        model = pickle.load(fh)
    assert model.get_params()["random_state"] == seed
    np.testing.assert_array_equal(model.predict_proba(X), search.best_estimator_.predict_proba(X))
