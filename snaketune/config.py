"""Load and validate a study config: JSON schema first, then checks against scikit-learn.

Every problem becomes one line ``config error: <key>: <what is wrong>``; all problems are collected
and raised together as :class:`ConfigError` before any job runs.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """One or more problems with a study config; ``str()`` gives one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(f"config error: {p}" for p in self.problems))


def read_yaml(path: str | Path) -> dict:
    """Read a YAML config; a syntax error names the file and line."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config file ({exc.strerror})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown line"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{path}: YAML syntax error at {where}: {problem}"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: a config must be a YAML mapping of keys to values"])
    return data


def load_schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _key(path) -> str:
    parts = [str(p) if not isinstance(p, int) else f"[{p}]" for p in path]
    return ".".join(parts).replace(".[", "[") or "<top level>"


def schema_problems(config: dict, schema: dict | None = None) -> list[str]:
    """One line per JSON-schema violation, naming the key."""
    import jsonschema

    schema = schema or load_schema()
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        key = _key(error.absolute_path)
        if error.validator == "additionalProperties":
            extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            message = f"unknown key(s) {', '.join(map(repr, extra))}; allowed: " + ", ".join(
                sorted(error.schema.get("properties", {}))
            )
            problems.append(f"{key}: {message}")
        elif error.validator == "oneOf" and error.context:
            # Report the most relevant alternative's complaint instead of the whole union.
            best = min(error.context, key=lambda e: (len(e.absolute_path) * -1, e.validator == "type"))
            sub = _key(list(error.absolute_path) + list(best.relative_path)) if best.relative_path else key
            problems.append(f"{sub}: {best.message}")
        else:
            problems.append(f"{key}: {error.message}")
    return list(dict.fromkeys(problems))


def fill_defaults(config: dict, schema: dict) -> dict:
    """Fill ``default`` values of the schema into ``config`` (objects only, recursively)."""

    def resolve(node):
        while "$ref" in node:
            target = schema
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    def fill(instance, node):
        node = resolve(node)
        if not isinstance(instance, dict):
            return
        for name, sub in node.get("properties", {}).items():
            sub = resolve(sub)
            if name not in instance and "default" in sub:
                instance[name] = copy.deepcopy(sub["default"])
            if name in instance and isinstance(instance[name], dict):
                fill(instance[name], sub)

    fill(config, schema)
    return config


def normalise(config: dict) -> dict:
    """Derived values: ``scoring`` as a list, ``refit`` defaulting to its first metric."""
    scoring = config.get("scoring")
    if scoring is None:
        scoring = ["r2"] if _looks_like_regressor(config) else ["accuracy"]
    config["scoring"] = [scoring] if isinstance(scoring, str) else list(scoring)
    config.setdefault("refit", config["scoring"][0])
    if isinstance(config.get("error_score"), str) and config["error_score"] == "nan":
        config["error_score"] = "nan"
    return config


def _looks_like_regressor(config: dict) -> bool:
    from snaketune.estimator import estimator_classes, import_class

    try:
        cls = import_class(estimator_classes(config["estimator"])[-1], config.get("allowed_modules", ()))
    except Exception:  # noqa: BLE001 - reported by semantic checks
        return False
    return getattr(cls, "_estimator_type", None) == "regressor" or "Regress" in cls.__name__


def load_config(config: dict, basedir: str | Path = ".", check_data: bool = True) -> dict:
    """Validate ``config`` and return a copy with defaults filled in.

    Parameters
    ----------
    config : dict
        The study config as read from YAML.
    basedir : path
        Folder that relative data paths are resolved against.
    check_data : bool
        Also run the checks that read the data source (CSV columns, class counts). The main
        Snakemake process does; jobs on cluster nodes, which re-parse the workflow, skip them.

    Raises
    ------
    ConfigError
        Listing every problem found, one per line.
    """
    config = copy.deepcopy(config)
    schema = load_schema()
    problems = schema_problems(config, schema)
    if problems:
        raise ConfigError(problems)
    fill_defaults(config, schema)
    normalise(config)
    from snaketune.checks import semantic_problems

    problems = semantic_problems(config, Path(basedir), check_data=check_data)
    if problems:
        raise ConfigError(problems)
    return config


def is_nan_error_score(value: Any) -> bool:
    return value == "nan" or (isinstance(value, float) and math.isnan(value))
