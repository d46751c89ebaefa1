"""Semantic checks of a schema-valid config against scikit-learn and the data source.

Each check returns problem lines ``<key>: <what is wrong>``; none raises.
"""

from __future__ import annotations

from pathlib import Path

from snaketune.estimator import EstimatorSpecError, build_estimator, estimator_classes, import_class


def semantic_problems(config: dict, basedir: Path, check_data: bool = True) -> list[str]:
    problems: list[str] = []
    problems += _study_problems(config)
    estimator = None
    est_problems = _estimator_problems(config)
    problems += est_problems
    if not est_problems:
        try:
            estimator = build_estimator(config["estimator"], config["allowed_modules"])
        except Exception as exc:  # noqa: BLE001 - constructor rejected fixed params
            problems.append(f"estimator.params: cannot build the estimator: {type(exc).__name__}: {exc}")
    problems += _search_problems(config, estimator)
    problems += _scoring_problems(config)
    if check_data:
        problems += _data_problems(config, basedir, estimator)
    return problems


def _study_problems(config: dict) -> list[str]:
    out = []
    output_dir = Path(config["output_dir"])
    if output_dir.is_absolute() or ".." in output_dir.parts:
        out.append(f"output_dir: {config['output_dir']!r} must be a relative path inside the project, without '..'")
    return out


def _estimator_problems(config: dict) -> list[str]:
    spec = config["estimator"]
    out = []
    where = ["estimator.class"] if "class" in spec else [f"estimator.steps[{i}].class" for i in range(len(spec["steps"]))]
    for key, path in zip(where, estimator_classes(spec)):
        try:
            import_class(path, config["allowed_modules"])
        except EstimatorSpecError as exc:
            out.append(f"{key}: {exc}")
    if "steps" in spec:
        names = [s["name"] for s in spec["steps"]]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            out.append(f"estimator.steps: duplicate step names {dupes}")
    if not out:
        # A fixed parameter the class does not accept.
        if "class" in spec:
            out += _unknown_params("estimator.params", spec["params"], spec["class"], config)
        else:
            for i, step in enumerate(spec["steps"]):
                out += _unknown_params(f"estimator.steps[{i}].params", step.get("params", {}), step["class"], config)
    return out


def _unknown_params(key: str, params: dict, path: str, config: dict) -> list[str]:
    cls = import_class(path, config["allowed_modules"])
    try:
        accepted = set(cls().get_params(deep=False))
    except Exception:  # noqa: BLE001 - estimators with required args: let construction report it
        return []
    return [
        f"{key}.{name}: {cls.__name__} has no parameter {name!r} (valid: {', '.join(sorted(accepted))})"
        for name in params
        if name not in accepted
    ]


def _spaces(config: dict) -> tuple[str, list[dict]]:
    (kind, spec), = config["search"].items()
    if kind == "grid":
        return "search.grid", spec if isinstance(spec, list) else [spec]
    params = spec["params"]
    return f"search.{kind}.params", params if isinstance(params, list) else [params]


def _search_problems(config: dict, estimator) -> list[str]:
    out = []
    prefix, spaces = _spaces(config)
    valid = set(estimator.get_params(deep=True)) if estimator is not None else None
    (kind, _), = config["search"].items()
    for i, space in enumerate(spaces):
        where = prefix if len(spaces) == 1 else f"{prefix}[{i}]"
        for name, values in space.items():
            key = f"{where}.{name}"
            if valid is not None and name not in valid:
                hint = ""
                if "steps" in config["estimator"] and "__" not in name:
                    hint = " (pipeline parameters are named <step>__<param>)"
                out.append(f"{key}: the estimator has no parameter {name!r}{hint}")
            if isinstance(values, dict):
                out += _value_spec_problems(key, values, kind)
    return out


def _value_spec_problems(key: str, spec: dict, kind: str) -> list[str]:
    (name, args), = spec.items()
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


def _scoring_problems(config: dict) -> list[str]:
    from sklearn.metrics import get_scorer_names

    known = set(get_scorer_names())
    out = [
        f"scoring: unknown scorer {name!r} (see sklearn.metrics.get_scorer_names())"
        for name in config["scoring"]
        if name not in known
    ]
    if config["refit"] not in config["scoring"]:
        out.append(f"refit: {config['refit']!r} is not one of scoring {config['scoring']}")
    return out


def _data_problems(config: dict, basedir: Path, estimator) -> list[str]:
    data = config["data"]
    out = []
    for key in ("csv", "parquet"):
        if key in data:
            path = basedir / data[key]
            if not path.is_file():
                return [f"data.{key}: file {data[key]!r} not found (relative to {basedir})"]
            try:
                from snaketune.data import read_table

                frame = read_table(data, basedir)
            except Exception as exc:  # noqa: BLE001
                return [f"data.{key}: cannot read {data[key]!r}: {type(exc).__name__}: {exc}"]
            if data["target"] not in frame.columns:
                return [f"data.target: column {data['target']!r} not in {data[key]!r} (columns: {', '.join(map(str, frame.columns))})"]
            features = frame.drop(columns=[data["target"]])
            bad = [str(c) for c in features.columns if features[c].dtype.kind not in "biuf"]
            if bad:
                out.append(f"data.{key}: non-numeric feature column(s) {', '.join(bad)}; encode them first")
            if features.isna().any().any():
                out.append(f"data.{key}: missing values in feature columns; impute or drop them first")
            if out:
                return out
    if "generator" in data:
        if data["generator"] != "make_circles" or not {"n_classes", "n_features", "n_informative"} & set(data["params"]):
            import inspect

            import sklearn.datasets

            accepted = set(inspect.signature(getattr(sklearn.datasets, data["generator"])).parameters)
            out += [
                f"data.params.{name}: {data['generator']} has no parameter {name!r}"
                for name in data["params"]
                if name not in accepted
            ]
        if out:
            return out
    try:
        from snaketune.data import is_classification, load_source

        _, y, _, _ = load_source(data, basedir)
    except Exception as exc:  # noqa: BLE001
        return [f"data: cannot load the data set: {type(exc).__name__}: {exc}"]
    out += _cv_problems(config, y, estimator, is_classification(y))
    return out


def _cv_problems(config: dict, y, estimator, classification: bool) -> list[str]:
    import numpy as np
    from sklearn.base import is_classifier

    cv = config["cv"]
    kind = cv["kind"]
    n = len(y)
    if config["data"].get("test_size"):
        n = int(n * (1 - config["data"]["test_size"]))
    if cv["n_splits"] > n:
        return [f"cv.n_splits: {cv['n_splits']} is more than the {n} training samples"]
    stratified = kind in ("stratified", "repeated_stratified", "stratified_shuffle_split") or (
        kind == "auto" and estimator is not None and is_classifier(estimator)
    )
    if stratified:
        if not classification:
            return [f"cv.kind: {kind!r} stratifies by class, but the target is continuous; use kfold"]
        _, counts = np.unique(y, return_counts=True)
        smallest = int(counts.min() * (1 - config["data"].get("test_size", 0)))
        if kind != "stratified_shuffle_split" and cv["n_splits"] > smallest:
            return [
                f"cv.n_splits: {cv['n_splits']} is more than the {smallest} members of the smallest "
                "class; stratified folds need at least n_splits per class"
            ]
    return []
