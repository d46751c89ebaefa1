"""Semantic checks of a schema-valid config against scikit-learn and the data source.

Each check returns problem lines ``<key>: <what is wrong>``; none raises. A check that fails
unexpectedly is reported as a problem of its section rather than as a traceback.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

from snaketune.base.estimator import (
    OWN_SCORE,
    EstimatorSpecError,
    accepts_param,
    build_estimator,
    class_entries,
    closest_param,
    fixed_params,
    import_class,
    load_pickled,
    load_scorer,
)
from snaketune.base.splits import GROUP_KINDS, STRATIFIED_KINDS
from snaketune.search.command import is_section
from snaketune.search.nested import nested_problems, nested_split_problems


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _did_you_mean(name: str, choices) -> str:
    close = _closest(name, choices)
    return f"; did you mean {close!r}?" if close else ""


def _guarded(key: str, check, *args) -> list[str]:
    # A bug or an unforeseen input in a check must still give one line, not a traceback.
    try:
        return check(*args)
    except Exception as exc:  # noqa: BLE001
        return [f"{key}: could not be checked: {_one_line(exc)}"]


def semantic_problems(
    config: dict, basedir: Path, check_data: bool = True, invalid: frozenset | set = frozenset()
) -> list[str]:
    """Problems a JSON schema cannot see: classes, parameter names and values, data, CV.

    Parameters
    ----------
    config : dict
        The config with schema defaults filled in.
    basedir : Path
        Folder that relative data paths are resolved against.
    check_data : bool
        Also load the data source to check columns, class counts and CV folds.
    invalid : set of str
        Top-level keys with schema problems; checks that depend on them are skipped.

    Returns
    -------
    list of str
        ``"<key>: <what is wrong>"`` lines.
    """

    def valid(*sections):
        return not set(sections) & set(invalid)

    problems: list[str] = []
    if valid("output_dir"):
        problems += _guarded("output_dir", _study_problems, config)
    for section in ("estimator", "search"):
        if valid(section) and section in config:
            problems += _nan_values(section, config[section])
    if "command" in config:  # your own training script: no estimator, data or CV to check
        from snaketune.config.command import command_problems

        if valid("search"):
            problems += _guarded("search", _search_problems, config, None)
        if valid("command"):
            problems += _guarded("command", command_problems, config, basedir, invalid)
        return problems
    if "folds" in config:
        problems.append("folds: only a command study takes folds; an estimator study sets cv.n_splits")
    estimator = None
    if valid("estimator") and "pickle" in config["estimator"]:
        # Loading a pickle runs code: nothing is loaded unless the study's folder is valid and the
        # pickle lies in its inputs (a bad study name must not let a pickle from elsewhere load).
        if not valid("output_dir", "study"):
            return problems + ["estimator.pickle: not loaded while output_dir or study is invalid"]
        if _study_problems(config):  # already reported above
            return problems
        outside = _pickle_outside_study(config, basedir)
        if outside:
            return problems + outside
        config = dict(config, estimator=dict(config["estimator"], pickle=str(_pickle_path(config, basedir))))
    if "scorers" in config:  # a search's callables: pickles too, vetted the same way
        if not valid("output_dir", "study", "scorers"):
            return problems + ["scorers: not loaded while output_dir, study or scorers is invalid"]
        if _study_problems(config):  # already reported above
            return problems
        problems += _stored_scorer_problems(config, basedir)
    if valid("estimator", "allowed_modules"):
        try:
            est_problems, spec = _estimator_problems(config)
        except Exception as exc:  # noqa: BLE001 - see _guarded
            est_problems, spec = [f"estimator: could not be checked: {_one_line(exc)}"], None
        problems += est_problems
        if spec is not None:
            estimator, build_problems = _build(config, spec)
            problems += build_problems
    if valid("search"):
        problems += _guarded("search", _search_problems, config, estimator)
    if valid("scoring", "refit"):
        problems += _guarded("scoring", _scoring_problems, config, estimator)
    if valid("nested", "search"):
        problems += _guarded("nested", nested_problems, config)
    if check_data and valid("data"):
        problems += _guarded("data", _data_problems, config, basedir, estimator, valid("cv"))
    return problems


def _study_inputs(config: dict, basedir: Path) -> Path:
    """Where ``snaketune.GridSearchCV.fit`` stores a study's pickles: the only ones ever loaded."""
    return (basedir / config["output_dir"] / config["study"] / "inputs").resolve()


