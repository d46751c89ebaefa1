"""Bad input: every malformed config gives one ``config error: <key>: ...`` line, no traceback.

The unit part calls :func:`snaketune.config.load_config` directly (fast); the ``slow`` part runs
real Snakemake on a sample of the cases and checks that it stops before any job.
"""

from __future__ import annotations

import copy
import re
import sys

import pytest

from snaketune.config.load import ConfigError, load_config, read_yaml
from tests.configs import iris

BASE = iris("s", "sklearn.neighbors.KNeighborsClassifier", {"grid": {"n_neighbors": [1, 3]}})
PIPELINE = {
    "steps": [
        {"name": "scale", "class": "sklearn.preprocessing.StandardScaler"},
        {"name": "knn", "class": "sklearn.neighbors.KNeighborsClassifier"},
    ]
}
REGRESSION = {
    "data": {"generator": "make_regression", "params": {"n_samples": 40, "n_features": 3}},
    "estimator": {"class": "sklearn.linear_model.Ridge"},
}


def IMPUTED(**imputer_params):  # noqa: N802 - a config constant, built fresh
    imputer = {"name": "imp", "class": "sklearn.impute.SimpleImputer", "params": imputer_params}
    return {"steps": [imputer, {"name": "knn", "class": "sklearn.neighbors.KNeighborsClassifier"}]}


RANDOM = {"random": {"n_iter": 2, "params": {"n_neighbors": {"randint": [1, 5]}}}}
TABLES = {
    "good.csv": "a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(20)),
    "text.csv": "a,colour,y\n" + "".join(f"{i},{'red' if i % 2 else 'blue'},{i % 2}\n" for i in range(20)),
    "holes.csv": "a,b,y\n" + "".join(f"{i},{'' if i == 4 else i},{i % 2}\n" for i in range(20)),
    # A regression target stored as integers: every price occurs once, so stratifying would fail.
    "prices.csv": "a,b,price\n" + "".join(f"{i},{i % 3},{100 + 7 * i}\n" for i in range(20)),
    "floats.csv": "a,b,y\n" + "".join(f"{i},{i % 3},{i * 0.37:.3f}\n" for i in range(20)),
}


def make(*updates, drop=(), **top):
    """BASE with top-level keys replaced, then dotted ``drop`` keys removed."""
    config = copy.deepcopy(BASE)
    for update in updates:
        config.update(copy.deepcopy(update))
    config.update(copy.deepcopy(top))
    for dotted in drop:
        *parents, last = dotted.split(".")
        node = config
        for part in parents:
            node = node[part]
        del node[last]
    return config


def grid(**space):
    return {"grid": space}


