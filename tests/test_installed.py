"""snaketune as users install it: a wheel in a fresh venv, used from an empty folder of their own.

Every study here runs from a folder outside the clone, with the installed package (the clone copy
the wheel was built from is deleted first): `snaketune run`, `init` + `run`, `status`, the README's
module snippet, and the Python API, each checked against scikit-learn on the same folds.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn import model_selection as ms
from sklearn.datasets import load_wine
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from tests.conftest import REPO, without_timings
from tests.test_e2e_core import _assert_matches_sklearn, _train_test

pytestmark = pytest.mark.slow

GRID = {"clf__n_neighbors": [1, 5, 15], "clf__weights": ["uniform", "distance"]}
SCORING = ["accuracy", "f1_macro"]


def study_config(name: str) -> dict:
    """A study of the user's own CSV (``wine.csv``, written by :func:`user_folder`)."""
    return {
        "study": name,
        "data": {"csv": "wine.csv", "target": "cultivar", "test_size": 0.25, "seed": 1},
        "estimator": {
            "steps": [
                {"name": "scale", "class": "sklearn.preprocessing.StandardScaler"},
                {"name": "clf", "class": "sklearn.neighbors.KNeighborsClassifier"},
            ]
        },
        "search": {"grid": GRID},
        "cv": {"kind": "stratified", "n_splits": 4, "shuffle": True, "seed": 0},
        "scoring": SCORING,
        "refit": "accuracy",
    }


def user_folder(root: Path, name: str) -> Path:
    """An empty folder of the user's, with their data as a CSV."""
    folder = root / name
    folder.mkdir()
    data = load_wine(as_frame=True)
    data.frame.rename(columns={"target": "cultivar"}).to_csv(folder / "wine.csv", index=False)
    return folder


def grid_search():
    """GridSearchCV on the same rows and folds: the held-out split of data.test_size/seed first."""
    data = load_wine(as_frame=True)
    X, y = data.data.to_numpy(), data.target.to_numpy()
    X, y, X_test, _ = _train_test(X, y, test_size=0.25, seed=1, classification=True)
    pipe = Pipeline([("scale", StandardScaler()), ("clf", KNeighborsClassifier())])
    cv = ms.StratifiedKFold(4, shuffle=True, random_state=0)
    search = ms.GridSearchCV(pipe, GRID, scoring=SCORING, refit="accuracy", cv=cv).fit(X, y)
    return search, X_test