def _pickle_outside_study(config: dict, basedir: Path) -> list[str]:
    """A pickle runs code when loaded: only one the study's own search stored (under
    ``<output_dir>/<study>/inputs/``, where ``snaketune.GridSearchCV.fit`` writes) is loaded."""
    inputs = _study_inputs(config, basedir)
    path = _pickle_path(config, basedir)
    if path.parent != inputs:
        return [
            f"estimator.pickle: {config['estimator']['pickle']!r} is not in {inputs} (only an estimator "
            "a snaketune search stored for this study is loaded: loading a pickle runs its code)"
        ]
    return []


def _stored_scorer_problems(config: dict, basedir: Path) -> list[str]:
    """The ``scorers`` a search stored: each in the study's inputs (else none is loaded), a
    callable, under a name no scikit-learn scorer has."""
    from sklearn.metrics import get_scorer_names

    inputs = _study_inputs(config, basedir)
    outside = [
        f"scorers.{name}: {path!r} is not in {inputs} (only a scorer a snaketune search stored for this "
        "study is loaded: loading a pickle runs its code)"
        for name, path in config["scorers"].items()
        if (basedir / path).resolve().parent != inputs
    ]
    if outside:
        return outside
    taken = {*get_scorer_names(), OWN_SCORE}
    out = []
    for name, path in config["scorers"].items():
        if name in taken:
            out.append(f"scorers.{name}: {name!r} names a scikit-learn scorer; a stored scorer needs a name of its own")
        try:
            load_scorer(str((basedir / path).resolve()))
        except Exception as exc:  # noqa: BLE001 - a missing file, or a function this Python cannot import
            out.append(f"scorers.{name}: cannot load {path!r}: {_one_line(exc)}")
    return out


def _pickle_path(config: dict, basedir: Path) -> Path:
    """The pickle the check vets is the one loaded: resolved against the config's folder."""
    return (basedir / config["estimator"]["pickle"]).resolve()


def _study_problems(config: dict) -> list[str]:
    output_dir = Path(config["output_dir"])
    if output_dir.is_absolute() or ".." in output_dir.parts:
        return [f"output_dir: {config['output_dir']!r} must be a relative path inside the project, without '..'"]
    return []


def _class_keys(spec: dict) -> list[str]:
    return [key for key, _ in class_entries(spec)]


def _name_problems(where: str, names: list[str], what: str) -> list[str]:
    out = []
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        out.append(f"{where}: duplicate {what} names {', '.join(map(repr, dupes))}")
    for i, name in enumerate(names):
        if "__" in name:
            out.append(f"{where}[{i}].name: {name!r} must not contain '__' (it separates <step>__<param>)")
    return out


def _no_transform(key: str, cls: type) -> list[str]:
    if hasattr(cls, "transform") or hasattr(cls, "fit_transform"):
        return []
    return [f"{key}: {cls.__name__} has no transform, so it can only be the last step"]