# (id, config, key named by the message, fragment of the message)
CASES = [
    # schema: unknown keys, wrong types, required keys
    ("unknown-top-level-key", make(bogus=1), "bogus", "unknown key 'bogus'"),
    ("unknown-nested-key", make(cv={"nsplits": 3}), "cv.nsplits", "unknown key"),
    ("wrong-type-seed", make(seed="abc"), "seed", "not of type 'integer'"),
    ("wrong-type-n-splits", make(cv={"n_splits": "5"}), "cv.n_splits", "not of type 'integer'"),
    ("wrong-type-search", make(search=["grid"]), "search", "not of type 'object'"),
    ("negative-seed", make(seed=-1), "seed", "minimum"),
    ("missing-study", make(drop=["study"]), "study", "required key 'study' is missing"),
    ("allowed-modules-string", make(allowed_modules="os"), "allowed_modules", "not of type 'array'"),
    ("error-score-word", make(error_score="zero"), "error_score", "must be a number or one of"),
    ("resources-zero-memory", make(resources={"mem_mb": 0}), "resources.mem_mb", "minimum"),
    # NaN would travel to a trial as None (JSON): refused, in a space and in fixed params
    (
        "nan-in-a-grid",
        make(estimator=IMPUTED(), search=grid(imp__missing_values=[float("nan"), -1.0])),
        "search.grid.imp__missing_values[0]",
        "NaN cannot be a parameter value",
    ),
    (
        "nan-in-fixed-params",
        make(estimator=IMPUTED(fill_value=float("nan")), search=grid(knn__n_neighbors=[1, 3])),
        "estimator.steps[0].params.fill_value",
        "a trial would receive None",
    ),
    # study name and output folder
    ("study-slash", make(study="a/b"), "study", "no '/', '..' or spaces"),
    ("study-dotdot", make(study=".."), "study", "is not allowed"),
    ("study-space", make(study="my study"), "study", "is not allowed"),
    ("output-dir-absolute", make(output_dir="/tmp/out"), "output_dir", "relative path"),
    ("output-dir-dotdot", make(output_dir="results/../../x"), "output_dir", "without '..'"),
    ("output-dir-empty", make(output_dir=""), "output_dir", "should be non-empty"),
    # CV scheme
    ("n-splits-zero", make(cv={"n_splits": 0}), "cv.n_splits", "minimum of 2"),
    ("n-splits-negative", make(cv={"n_splits": -3}), "cv.n_splits", "minimum of 2"),
    ("n-splits-one", make(cv={"n_splits": 1}), "cv.n_splits", "minimum of 2"),
    ("n-splits-above-smallest-class", make(cv={"kind": "stratified", "n_splits": 60}), "cv.n_splits", "smallest class"),
    ("n-splits-above-smallest-class-auto", make(cv={"n_splits": 51}), "cv.n_splits", "smallest class"),
    (
        "n-splits-above-samples",
        make(REGRESSION, cv={"kind": "kfold", "n_splits": 1000}, search=grid(alpha=[1.0])),
        "cv.n_splits",
        "training samples",
    ),
    ("unknown-cv-kind", make(cv={"kind": "loo"}), "cv.kind", "is not one of"),
    (
        "stratified-regression-target",
        make(REGRESSION, cv={"kind": "repeated_stratified"}, search=grid(alpha=[1.0])),
        "cv.kind",
        "stratifies by class, but Ridge is a regressor",
    ),
    (
        "stratified-regressor",
        make(
            data={"loader": "diabetes"},
            estimator=REGRESSION["estimator"],
            search=grid(alpha=[1.0]),
            cv={"kind": "stratified"},
        ),
        "cv.kind",
        "is a regressor",
    ),
    ("classifier-on-continuous-target", make(data=REGRESSION["data"]), "estimator.class", "is a classifier"),
    (
        "classifier-on-float-column",
        make(data={"csv": "floats.csv", "target": "y", "test_size": 0.2}),
        "estimator.class",
        "KNeighborsClassifier is a classifier, but the target 'y' is continuous",
    ),
    ("cv-test-size-over-one", make(cv={"kind": "shuffle_split", "test_size": 1.5}), "cv.test_size", "must be"),
    # data source
    ("unknown-loader", make(data={"loader": "mnist"}), "data.loader", "'mnist' is not one of"),
    ("unknown-generator", make(data={"generator": "make_spirals"}), "data.generator", "is not one of"),
    ("no-data-source", make(data={}), "data", "give one of loader | generator"),
    (
        "two-data-sources",
        make(data={"loader": "iris", "generator": "make_moons"}),
        "data",
        "give only one of loader, generator",
    ),
    ("csv-without-target-key", make(data={"csv": "good.csv"}), "data.target", "required with data.csv"),
    ("csv-missing-file", make(data={"csv": "nope.csv", "target": "y"}), "data.csv", "not found"),
    ("csv-no-target-column", make(data={"csv": "good.csv", "target": "label"}), "data.target", "column 'label' not in"),
    (
        "csv-text-column-not-encoded",
        make(data={"csv": "text.csv", "target": "y"}),
        "estimator",
        "column 'colour' holds text or categories that KNeighborsClassifier cannot take; encode it",
    ),
    (
        "csv-missing-values-not-imputed",
        make(data={"csv": "holes.csv", "target": "y"}),
        "estimator",
        "column 'b' has missing values that KNeighborsClassifier cannot take; add sklearn.impute.SimpleImputer",
    ),
    (
        "generator-unknown-argument",
        make(data={"generator": "make_classification", "params": {"n_sample": 50}}),
        "data.params.n_sample",
        "no parameter 'n_sample'",
    ),
    (
        "generator-bad-value",
        make(data={"generator": "make_moons", "params": {"n_samples": -5}}),
        "data.params",
        "cannot load the data set",
    ),
    (
        "params-without-generator",
        make(data={"loader": "iris", "params": {"n_samples": 5}}),
        "data.params",
        "only used with data.generator",
    ),
    ("test-size-above-one", make(data={"loader": "iris", "test_size": 1.5}), "data.test_size", "maximum"),
    ("test-size-negative", make(data={"loader": "iris", "test_size": -0.1}), "data.test_size", "minimum"),
    # estimator classes
    (
        "unknown-estimator-module",
        make(estimator={"class": "sklearn.nosuch.Thing"}),
        "estimator.class",
        "cannot import module 'sklearn.nosuch'",
    ),
    (
        "unknown-estimator-class",
        make(estimator={"class": "sklearn.svm.SVX"}),
        "estimator.class",
        "has no attribute 'SVX'",
    ),
    ("estimator-not-dotted", make(estimator={"class": "SVC"}), "estimator.class", "dotted path"),
    (
        "estimator-bad-characters",
        make(estimator={"class": "sklearn.svm.SVC()"}),
        "estimator.class",
        "dotted Python path",
    ),
    (
        "estimator-is-bunch",
        make(estimator={"class": "sklearn.utils.Bunch"}),
        "estimator.class",
        "not a scikit-learn compatible estimator",
    ),
    (
        "estimator-is-function",
        make(estimator={"class": "sklearn.metrics.accuracy_score"}),
        "estimator.class",
        "not a scikit-learn compatible estimator",
    ),
    (
        "estimator-without-fit",
        make(estimator={"class": "sklearn.base.BaseEstimator"}),
        "estimator.class",
        "not a scikit-learn compatible estimator",
    ),
    ("estimator-os-system", make(estimator={"class": "os.system"}), "estimator.class", "outside the allowed modules"),
    (
        "estimator-subprocess-popen",
        make(estimator={"class": "subprocess.Popen"}),
        "estimator.class",
        "outside the allowed modules",
    ),
    (
        "estimator-lookalike-prefix",
        make(estimator={"class": "sklearn_evil.Estimator"}),
        "estimator.class",
        "outside the allowed modules",
    ),
    (
        "allowed-os-still-not-estimator",
        make(estimator={"class": "os.system"}, allowed_modules=["os"]),
        "estimator.class",
        "not a scikit-learn compatible estimator",
    ),
    (
        "class-and-steps",
        make(estimator={"class": "sklearn.svm.SVC", **PIPELINE}),
        "estimator",
        "give only one of class, steps",
    ),
    # fixed parameters
    (
        "fixed-param-unknown",
        make(estimator={"class": "sklearn.neighbors.KNeighborsClassifier", "params": {"n_neighbours": 3}}),
        "estimator.params.n_neighbours",
        "no parameter 'n_neighbours'",
    ),
    (
        "fixed-param-bad-value",
        make(estimator={"class": "sklearn.svm.SVC", "params": {"C": -1}}, search=grid(kernel=["rbf"])),
        "estimator.params.C",
        "must be a float in the range",
    ),
    (
        "pipeline-step-param-unknown",
        make(
            estimator={
                "steps": [
                    {"name": "scale", "class": "sklearn.preprocessing.StandardScaler", "params": {"center": True}},
                    PIPELINE["steps"][1],
                ]
            },
            search=grid(knn__n_neighbors=[1]),
        ),
        "estimator.steps[0].params.center",
        "no parameter 'center'",
    ),
    # pipelines
    (
        "pipeline-duplicate-step-names",
        make(
            estimator={
                "steps": [PIPELINE["steps"][0], {"name": "scale", "class": "sklearn.neighbors.KNeighborsClassifier"}]
            },
            search=grid(scale__n_neighbors=[1]),
        ),
        "estimator.steps",
        "duplicate step names 'scale'",
    ),
    (
        "pipeline-step-name-dunder",
        make(
            estimator={
                "steps": [{"name": "my__scale", "class": "sklearn.preprocessing.StandardScaler"}, PIPELINE["steps"][1]]
            }
        ),
        "estimator.steps[0].name",
        "must not contain '__'",
    ),
    (
        "pipeline-final-step-not-last",
        make(estimator={"steps": PIPELINE["steps"][::-1]}, search=grid(knn__n_neighbors=[1])),
        "estimator.steps[0].class",
        "KNeighborsClassifier has no transform",
    ),
    (
        "pipeline-step-outside-allow-list",
        make(estimator={"steps": [{"name": "x", "class": "subprocess.Popen"}, PIPELINE["steps"][1]]}),
        "estimator.steps[0].class",
        "outside the allowed modules",
    ),
    # searched parameters
    ("searched-param-unknown", make(search=grid(k=[1, 2])), "search.grid.k", "no parameter 'k'"),
    (
        "searched-param-bad-value",
        make(search=grid(metric=["euclidean", "nope"])),
        "search.grid.metric",
        "must be a str among",
    ),
    (
        "searched-param-bad-range-value",
        make(search=grid(n_neighbors={"range": [-2, 2]})),
        "search.grid.n_neighbors",
        "must be an int in the range",
    ),
    (
        "pipeline-param-without-step",
        make(estimator=PIPELINE, search=grid(n_neighbors=[1])),
        "search.grid.n_neighbors",
        "<step>__<param>",
    ),
    (
        "pipeline-param-unknown-step",
        make(estimator=PIPELINE, search=grid(svc__C=[1.0])),
        "search.grid.svc__C",
        "no step 'svc'",
    ),
    (
        "pipeline-param-unknown-in-step",
        make(estimator=PIPELINE, search=grid(knn__C=[1.0])),
        "search.grid.knn__C",
        "KNeighborsClassifier has no 'C'",
    ),
    (
        "random-param-unknown",
        make(search={"random": {"n_iter": 2, "params": {"k": [1, 2]}}}),
        "search.random.params.k",
        "no parameter 'k'",
    ),
    # search spaces
    ("empty-grid", make(search={"grid": {}}), "search.grid", "must be a non-empty mapping"),
    ("empty-grid-list", make(search={"grid": []}), "search.grid", "must be a non-empty mapping or a non-empty list"),
    ("empty-values", make(search=grid(n_neighbors=[])), "search.grid.n_neighbors", "must be a non-empty list"),
    (
        "empty-values-in-grid-list",
        make(search={"grid": [{"n_neighbors": [1]}, {"weights": []}]}),
        "search.grid[1].weights",
        "must be a non-empty list",
    ),
    ("no-search", make(search={}), "search", "should be non-empty"),
    (
        "two-search-kinds",
        make(search={**grid(n_neighbors=[1]), **RANDOM}),
        "search",
        "give exactly one of grid, random",
    ),
    ("unknown-search-kind", make(search={"bayes": {}}), "search.bayes", "unknown key 'bayes'"),
    (
        "distribution-in-grid",
        make(search=grid(n_neighbors={"randint": [1, 5]})),
        "search.grid.n_neighbors",
        "needs a random search",
    ),
    (
        "unknown-distribution",
        make(search=grid(n_neighbors={"normal": [0, 1]})),
        "search.grid.n_neighbors.normal",
        "unknown key 'normal'",
    ),
    (
        "distribution-three-bounds",
        make(search={"random": {"n_iter": 2, "params": {"n_neighbors": {"randint": [1, 5, 9]}}}}),
        "search.random.params.n_neighbors.randint",
        "is too long",
    ),
    (
        "uniform-low-above-high",
        make(search={"random": {"n_iter": 2, "params": {"leaf_size": {"uniform": [5, 1]}}}}),
        "search.random.params.leaf_size.uniform",
        "low (5) must be below high (1)",
    ),
    (
        "loguniform-low-zero",
        make(search={"random": {"n_iter": 2, "params": {"p": {"loguniform": [0, 2]}}}}),
        "search.random.params.p.loguniform",
        "low must be > 0",
    ),
    (
        "loguniform-low-negative",
        make(search={"random": {"n_iter": 2, "params": {"p": {"loguniform": [-1, 2]}}}}),
        "search.random.params.p.loguniform",
        "low must be > 0",
    ),
    (
        "randint-fractional-bounds",
        make(search={"random": {"n_iter": 2, "params": {"n_neighbors": {"randint": [1.5, 4]}}}}),
        "search.random.params.n_neighbors.randint",
        "bounds must be integers",
    ),
    (
        "range-no-values",
        make(search=grid(n_neighbors={"range": [5, 1]})),
        "search.grid.n_neighbors.range",
        "gives no values",
    ),
    (
        "range-step-zero",
        make(search=grid(n_neighbors={"range": [1, 5, 0]})),
        "search.grid.n_neighbors.range",
        "gives no values",
    ),
    (
        "linspace-num-zero",
        make(search=grid(p={"linspace": [1, 2, 0]})),
        "search.grid.p.linspace",
        "num (third value) must be a positive integer",
    ),
    ("n-iter-zero", make(search={"random": {**RANDOM["random"], "n_iter": 0}}), "search.random.n_iter", "minimum"),
    ("n-iter-negative", make(search={"random": {**RANDOM["random"], "n_iter": -4}}), "search.random.n_iter", "minimum"),
    (
        "random-without-n-iter",
        make(search={"random": {"params": RANDOM["random"]["params"]}}),
        "search.random.n_iter",
        "required key 'n_iter' is missing",
    ),
    (
        "hyperband-without-partial-fit",
        make(search={"hyperband": {"max_iter": 9, "params": {"n_neighbors": [1, 2]}}}),
        "search.hyperband.resource",
        "has no partial_fit",
    ),
    (
        "halving-min-above-max",
        make(
            search={
                "successive_halving": {
                    "n_candidates": 4,
                    "min_resources": 50,
                    "max_resources": 10,
                    "params": {"n_neighbors": [1, 2]},
                }
            }
        ),
        "search.successive_halving.min_resources",
        "more than max_resources",
    ),
    # scoring
    ("unknown-scorer", make(scoring="acuracy"), "scoring", "unknown scorer 'acuracy'"),
    ("unknown-scorer-in-list", make(scoring=["accuracy", "f2"]), "scoring", "unknown scorer 'f2'"),
    ("empty-scoring-list", make(scoring=[]), "scoring", "must be a string or a non-empty list"),
    (
        "refit-not-in-scoring",
        make(scoring=["accuracy", "f1_macro"], refit="roc_auc"),
        "refit",
        "'roc_auc' is not one of scoring",
    ),
    (
        "classification-scorer-on-regressor",
        make(REGRESSION, search=grid(alpha=[1.0]), cv={"kind": "kfold"}, scoring="accuracy"),
        "scoring",
        "classification metric",
    ),
    # run settings
    ("trial-timeout-zero", make(trial_timeout=0), "trial_timeout", "less than or equal to the minimum"),
    ("trial-timeout-negative", make(trial_timeout=-5), "trial_timeout", "less than or equal to the minimum"),
    ("refit-timeout-zero", make(refit_timeout=0), "refit_timeout", "less than or equal to the minimum"),
    ("refit-timeout-text", make(refit_timeout="1h"), "refit_timeout", "is not of type"),
    ("trials-per-job-zero", make(trials_per_job=0), "trials_per_job", "must be an integer >= 1 or 'auto'"),
    ("trials-per-job-word", make(trials_per_job="many"), "trials_per_job", "must be an integer >= 1 or 'auto'"),
]


