"""End to end: real ``snakemake --cores 2`` on small studies, checked against scikit-learn."""

from __future__ import annotations

import json

import numpy as np
import pytest

from snaketune.splits import load_splits
from tests.conftest import jobs_run, without_timings

pytestmark = pytest.mark.slow

KNN_GRID = {
    "study": "knn",
    "data": {"loader": "iris"},
    "estimator": {"class": "sklearn.neighbors.KNeighborsClassifier"},
    "search": {"grid": {"n_neighbors": [1, 3, 7, 15], "metric": ["euclidean", "manhattan"]}},
    "cv": {"kind": "stratified", "n_splits": 4, "shuffle": True, "seed": 3},
    "scoring": ["accuracy", "f1_macro"],
    "refit": "accuracy",
}


def _splits(study):
    (path,) = (study.out / "splits").glob("*.npz")
    return load_splits(path)


def _prepared(study):
    (data_dir,) = (study.out / "data").iterdir()
    return np.load(data_dir / "X.npy"), np.load(data_dir / "y.npy")


def _assert_matches_sklearn(frame, reference, metrics, n_splits):
    assert list(frame["params"].map(json.loads)) == [
        {k: (list(v) if isinstance(v, tuple) else v) for k, v in p.items()} for p in reference["params"]
    ]
    for m in metrics:
        for col in [f"mean_test_{m}", f"std_test_{m}"] + [f"split{k}_test_{m}" for k in range(n_splits)]:
            np.testing.assert_allclose(frame[col].to_numpy(float), reference[col], rtol=0, atol=1e-12, err_msg=col)
        np.testing.assert_array_equal(frame[f"rank_test_{m}"].to_numpy(), reference[f"rank_test_{m}"])


def test_grid_leaderboard_equals_gridsearchcv(make_study):
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KNeighborsClassifier

    study = make_study(KNN_GRID)
    study.snakemake()
    X, y = _prepared(study)
    search = GridSearchCV(
        KNeighborsClassifier(),
        KNN_GRID["search"]["grid"],
        cv=_splits(study),
        scoring=KNN_GRID["scoring"],
        refit="accuracy",
    ).fit(X, y)
    frame = study.leaderboard()
    _assert_matches_sklearn(frame, search.cv_results_, KNN_GRID["scoring"], 4)
    assert study.best()["params"] == search.best_params_
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
    from sklearn.model_selection import RandomizedSearchCV
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
    X, y = _prepared(study)
    search = RandomizedSearchCV(
        Pipeline([("scale", StandardScaler()), ("svc", SVC())]),
        {
            "svc__C": loguniform(1e-2, 1e3),
            "svc__gamma": loguniform(1e-4, 1e1),
            "svc__tol": [1e-4, 1e-3, 1e-2, 1e-1],
        },
        n_iter=6,
        random_state=42,
        cv=_splits(study),
        scoring=["accuracy"],  # metric-named columns, as in our leaderboard
        refit="accuracy",
    ).fit(X, y)
    _assert_matches_sklearn(study.leaderboard(), search.cv_results_, ["accuracy"], 3)
    refit = json.loads((study.out / "refit.json").read_text())
    assert refit["n_test"] == 45 and 0.5 < refit["test_scores"]["accuracy"] <= 1.0


def test_reruns_only_what_changed(make_study):
    config = json.loads(json.dumps(KNN_GRID))
    config["search"]["grid"] = {"n_neighbors": [1, 5], "metric": ["euclidean"]}
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


def test_worker_and_in_process_give_identical_trials(make_study):
    config = json.loads(json.dumps(KNN_GRID))
    config["search"]["grid"] = {"n_neighbors": [2, 6], "metric": ["chebyshev"]}
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
    from sklearn.model_selection import GridSearchCV
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
    X, y = _prepared(study)
    search = GridSearchCV(SVC(), grid, cv=_splits(study), scoring=["accuracy"], refit="accuracy").fit(X, y)
    frame = study.leaderboard()
    _assert_matches_sklearn(frame, search.cv_results_, ["accuracy"], 3)
    assert frame["param_gamma"].isna().sum() == 2  # masked where a sub-grid has no gamma
    assert (study.out / "report" / "study.html").exists()