def _estimator_problems(config: dict) -> tuple[list[str], dict | None]:
    """Problems with the estimator spec, and the spec without unknown fixed parameters.

    The cleaned spec (``None`` when a class is unusable) still lets the searched parameters be
    checked, so one run reports both kinds of problem.
    """
    spec = config["estimator"]
    if "pickle" in spec:
        try:
            load_pickled(spec["pickle"])
        except Exception as exc:  # noqa: BLE001 - a missing file, or a class this Python cannot import
            return [f"estimator.pickle: cannot load {spec['pickle']!r}: {_one_line(exc)}"], None
        return [], spec
    allowed = config["allowed_modules"]
    out = []
    classes = {}
    # import_class checks the allow-list before importing anything, so os.system is never touched.
    for key, path in class_entries(spec):
        try:
            classes[key] = import_class(path, allowed)
        except EstimatorSpecError as exc:
            out.append(f"{key}: {exc}")
    steps = spec.get("steps", [])
    if steps:
        out += _name_problems("estimator.steps", [s["name"] for s in steps], "step")
        for i, step in enumerate(steps):
            groups = step.get("transformers", [])
            where = f"estimator.steps[{i}].transformers"
            out += _name_problems(where, [g["name"] for g in groups], "column group")
            for j, group in enumerate(groups):
                out += _name_problems(f"{where}[{j}].steps", [s["name"] for s in group["steps"]], "step")
        if not out:
            # Pipeline checks this only at fit time, in every trial. In a column group every
            # step transforms (the group's output is part of the ColumnTransformer's).
            for i, step in enumerate(steps[:-1]):
                if "class" in step:
                    key = f"estimator.steps[{i}].class"
                    out += _no_transform(key, classes[key])
            out += [line for key, cls in classes.items() if ".transformers[" in key for line in _no_transform(key, cls)]
    if out:
        return out, None
    clean = copy.deepcopy(spec)
    if "class" in spec:
        out += _unknown_params("estimator.params", clean["params"], classes["estimator.class"])
    else:
        from sklearn.compose import ColumnTransformer

        for i, step in enumerate(clean["steps"]):
            where = f"estimator.steps[{i}]"
            cls = classes[f"{where}.class"] if "class" in step else ColumnTransformer
            out += _unknown_params(f"{where}.params", step.setdefault("params", {}), cls)
            for j, group in enumerate(step.get("transformers", [])):
                for k, sub in enumerate(group["steps"]):
                    key = f"{where}.transformers[{j}].steps[{k}]"
                    out += _unknown_params(f"{key}.params", sub.setdefault("params", {}), classes[f"{key}.class"])
    return out, clean


def _default_instance(cls: type):
    """``cls()``, or ``None`` when the class needs arguments (or its constructor fails)."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cls()
    except Exception:  # noqa: BLE001
        return None


def _param_names(cls: type) -> set[str] | None:
    """Constructor parameters of an estimator class, without instantiating it."""
    import inspect

    if hasattr(cls, "_get_param_names"):
        try:
            return set(cls._get_param_names())
        except Exception:  # noqa: BLE001 - e.g. *args in __init__: cannot tell
            return None
    try:
        params = inspect.signature(cls.__init__).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.name != "self" and p.kind is not p.VAR_POSITIONAL}


def _unknown_params(key: str, params: dict, cls: type) -> list[str]:
    """Problems for fixed parameters ``cls`` does not accept; those are removed from ``params``.

    A parameter is accepted when a default instance's ``get_params()`` reports it, or when its
    ``set_params()`` takes it (XGBoost, LightGBM: see :func:`accepts_param`), as for searched ones.
    A class that cannot be built without arguments is checked by its constructor's signature.
    """
    instance = _default_instance(cls)
    if instance is not None:
        accepted = set(instance.get_params(deep=False))
        unknown = [n for n in params if n not in accepted and ("__" in n or not accepts_param(instance, n))]
    else:
        accepted = _param_names(cls)
        if accepted is None:
            return []
        unknown = [name for name in params if name not in accepted]
    out = []
    for name in unknown:
        del params[name]
        close = closest_param(instance, name) if instance is not None else _closest(name, accepted)
        hint = f"did you mean {close!r}?" if close else f"valid: {', '.join(sorted(accepted))}"
        out.append(f"{key}.{name}: {cls.__name__} has no parameter {name!r} ({hint})")
    return out


def _closest(name: str, choices) -> str | None:
    import difflib

    close = difflib.get_close_matches(name, sorted(choices), n=1)
    return close[0] if close else None


def _build(config: dict, spec: dict):
    """The estimator with its fixed parameters, and problems with those parameters' values."""
    try:
        estimator = build_estimator(spec, config["allowed_modules"])
    except Exception as exc:  # noqa: BLE001 - the constructor rejected the spec
        key = "estimator.params" if "class" in spec else "estimator.steps"
        return None, [f"{key}: cannot build the estimator: {_one_line(exc)}"]
    out = []
    for key, name, value in fixed_params(spec):
        out += _guarded(key, _invalid_values, key, estimator, name, [value])
    return estimator, out