@pytest.fixture
def data_dir(tmp_path):
    for name, text in TABLES.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def problems_of(config, basedir) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(config, basedir)
    lines = str(info.value).splitlines()
    assert all(line.startswith("config error: ") for line in lines), lines
    assert len(lines) == len(info.value.problems)
    return lines


def test_cases_are_distinct():
    ids = [case[0] for case in CASES]
    assert len(ids) == len(set(ids))
    configs = [repr(case[1]) for case in CASES]
    assert len(configs) == len(set(configs))
    assert len(CASES) >= 30


@pytest.mark.parametrize(("config", "key", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_one_line_per_problem_naming_the_key(config, key, fragment, data_dir, monkeypatch, capsys):
    # Every case has exactly one problem: exactly one line, naming its key.
    lines = problems_of(config, data_dir)
    assert len(lines) == 1, lines
    (line,) = lines
    assert line.startswith(f"config error: {key}: "), line
    assert fragment in line, f"{fragment!r} not in {line!r}"
    # The same through the checker's command line (python -m snaketune.config FILE): status 1,
    # that one line on stderr and nothing else (no traceback, no second report of it).
    import yaml

    from snaketune.config.load import main

    monkeypatch.chdir(data_dir)
    (data_dir / "case.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    capsys.readouterr()
    assert main(["case.yaml"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines() == [line], (out, err)


@pytest.mark.parametrize(
    ("estimator", "data"),
    [
        # An integer target with a regressor is a regression target: the held-out split is not
        # stratified (each price occurs once) and cv.kind auto is k-fold.
        ("sklearn.linear_model.Ridge", {"csv": "prices.csv", "target": "price", "test_size": 0.2}),
        ("sklearn.neighbors.KNeighborsRegressor", {"csv": "prices.csv", "target": "price", "test_size": 0.2}),
        # Text labels with a classifier are classes.
        ("sklearn.neighbors.KNeighborsClassifier", {"csv": "text.csv", "target": "colour", "test_size": 0.2}),
    ],
)
def test_target_type_follows_the_estimator(estimator, data, data_dir):
    search = grid(alpha=[1.0]) if "Ridge" in estimator else grid(n_neighbors=[1, 3])
    config = make(data=data, estimator={"class": estimator}, search=search)
    assert load_config(config, data_dir)["data"]["target"] == data["target"]


def test_all_problems_reported_at_once(data_dir):
    # Schema problems (bogus, cv.n_splits) and semantic ones (class, scorer, output_dir) together.
    config = make(
        bogus=1,
        cv={"n_splits": 0},
        estimator={"class": "os.system"},
        scoring="nope",
        output_dir="/abs",
        search=grid(n_neighbors={"range": [3, 3]}),
    )
    lines = problems_of(config, data_dir)
    keys = [line.split(": ")[1] for line in lines]
    assert len(keys) == 6, lines  # one line per problem, none twice
    assert set(keys) == {
        "bogus",
        "cv.n_splits",
        "estimator.class",
        "scoring",
        "output_dir",
        "search.grid.n_neighbors.range",
    }, lines


def test_several_semantic_problems(data_dir):
    config = make(
        estimator={"class": "sklearn.neighbors.KNeighborsClassifier", "params": {"x": 1}},
        search=grid(y=[1], leaf_size={"range": [2, 1]}),
        scoring=["accuracy"],
        refit="f1",
        data={"csv": "text.csv", "target": "y"},
    )
    lines = problems_of(config, data_dir)
    assert len(lines) == 5, lines
    keys = {line.split(": ")[1] for line in lines}
    assert keys == {"estimator.params.x", "search.grid.y", "search.grid.leaf_size.range", "refit", "estimator"}


def test_allow_list_refuses_without_importing(data_dir, monkeypatch, capsys):
    # Importing the stdlib module `this` prints the Zen of Python: proof of an import.
    monkeypatch.delitem(sys.modules, "this", raising=False)
    calls = []
    monkeypatch.setattr("os.system", lambda *a, **k: calls.append(a))
    monkeypatch.setattr("subprocess.Popen", lambda *a, **k: calls.append(a))
    for path in ("this.Zen", "os.system", "subprocess.Popen", "sklearn_evil.Estimator"):
        lines = problems_of(make(estimator={"class": path}), data_dir)
        assert lines == [
            f"config error: estimator.class: {path!r} is outside the allowed modules "
            "['sklearn'] (extend them with the top-level key allowed_modules)"
        ]
    assert "this" not in sys.modules
    assert "sklearn_evil" not in sys.modules
    assert calls == []
    assert capsys.readouterr().out == ""


def test_allowed_modules_extends_the_list_explicitly(tmp_path, monkeypatch):
    package = tmp_path / "mylab"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from sklearn.neighbors import KNeighborsClassifier\n\nclass Knn(KNeighborsClassifier):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "mylab", raising=False)
    config = make(estimator={"class": "mylab.Knn"})
    lines = problems_of(config, tmp_path)
    assert lines == [
        "config error: estimator.class: 'mylab.Knn' is outside the allowed modules "
        "['sklearn'] (extend them with the top-level key allowed_modules)"
    ]
    assert "mylab" not in sys.modules
    config["allowed_modules"] = ["mylab"]
    assert load_config(config, tmp_path)["allowed_modules"] == ["mylab"]
    # A lookalike prefix is not covered by the extension.
    config["estimator"]["class"] = "mylabs.Knn"
    assert "outside the allowed modules" in problems_of(config, tmp_path)[0]


def test_allowed_os_module_never_runs_system(data_dir, monkeypatch):
    calls = []
    monkeypatch.setattr("os.system", lambda *a, **k: calls.append(a))
    config = make(estimator={"class": "os.system", "params": {"command": "touch pwned"}}, allowed_modules=["os"])
    lines = problems_of(config, data_dir)
    assert any("not a scikit-learn compatible estimator" in line for line in lines)
    assert calls == []
    assert not (data_dir / "pwned").exists()


# ---- YAML files ---------------------------------------------------------------------------------

YAML_CASES = [
    ("unclosed-bracket", "study: s\ndata:\n  loader: iris\n  x: [1, 2\nestimator: {}\n", "line 5"),
    ("bad-indentation", "study: s\ndata:\n  loader: iris\n    bad: 1\n", "line 4"),
    ("tab-indentation", "study: s\ndata:\n\tloader: iris\n", "line 3"),
    (
        "duplicate-key",
        "study: s\ncv: {n_splits: 3}\nseed: 1\ncv: {n_splits: 4}\n",
        "line 4, column 1: duplicate key 'cv' (first given at line 2)",
    ),
    ("python-tag", "study: s\nestimator: !!python/object/apply:os.system ['touch pwned']\n", "line 2"),
    ("top-level-list", "- study\n- s\n", "a config must be a YAML mapping"),
    ("empty-file", "", "a config must be a YAML mapping"),
]


@pytest.mark.parametrize(("text", "fragment"), [c[1:] for c in YAML_CASES], ids=[c[0] for c in YAML_CASES])
def test_yaml_problems_name_file_and_line(tmp_path, text, fragment):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_yaml(path)
    (line,) = str(info.value).splitlines()
    assert line.startswith(f"config error: {path}: ")
    assert fragment in line
    assert not (tmp_path / "pwned").exists()


def test_unreadable_files(tmp_path):
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00study")
    for name, fragment in (("missing.yaml", "cannot read config file"), ("binary.yaml", "not a UTF-8 text file")):
        with pytest.raises(ConfigError, match=re.escape(fragment)):
            read_yaml(tmp_path / name)


# ---- through real Snakemake ------------------------------------------------------------------

E2E = [
    ("unknown-top-level-key", make(bogus=1), "bogus"),
    ("os-system", make(estimator={"class": "os.system"}), "estimator.class"),
    ("n-splits-above-smallest-class", make(cv={"kind": "stratified", "n_splits": 60}), "cv.n_splits"),
    ("csv-missing-file", make(data={"csv": "nope.csv", "target": "y"}), "data.csv"),
    ("study-slash", make(study="a/b"), "study"),
    ("output-dir-absolute", make(output_dir="/tmp/snaketune-out"), "output_dir"),
    ("pipeline-param-without-step", make(estimator=PIPELINE, search=grid(n_neighbors=[1])), "search.grid.n_neighbors"),
    (
        "loguniform-low-zero",
        make(search={"random": {"n_iter": 2, "params": {"p": {"loguniform": [0, 2]}}}}),
        "search.random.params.p.loguniform",
    ),
    ("trials-per-job-zero", make(trials_per_job=0), "trials_per_job"),
]


def assert_stopped_before_jobs(study, proc, keys):
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "Traceback" not in output, output
    assert "rule trial" not in output and "localrule trial" not in output, output
    assert not (study.workdir / "results" / "s" / "trials").exists()
    lines = [line for line in output.splitlines() if line.startswith("config error: ")]
    # Each problem is reported once: no other line mentions a config error (e.g. Snakemake
    # repeating the message inside its own error report).
    assert [line for line in output.splitlines() if "config error" in line] == lines, output
    for key in keys:
        assert any(line.startswith(f"config error: {key}: ") for line in lines), output
    return lines


@pytest.mark.slow
@pytest.mark.parametrize(("config", "key"), [c[1:] for c in E2E], ids=[c[0] for c in E2E])
def test_snakemake_stops_with_one_line(make_study, config, key):
    study = make_study(config)
    for name, text in TABLES.items():
        (study.workdir / name).write_text(text)
    proc = study.snakemake(check=False, timeout=120)
    lines = assert_stopped_before_jobs(study, proc, [key])
    assert len(lines) == 1, lines


@pytest.mark.slow
def test_snakemake_reports_every_problem(make_study):
    config = make(bogus=1, estimator={"class": "subprocess.Popen"}, scoring="nope", output_dir="../out")
    study = make_study(config)
    proc = study.snakemake(check=False, timeout=120)
    lines = assert_stopped_before_jobs(study, proc, ["bogus", "estimator.class", "scoring", "output_dir"])
    assert len(lines) == 4, lines


@pytest.mark.slow
def test_snakemake_yaml_syntax_error_in_config_yaml(make_study):
    study = make_study(BASE)
    (study.workdir / "config.yaml").write_text("study: s\ndata:\n  loader: iris\n  x: [1, 2\nestimator: {}\n")
    proc = study.snakemake(check=False, timeout=120)
    (line,) = assert_stopped_before_jobs(study, proc, [])
    assert re.fullmatch(r"config error: \S*config\.yaml: YAML syntax error at line 5, column \d+: .+", line), line


@pytest.mark.slow
def test_snakemake_configfile_duplicate_key_names_file_and_line(make_study):
    # Snakemake's own loader accepts a repeated key silently; the Snakefile re-reads the file.
    study = make_study(BASE)
    (study.workdir / "bad.yaml").write_text("study: s\ndata: {loader: iris}\nstudy: t\n")
    # Snakemake reads --configfile relative to its own working directory, not --directory.
    proc = study.snakemake("--configfile", str(study.workdir / "bad.yaml"), check=False, timeout=120)
    (line,) = assert_stopped_before_jobs(study, proc, [])
    assert re.fullmatch(r"config error: \S*bad\.yaml: YAML syntax error at line 3, column 1: duplicate key .+", line)


@pytest.mark.slow
def test_snakemake_configfile_syntax_error(make_study):
    # Snakemake 9.27.1 reads --configfile before the Snakefile runs (ConfigSettings.__post_init__)
    # and reports a syntax error itself, without file or line; we can only check that it stops
    # cleanly. `python -m snaketune.config bad.yaml` names the line.
    study = make_study(BASE)
    (study.workdir / "bad.yaml").write_text("study: s\ndata:\n  loader: iris\n  x: [1, 2\n")
    proc = study.snakemake("--configfile", str(study.workdir / "bad.yaml"), check=False, timeout=120)
    assert_stopped_before_jobs(study, proc, [])
    assert "Config file is not valid JSON or YAML" in proc.stdout + proc.stderr


class _Payload:
    """Unpickling this writes a marker file: proof that a pickle's code ran."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize(
    "study_keys",
    [{"study": "bad name!"}, {"study": "s", "output_dir": "../elsewhere"}, {"study": "s", "output_dir": "/tmp"}],
    ids=["bad-study-name", "dotdot-output-dir", "absolute-output-dir"],
)
def test_a_pickle_is_never_loaded_unless_the_study_folder_is_valid_and_holds_it(tmp_path, study_keys):
    """Loading a pickle runs code: with an invalid study name or output folder, a pickle in the
    folder those would name (or anywhere else) is not loaded, and the config is refused."""
    import pickle

    marker = tmp_path / "payload-ran"
    out = tmp_path / study_keys.get("output_dir", "results") / study_keys["study"] / "inputs"
    out.mkdir(parents=True, exist_ok=True)
    evil = out / "estimator-x.pkl"
    evil.write_bytes(pickle.dumps(_Payload(str(marker))))
    config = dict(study_keys, data={"loader": "iris"}, estimator={"pickle": str(evil)}, search={"grid": {"C": [1]}})
    with pytest.raises(ConfigError):
        load_config(config, tmp_path)
    assert not marker.exists(), "the pickle was loaded"


def test_a_grid_may_search_parameters_named_like_strategy_settings():
    """A grid's spec is the space itself: ``max_iter`` there is LogisticRegression's parameter,
    not Hyperband's budget; ``sampler``/``min_resources`` are unknown parameters, said as such
    (they were read as Optuna's and halving's settings: a KeyError, a TypeError)."""
    base = {"study": "s", "data": {"loader": "iris"}, "estimator": {"class": "sklearn.linear_model.LogisticRegression"}}
    config = load_config(dict(base, search={"grid": {"max_iter": [50, 100], "C": [1.0]}}), ".")
    assert config["search"]["grid"]["max_iter"] == [50, 100]
    for name in ("sampler", "min_resources"):
        with pytest.raises(ConfigError) as err:
            load_config(dict(base, search={"grid": {name: [1, 2]}}), ".")
        assert f"the estimator has no parameter {name!r}" in str(err.value)
        assert "could not be checked" not in str(err.value)


def test_a_command_grid_over_max_iter_needs_no_budget(tmp_path):
    """A command study's grid over ``max_iter`` is a grid, not a budgeted search."""
    script = tmp_path / "train.py"
    script.write_text("print('{}')\n")
    config = {
        "study": "s",
        "command": {"run": "python train.py --max-iter {max_iter} --out {output}", "metrics": ["score"]},
        "search": {"grid": {"max_iter": [10, 20]}},
    }
    load_config(config, tmp_path)
