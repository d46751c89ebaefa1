"""Valid configs pass the checks unchanged in meaning; config text is only ever parsed as data."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from snaketune.config.load import ConfigError, load_config, main, read_yaml, schema_problems
from snaketune.workflow.support import load_study

REPO = Path(__file__).resolve().parents[1]

VALID = [
    {
        "study": "pipe",
        "data": {"generator": "make_classification", "params": {"n_samples": 60, "n_features": 4}},
        "estimator": {
            "steps": [
                {"name": "scale", "class": "sklearn.preprocessing.StandardScaler"},
                {"name": "svc", "class": "sklearn.svm.SVC", "params": {"kernel": "rbf"}},
            ]
        },
        "search": {
            "random": {
                "n_iter": 3,
                "params": {"svc__C": {"loguniform": [0.01, 100]}, "scale__with_mean": [True, False]},
            }
        },
        "scoring": ["accuracy", "f1_macro"],
        "refit": "f1_macro",
    },
    {
        "study": "ridge",
        "data": {"loader": "diabetes"},
        "estimator": {"class": "sklearn.linear_model.Ridge"},
        "search": {"grid": [{"alpha": {"logspace": [-2, 2, 5]}}, {"alpha": [1.0], "fit_intercept": [False]}]},
        "cv": {"kind": "kfold", "n_splits": 3},
    },
    {
        "study": "mlp",
        "data": {"loader": "iris"},
        "estimator": {"class": "sklearn.neural_network.MLPClassifier", "params": {"max_iter": 50}},
        "search": {"grid": {"hidden_layer_sizes": [[4], [4, 4]], "alpha": [0.001]}},
        "trials_per_job": "auto",
        "trial_timeout": 30,
        "error_score": "raise",
    },
]


@pytest.mark.parametrize("config", VALID, ids=[c["study"] for c in VALID])
def test_valid_configs_pass(config, tmp_path):
    before = copy.deepcopy(config)
    loaded = load_config(config, tmp_path)
    assert config == before  # the input is not modified
    assert loaded["cv"]["n_splits"] >= 2
    assert isinstance(loaded["scoring"], list) and loaded["refit"] in loaded["scoring"]


def test_example_config_and_defaults():
    config = load_config(read_yaml(REPO / "examples" / "knn-iris.yaml"), REPO)
    assert config["scoring"] == ["accuracy"] and config["refit"] == "accuracy"
    assert config["output_dir"] == "results" and config["seed"] == 0
    assert config["trials_per_job"] == "auto" and config["allowed_modules"] == []
    assert config["worker"] is True and config["trial_timeout"] is None
    assert config["cv"]["n_repeats"] == 1 and config["data"]["test_size"] == 0


def test_regressor_scores_r2_by_default(tmp_path):
    config = load_config(VALID[1], tmp_path)
    assert config["scoring"] == ["r2"] and config["refit"] == "r2"


def test_csv_source(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,label\n" + "".join(f"{i},{i * 2},{'xy'[i % 2]}\n" for i in range(20)))
    config = {
        "study": "csv",
        "data": {"csv": "d.csv", "target": "label"},
        "estimator": {"class": "sklearn.tree.DecisionTreeClassifier"},
        "search": {"grid": {"max_depth": {"range": [1, 4]}}},
        "cv": {"n_splits": 2},
    }
    assert load_config(config, tmp_path)["data"]["csv"] == "d.csv"


def test_json_config_file(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(VALID[0]))
    assert read_yaml(path) == VALID[0]


def test_schema_problems_empty_for_valid():
    assert schema_problems(VALID[0]) == []


def test_package_never_evaluates_config_text():
    # Config text is data: no eval/exec, YAML only through SafeLoader, and pickles are loaded only
    # where the package reads states it wrote itself (promoted slots of adaptive search, the
    # Optuna state an ask round carries to the next).
    pattern = re.compile(
        r"\b(eval|exec)\s*\(|(?<!re\.)\bcompile\s*\(|__import__|yaml\.(unsafe_)?load\((?![^)]*SafeLoader|[^)]*_StrictLoader)|"
        r"Loader=yaml\.(Full|Unsafe)?Loader\b|pickle\.loads?\("
    )
    # Models and sampler states the workflow pickled itself; the API's best_estimator_ is model.pkl;
    # estimator.pickle only from the study's own inputs/ folder (config.checks._pickle_outside_study),
    # and a search's stored refit from the same folder.
    may_unpickle = {
        "snaketune/evaluation/slots.py",
        "snaketune/evaluation/rounds.py",
        "snaketune/api.py",
        "snaketune/base/estimator.py",
        "snaketune/search_cv.py",
    }
    sources = [*(REPO / "snaketune").rglob("*.py"), *(REPO / "scripts").glob("*.py"), REPO / "Snakefile"]
    sources += (REPO / "workflow" / "rules").glob("*.smk")
    offenders = []
    for path in sources:
        name = str(path.relative_to(REPO))
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if pattern.search(code) and not (name in may_unpickle and "pickle.load(" in code):
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert offenders == []
    # The pattern fires on what it is meant to catch.
    assert all(pattern.search(s) for s in ("eval(x)", "pickle.loads(b)", "yaml.load(f)", "exec(code)"))
    assert issubclass(__import__("snaketune.config.load").config.load._StrictLoader, yaml.SafeLoader)


def test_check_command(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.yaml").write_text(yaml.safe_dump(VALID[2]))
    (tmp_path / "bad.yaml").write_text(
        "study: a b\ndata: {loader: iris}\nestimator: {class: os.system}\nsearch: {grid: {x: [1]}}\n"
    )
    assert main(["good.yaml"]) == 0
    assert main(["bad.yaml"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[1] for line in err] == ["study", "estimator.class"]


def test_load_study_exits_with_one_line_each(tmp_path, capsys):
    (tmp_path / "config.yaml").write_text(
        "study: s\ndata: {loader: iris}\nestimator: {class: sklearn.svm.SVC}\n"
        "search: {grid: {C: []}}\ncv: {n_splits: 1}\n"
    )
    with pytest.raises(SystemExit) as info:
        load_study({}, basedir=tmp_path)
    assert info.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert [line.split(": ")[1] for line in lines] == ["cv.n_splits", "search.grid.C"], lines


def test_config_error_lines():
    error = ConfigError(["a: x", "b.c: y"])
    assert str(error) == "config error: a: x\nconfig error: b.c: y"