def _invalid_values(key: str, estimator, name: str, values) -> list[str]:
    """The first value scikit-learn's own parameter validation would reject at fit time."""
    try:
        from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints
    except ImportError:  # private API moved: the trials will report bad values
        return []
    owner_name, _, param = name.rpartition("__")
    owner = estimator.get_params(deep=True).get(owner_name) if owner_name else estimator
    constraints = getattr(owner, "_parameter_constraints", None) or {}
    if param not in constraints:
        return []
    for value in values:
        try:
            validate_parameter_constraints({param: constraints[param]}, {param: value}, type(owner).__name__)
        except InvalidParameterError as exc:
            return [f"{key}: {' '.join(str(exc).split())}"]
    return []


def _nan_values(key: str, value) -> list[str]:
    """NaN as a parameter value: trial specs travel as JSON, where NaN would arrive as None (and
    name the same trials as None), so it is refused rather than run as something else."""
    if isinstance(value, float) and math.isnan(value):
        return [f"{key}: NaN cannot be a parameter value yet (a trial would receive None); leave it to the default"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _nan_values(f"{key}.{k}", v)]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in _nan_values(f"{key}[{i}]", v)]
    return []


def _spaces(config: dict) -> tuple[str, list[dict]]:
    ((kind, spec),) = config["search"].items()
    if kind == "grid":
        return "search.grid", spec if isinstance(spec, list) else [spec]
    params = spec["params"]
    return f"search.{kind}.params", params if isinstance(params, list) else [params]


def _search_problems(config: dict, estimator) -> list[str]:
    out = []
    prefix, spaces = _spaces(config)
    ((kind, search),) = config["search"].items()
    for i, space in enumerate(spaces):
        where = prefix if len(spaces) == 1 else f"{prefix}[{i}]"
        for name, values in space.items():
            key = f"{where}.{name}"
            spec_problems = _value_spec_problems(key, values, kind) if isinstance(values, dict) else []
            out += spec_problems
            if estimator is None:
                continue
            if not accepts_param(estimator, name):
                out.append(f"{key}: the estimator has no parameter {name!r}{_param_hint(config, estimator, name)}")
            elif not spec_problems and (
                isinstance(values, list) or next(iter(values)) in ("range", "linspace", "logspace")
            ):
                from snaketune.search.space import expand_values

                out += _guarded(key, _invalid_values, key, estimator, name, expand_values(values))
    # A section's own settings sit beside its params; a grid's spec is the space itself, where
    # keys such as max_iter, sampler or min_resources are parameters to search.
    settings = search if is_section(search) else {}
    resource = settings.get("resource")
    if resource == "partial_fit" and estimator is not None and not hasattr(estimator, "partial_fit"):
        out.append(f"search.{kind}.resource: {type(estimator).__name__} has no partial_fit; use resource: n_samples")
    # The strategies' own keys, checked by key, not by kind (this layer is below snaketune.strategies).
    if "sampler" in settings:  # Optuna's samplers: its distributions
        from snaketune.search.optuna_space import sampler_problem, space_problems

        out += space_problems(f"search.{kind}.params", search["params"])
        out += [p for p in [sampler_problem(f"search.{kind}.sampler", search["sampler"])] if p]
    if settings.get("min_resources", 1) > settings.get("max_resources", float("inf")):
        out.append(
            f"search.{kind}.min_resources: {search['min_resources']} is more than "
            f"max_resources ({search['max_resources']})"
        )
    return out


def _param_hint(config: dict, estimator, name: str) -> str:
    close = closest_param(estimator, name)
    if "steps" not in config["estimator"]:
        if close:
            return f" (did you mean {close!r}?)"
        return f" (valid: {', '.join(sorted(estimator.get_params(deep=False)))})"
    steps = [s["name"] for s in config["estimator"]["steps"]]
    step, sep, param = name.partition("__")
    if not sep:
        return f" (pipeline parameters are named <step>__<param>, steps: {', '.join(steps)})"
    if step not in steps:
        return f" (no step {step!r}; steps: {', '.join(steps)})"
    if "__" in param:
        return f" (did you mean {close!r}?)" if close else ""
    owner = estimator.named_steps[step]
    return f" ({type(owner).__name__} has no {param!r}" + (f"; did you mean {close!r}?)" if close else ")")