def test_the_wheel_carries_the_workflow(installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    bundle = "snaketune/_bundle/"
    for path in (
        "Snakefile",
        "workflow/rules/common.smk",
        "workflow/rules/trials.smk",
        "workflow/schemas/config.schema.yaml",
        "workflow/report/workflow.rst",
        "workflow/profiles/slurm/config.yaml",
        "profiles/default/config.yaml",
        "scripts/job_client.py",
        "envs/snaketune.yaml",
        "examples/data/penguins.csv",
    ):
        assert bundle + path in names, path
    assert "snakemake_logger_plugin_snaketune/__init__.py" in names
    assert not [n for n in names if n.startswith(bundle + "examples") and "/results/" in n]
    assert not [n for n in names if "__pycache__" in n]


def test_snaketune_run_from_an_empty_folder_equals_gridsearchcv(installed, tmp_path):
    folder = user_folder(tmp_path, "project")
    (folder / "study.yaml").write_text(yaml.safe_dump(study_config("wine-knn"), sort_keys=False))
    installed.run("snaketune", "run", "study.yaml", "--cores", "2", cwd=folder)
    out = folder / "results" / "wine-knn"
    search, _ = grid_search()
    frame = pd.read_csv(out / "leaderboard.csv")
    _assert_matches_sklearn(frame, search.cv_results_, SCORING, 4)
    assert json.loads((out / "best.json").read_text())["params"] == search.best_params_
    # Everything the run wrote is under the user's folder, and the jobs used the warm worker.
    assert "(warm worker)" in next((out / "logs" / "batches").glob("*.log")).read_text()

    status = installed.run("snaketune", "status", "--configfile", "study.yaml", "--json", cwd=folder)
    doc = json.loads(status.stdout)
    assert (doc["done"], doc["total"], doc["failed"]) == (24, 24, 0)
    # Snakemake's options pass through, and its exit status is ours: nothing left to do.
    dry = installed.run("snaketune", "run", "study.yaml", "-n", cwd=folder)
    assert "Nothing to be done" in dry.stdout + dry.stderr
    bad = installed.run("snaketune", "run", "missing.yaml", cwd=folder, check=False)
    assert bad.returncode == 2 and "missing.yaml" in bad.stderr


def test_init_then_run(installed, tmp_path):
    folder = tmp_path / "fresh"
    folder.mkdir()
    init = installed.run("snaketune", "init", "penguins", cwd=folder)
    assert (folder / "config.yaml").exists() and (folder / "data" / "penguins.csv").exists(), init.stdout
    assert "snaketune run" in init.stdout
    again = installed.run("snaketune", "init", "penguins", cwd=folder, check=False)
    assert again.returncode == 2 and "--force" in again.stderr  # the user's files are kept
    installed.run("snaketune", "run", "--cores", "2", cwd=folder)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    frame = pd.read_csv(folder / "results" / config["study"] / "leaderboard.csv")
    assert len(frame) == 8 and frame["mean_test_accuracy"].notna().all()
    assert (folder / "results" / config["study"] / "model.pkl").exists()


def readme_module_snippet() -> str:
    """The Snakefile the README shows under "As a Snakemake module"."""
    text = (REPO / "README.md").read_text()
    section = text.split("### As a Snakemake module", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_module_snippet_runs_the_study(installed, tmp_path):
    folder = user_folder(tmp_path, "own-snakefile")
    (folder / "study.yaml").write_text(yaml.safe_dump(study_config("wine-module"), sort_keys=False))
    (folder / "Snakefile").write_text(readme_module_snippet())
    installed.run("snakemake", "--cores", "2", cwd=folder)
    search, _ = grid_search()
    _assert_matches_sklearn(
        pd.read_csv(folder / "results" / "wine-module" / "leaderboard.csv"), search.cv_results_, SCORING, 4
    )
    rerun = installed.run("snakemake", "--cores", "2", cwd=folder)
    assert "Nothing to be done" in rerun.stdout + rerun.stderr


API_SCRIPT = """
import json, sys
import pandas as pd
import snaketune

config = json.loads(sys.argv[1])
errors = []
try:  # a config error raises before anything runs
    snaketune.run(dict(config, study="bad", cv={"kind": "stratified", "n_splits": 1}), cores=2)
except snaketune.ConfigError as exc:
    errors.append(str(exc))
study = snaketune.run(config, cores=2)
loaded = snaketune.load("results/" + config["study"])
X_test = pd.read_json(sys.argv[2]).to_numpy()
results = loaded.cv_results_
json.dump({
    "errors": errors,
    "package": snaketune.__file__,
    "same": study.best_params_ == loaded.best_params_,
    "leaderboard": type(loaded.leaderboard).__name__,
    "best_params": loaded.best_params_,
    "best_index": loaded.best_index_,
    "best_score": loaded.best_score_,
    "cv_results": {k: v.tolist() for k, v in results.items() if k.startswith(("mean_test", "split", "rank_test"))},
    "masked": type(results["param_clf__n_neighbors"]).__name__,
    "params": results["params"],
    "predict": loaded.best_estimator_.predict(X_test).tolist(),
    "trials": loaded.trials["status"].value_counts().to_dict(),
    "done": loaded.status().done,
}, open("api.json", "w"))
"""


def test_python_api_run_dict_and_load_equal_gridsearchcv(installed, tmp_path):
    folder = user_folder(tmp_path, "notebook")
    search, X_test = grid_search()
    (folder / "api.py").write_text(API_SCRIPT)
    (folder / "X_test.json").write_text(pd.DataFrame(X_test).to_json())
    proc = installed.run("python", "api.py", json.dumps(study_config("wine-api")), "X_test.json", cwd=folder)
    # Snakemake's output reaches Python's sys.stdout (what a notebook shows), not only file 1.
    assert "snaketune: study wine-api" in proc.stdout
    doc = json.loads((folder / "api.json").read_text())
    assert Path(doc["package"]).is_relative_to(installed.venv)  # the installed package, not the clone
    assert len(doc["errors"]) == 1 and doc["errors"][0].startswith("config error: cv.n_splits"), doc["errors"]
    assert not (folder / "results" / "bad").exists()  # nothing ran for the bad config
    assert doc["same"] and doc["leaderboard"] == "DataFrame" and doc["masked"] == "MaskedArray"
    reference = search.cv_results_
    assert doc["params"] == reference["params"]
    for key, values in doc["cv_results"].items():
        np.testing.assert_allclose(values, reference[key], rtol=0, atol=1e-12, err_msg=key)
    assert doc["best_params"] == search.best_params_ and doc["best_index"] == search.best_index_
    assert abs(doc["best_score"] - search.best_score_) <= 1e-12
    np.testing.assert_array_equal(doc["predict"], search.best_estimator_.predict(X_test))
    assert doc["trials"] == {"ok": 24} and doc["done"] == 24


def test_run_and_load_give_the_same_leaderboard_as_the_cli(installed, tmp_path):
    """A study given as a dict and the same study as a file give the same trials and leaderboard."""
    cli, api = user_folder(tmp_path, "cli"), user_folder(tmp_path, "api")
    config = study_config("same")
    (cli / "study.yaml").write_text(yaml.safe_dump(config))
    installed.run("snaketune", "run", "study.yaml", "--cores", "1", cwd=cli)
    script = "import json, sys, snaketune; snaketune.run(json.loads(sys.argv[1]), cores=2)"
    installed.run("python", "-c", script, json.dumps(config), cwd=api)
    trials = [sorted(p.name for p in (f / "results" / "same" / "trials").glob("*.json")) for f in (cli, api)]
    assert trials[0] == trials[1] and len(trials[0]) == 24
    frames = [without_timings(pd.read_csv(f / "results" / "same" / "leaderboard.csv")) for f in (cli, api)]
    pd.testing.assert_frame_equal(frames[0], frames[1], check_exact=True)