def _value_spec_problems(key: str, spec: dict, kind: str) -> list[str]:
    ((name, args),) = spec.items()
    out = []
    if name in ("loguniform", "uniform", "randint"):
        if kind == "grid":
            return [f"{key}: a distribution ({name}) needs a random search; a grid needs a list of values"]
        low, high = args
        if low >= high:
            out.append(f"{key}.{name}: low ({low}) must be below high ({high})")
        if name == "loguniform" and low <= 0:
            out.append(f"{key}.{name}: low must be > 0 for a log-uniform distribution (got {low})")
        if name == "randint" and (int(low) != low or int(high) != high):
            out.append(f"{key}.{name}: bounds must be integers")
    elif name == "range":
        if (len(args) == 3 and args[2] == 0) or len(range(*args)) == 0:
            out.append(f"{key}.range: {args} gives no values")
    elif name in ("linspace", "logspace"):
        if args[2] < 1 or int(args[2]) != args[2]:
            out.append(f"{key}.{name}: num (third value) must be a positive integer")
    return out


def _scoring_problems(config: dict, estimator) -> list[str]:
    from sklearn.metrics import get_scorer_names

    known = set(get_scorer_names())
    stored = config.get("scorers") if isinstance(config.get("scorers"), dict) else {}
    out = [
        f"scoring: unknown scorer {name!r}{_did_you_mean(name, known)} (see sklearn.metrics.get_scorer_names())"
        for name in config["scoring"]
        if name not in known and name != OWN_SCORE and name not in stored
    ]
    out += [f"scorers.{name}: not in scoring {config['scoring']}" for name in stored if name not in config["scoring"]]
    if config["refit"] not in config["scoring"]:
        out.append(f"refit: {config['refit']!r} is not one of scoring {config['scoring']}")
    if estimator is not None:
        out += [f"scoring: {p}" for name in config["scoring"] if name in known for p in _scorer_misfit(name, estimator)]
        if OWN_SCORE in config["scoring"] and not hasattr(estimator, "score"):
            out.append(
                f"scoring: {OWN_SCORE!r} is the estimator's own score method: {type(estimator).__name__} has none"
            )
    return out


def _scorer_misfit(name: str, estimator) -> list[str]:
    """Why scorer ``name`` would fail on every trial of ``estimator`` (empty if it fits)."""
    from sklearn.base import is_regressor
    from sklearn.metrics import get_scorer

    scorer = get_scorer(name)
    methods = getattr(scorer, "_response_method", "predict")
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    if not any(hasattr(estimator, m) for m in methods):
        return [f"{name!r} needs {' or '.join(methods)}, which {type(estimator).__name__} does not have"]
    module = getattr(getattr(scorer, "_score_func", None), "__module__", "") or ""
    if is_regressor(estimator) and module.endswith(("_classification", "_ranking")):
        return [f"{name!r} is a classification metric but {type(estimator).__name__} is a regressor"]
    return []


def _source_class_key(config: dict) -> str:
    return (_class_keys(config["estimator"]) or ["estimator.pickle"])[-1]


def _data_problems(config: dict, basedir: Path, estimator, check_cv: bool = True) -> list[str]:
    data = config["data"]
    for key in ("csv", "parquet"):
        if key in data:
            out = _table_problems(data, key, basedir)
            if out:
                return out
    if "generator" in data:
        import inspect

        import sklearn.datasets

        from snaketune.base.data import make_circles

        generate = getattr(sklearn.datasets, data["generator"])
        accepted = set(inspect.signature(generate).parameters)
        if data["generator"] == "make_circles":
            accepted |= set(inspect.signature(make_circles).parameters)
        out = [
            f"data.params.{name}: {data['generator']} has no parameter {name!r} (valid: {', '.join(sorted(accepted))})"
            for name in data["params"]
            if name not in accepted
        ]
        if out:
            return out
    elif data.get("params"):
        return ["data.params: only used with data.generator"]
    unused = [f"data.{key}: only used with data.csv or data.parquet" for key in ("features", "groups") if key in data]
    if unused and not ("csv" in data or "parquet" in data):
        return unused
    try:
        from snaketune.base.data import is_classification, load_dataset

        source = load_dataset(data, basedir)
    except Exception as exc:  # noqa: BLE001 - e.g. a generator rejecting its arguments
        key = "data.params" if "generator" in data else "data"
        return [f"{key}: cannot load the data set: {_one_line(exc)}"]
    y = source.y
    from snaketune.base.estimator import estimator_task

    # The target's type follows the estimator (a regressor's integer target is not classes).
    task = estimator_task(estimator) if estimator is not None else None
    classification = is_classification(y, task)
    out = (
        _group_column_problems(config["estimator"], source.feature_names) if "csv" in data or "parquet" in data else []
    )
    if estimator is not None and not out:
        from snaketune.config.columns import unprepared_columns

        out += unprepared_columns(estimator, source.X, y, classification)
    if not check_cv:
        return out
    problems = out + _cv_problems(config, y, estimator, classification, source)
    return problems or _guarded("nested", nested_split_problems, config, y, task == "classification")


def _table_problems(data: dict, key: str, basedir: Path) -> list[str]:
    path = basedir / data[key]
    if not path.is_file():
        return [f"data.{key}: file {data[key]!r} not found (relative to {basedir})"]
    try:
        from snaketune.base.data import read_table

        frame = read_table(data, basedir)
    except Exception as exc:  # noqa: BLE001
        return [f"data.{key}: cannot read {data[key]!r}: {_one_line(exc)}"]
    target = data["target"]
    if target not in frame.columns:
        return [f"data.target: column {target!r} not in {data[key]!r} (columns: {', '.join(map(str, frame.columns))})"]
    out = []
    columns = list(frame.columns)
    for name in data.get("features", []):
        if name not in columns:
            out.append(f"data.features: column {name!r} not in {data[key]!r}{_did_you_mean(name, columns)}")
        elif name == target:
            out.append(f"data.features: {name!r} is the target column")
    groups = data.get("groups")
    if groups is not None:
        if groups not in columns:
            out.append(f"data.groups: column {groups!r} not in {data[key]!r}{_did_you_mean(groups, columns)}")
        elif groups == target:
            out.append(f"data.groups: {groups!r} is the target column")
        elif frame[groups].isna().any():
            out.append(f"data.groups: column {groups!r} has missing values; every row needs a group")
    if out:
        return out
    from snaketune.base.data import feature_columns

    if not feature_columns(data, columns):
        out.append(f"data.{key}: no feature columns besides the target {target!r}")
    if frame[target].isna().any():
        out.append(f"data.target: column {target!r} has missing values")
    if len(frame) == 0:
        out.append(f"data.{key}: {data[key]!r} has no rows")
    return out


def _cv_problems(config: dict, y, estimator, classification: bool, source=None) -> list[str]:
    import numpy as np
    from sklearn.base import is_classifier, is_regressor
    from sklearn.utils.multiclass import type_of_target

    cv = config["cv"]
    kind = cv["kind"]
    test_size = config["data"].get("test_size") or 0
    n = int(len(y) * (1 - test_size))
    classifier = estimator is not None and is_classifier(estimator)
    if classifier and type_of_target(y) not in ("binary", "multiclass"):
        target = f"the target {config['data']['target']!r}" if "target" in config["data"] else "the target"
        return [
            f"{_source_class_key(config)}: {type(estimator).__name__} is a classifier, but {target} is "
            f"{type_of_target(y)} (type_of_target); use a regressor"
        ]
    if kind == "folds":
        return _fold_file_problems(cv, len(y))
    if source is not None and (kind in GROUP_KINDS or kind == "time_series" or config["data"].get("groups")):
        return _ordered_cv_problems(config, source, classification)
    if kind in STRATIFIED_KINDS and estimator is not None and is_regressor(estimator):
        return [f"cv.kind: {kind!r} stratifies by class, but {type(estimator).__name__} is a regressor; use kfold"]
    if kind not in ("shuffle_split", "stratified_shuffle_split") and cv["n_splits"] > n:
        return [f"cv.n_splits: {cv['n_splits']} is more than the {n} training samples"]
    counts = np.unique(y, return_counts=True)[1] if classification else None
    if test_size and classification and counts.min() < 2:
        # snaketune.data.prepare stratifies the held-out split, which needs 2 members per class.
        why = f"{type(estimator).__name__} is a classifier" if classifier else "the target looks like classes"
        return [
            f"data.test_size: the held-out split is stratified by class ({why}), but a class has only "
            "1 member; use test_size: 0"
        ]
    stratified = kind in STRATIFIED_KINDS or (kind == "auto" and classifier)
    if not stratified:
        return []
    if not classification:
        return [f"cv.kind: {kind!r} stratifies by class, but the target is continuous; use kfold"]
    smallest = int(counts.min() * (1 - test_size))
    if kind != "stratified_shuffle_split" and cv["n_splits"] > smallest:
        return [
            f"cv.n_splits: {cv['n_splits']} is more than the {smallest} members of the smallest "
            "class; stratified folds need at least n_splits per class"
        ]
    if kind == "stratified_shuffle_split" and smallest < 2:
        return [f"cv.kind: 'stratified_shuffle_split' needs at least 2 members per class (smallest has {smallest})"]
    return []


def _fold_file_problems(cv: dict, n: int) -> list[str]:
    """Explicit folds: a readable file whose indices are rows of the data."""
    from snaketune.base.splits import load_splits

    if "file" not in cv:
        return ["cv.file: cv.kind 'folds' needs the file of its splits"]
    try:
        splits = load_splits(cv["file"])
    except Exception as exc:  # noqa: BLE001
        return [f"cv.file: cannot read {cv['file']!r}: {_one_line(exc)}"]
    for k, (train, test) in enumerate(splits):
        for side, rows in (("train", train), ("test", test)):
            if len(rows) and (rows.min() < 0 or rows.max() >= n):
                return [f"cv.file: split {k}'s {side} rows are outside the {n} rows of the data"]
    return [] if splits else [f"cv.file: {cv['file']!r} holds no split"]


def _ordered_cv_problems(config: dict, source, classification: bool) -> list[str]:
    """Group-aware and time-series CV: groups where needed, then the splitter on the training rows."""
    import numpy as np

    from snaketune.base.data import holdout
    from snaketune.base.splits import compute_splits, ordered

    cv, data = config["cv"], config["data"]
    kind = cv["kind"]
    if kind in GROUP_KINDS and not data.get("groups"):
        return [f"cv.kind: {kind!r} splits by groups; name the column that holds each row's group in data.groups"]
    if kind not in GROUP_KINDS and data.get("groups"):
        return [
            f"data.groups: cv.kind {kind!r} ignores groups; use group_kfold, stratified_group_kfold or "
            "leave_one_group_out (or drop data.groups)"
        ]
    if kind == "time_series" and isinstance(cv.get("test_size"), float):
        return [f"cv.test_size: time_series takes a number of rows per test fold (an integer), not {cv['test_size']}"]
    if kind not in ("time_series", "shuffle_split", "stratified_shuffle_split") and "test_size" in cv:
        return [f"cv.test_size: only used with shuffle_split, stratified_shuffle_split and time_series, not {kind!r}"]
    train, _ = holdout(source, data, classification, ordered(cv))
    groups = source.groups[train] if source.groups is not None else None
    n_groups = len(np.unique(groups)) if groups is not None else 0
    if kind in ("group_kfold", "stratified_group_kfold") and cv["n_splits"] > n_groups:
        return [f"cv.n_splits: {cv['n_splits']} is more than the {n_groups} groups of the training rows"]
    if kind == "leave_one_group_out" and n_groups < 2:
        return [f"cv.kind: leave_one_group_out needs at least 2 groups in the training rows (found {n_groups})"]
    from sklearn.base import is_classifier

    estimator = _estimator_or_none(config)
    try:
        compute_splits(cv, source.y[train], bool(estimator is not None and is_classifier(estimator)), groups)
    except ValueError as exc:
        return [f"cv: cannot split the {len(train)} training rows: {_one_line(exc)}"]
    return []


def _estimator_or_none(config: dict):
    try:
        return build_estimator(config["estimator"], config["allowed_modules"])
    except Exception:  # noqa: BLE001 - reported by the estimator checks
        return None


def _group_column_problems(spec: dict, features: list[str]) -> list[str]:
    """Column groups that name a column the estimator will not see."""
    out = []
    for i, step in enumerate(spec.get("steps", [])):
        for j, group in enumerate(step.get("transformers", [])):
            if isinstance(group["columns"], dict):
                continue
            key = f"estimator.steps[{i}].transformers[{j}].columns"
            out += [
                f"{key}: column {name!r} is not a feature{_did_you_mean(name, features)} (features: {', '.join(features)})"
                for name in group["columns"]
                if name not in features
            ]
    return out
