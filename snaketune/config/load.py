"""Load and validate a study config: JSON schema first, then checks against scikit-learn.

Every problem becomes one line ``config error: <key>: <what is wrong>``; all problems are collected
and raised together as :class:`ConfigError` before any job runs.

Config text is only ever parsed as data (``yaml.SafeLoader``): nothing in it is evaluated, and class
names are imported by :func:`snaketune.estimator.import_class` only from allowed modules.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import yaml

from snaketune.base.memo import memo_on_files

# Plain-words meaning of the schema's name patterns (jsonschema would only quote the regex).
_PATTERN_HINTS = {
    "^[A-Za-z0-9_-]+$": "use only letters, digits, '_' and '-' (it names a folder: no '/', '..' or spaces)",
    "^[A-Za-z_][A-Za-z0-9_.]*$": "must be a dotted Python path such as 'sklearn.svm.SVC'",
    "^[A-Za-z_][A-Za-z0-9_]*$": "must be a Python identifier (letters, digits, '_')",
}


class ConfigError(ValueError):
    """One or more problems with a study config; ``str()`` gives one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(f"config error: {p}" for p in self.problems))


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys, which ``safe_load`` silently overwrites."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    first_line = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            seen = key in first_line
        except TypeError:  # unhashable key: construct_mapping reports it with its position
            break
        if seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first given at line {first_line[key] + 1})", key_node.start_mark
            )
        first_line[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: str | Path) -> dict:
    """Read a YAML (or JSON) config as plain data.

    Parameters
    ----------
    path : path
        The config file.

    Returns
    -------
    dict
        The parsed mapping.

    Raises
    ------
    ConfigError
        When the file cannot be read, is not valid YAML (the message names the file and line),
        repeats a key, or is not a mapping.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config file ({exc.strerror or exc})"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not a UTF-8 text file"]) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown line"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{path}: YAML syntax error at {where}: {' '.join(problem.split())}"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: a config must be a YAML mapping of keys to values, not {type(data).__name__}"])
    return data


def load_schema() -> dict:
    """The JSON schema of a study config (``workflow/schemas/config.schema.yaml``), a fresh copy."""
    from snaketune.base.paths import schema_path

    path = schema_path()
    return copy.deepcopy(_parsed_schema(str(path)))


# libyaml's SafeLoader when PyYAML was built with it, else the pure-Python one.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@memo_on_files()
def _parsed_schema(path: str) -> dict:
    # Parsed once a process, with libyaml when PyYAML has it (pure-Python YAML: ~35 ms, 0.3-0.6 s
    # on a loaded machine); the warm engine's runs share it.
    text = Path(path).read_text()
    return yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - a SafeLoader


def _key(path) -> str:
    parts = [str(p) if not isinstance(p, int) else f"[{p}]" for p in path]
    return ".".join(parts).replace(".[", "[") or "<top level>"


def _resolve(node: dict, schema: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        target = schema
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _expected(node: dict, schema: dict) -> str:
    """A few words saying what a schema alternative accepts (for "must be A or B" messages)."""
    node = _resolve(node, schema)
    if "const" in node:
        return repr(node["const"])
    if "enum" in node:
        return "one of " + ", ".join(map(repr, node["enum"]))
    kind = node.get("type")
    if kind == "integer" and "minimum" in node:
        return f"an integer >= {node['minimum']}"
    if kind == "array":
        return "a non-empty list" if node.get("minItems") else "a list"
    if kind == "object":
        props = node.get("properties")
        if node.get("maxProperties") == 1 and props:
            return "a mapping with one key out of " + ", ".join(props)
        return "a non-empty mapping" if node.get("minProperties") else "a mapping"
    names = {"string": "a string", "number": "a number", "integer": "an integer", "boolean": "true or false"}
    if isinstance(kind, str):
        return names.get(kind, kind)
    return "valid"


def _did_you_mean(name, allowed: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(str(name), allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f" ({hint}allowed here: {', '.join(allowed)})"


def _describe(error, schema: dict) -> list[str]:
    """Problem lines for one jsonschema error (and, for ``oneOf``, the branch that fits best)."""
    path = list(error.absolute_path)
    key = _key(path)
    validator = error.validator
    if validator == "additionalProperties" and error.validator_value is False:
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed), key=str)
        return [f"{_key(path + [name])}: unknown key {name!r}{_did_you_mean(name, allowed)}" for name in extra]
    if validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        return [f"{_key(path + [name])}: required key {name!r} is missing" for name in missing]
    if validator == "maxProperties" and error.validator_value == 1 and error.schema.get("properties"):
        return [
            f"{key}: give exactly one of {', '.join(error.schema['properties'])} "
            f"(got {', '.join(map(str, error.instance))})"
        ]
    if validator == "pattern":
        hint = _PATTERN_HINTS.get(error.validator_value, f"must match {error.validator_value!r}")
        return [f"{key}: {error.instance!r} is not allowed: {hint}"]
    if validator == "oneOf":
        return _describe_one_of(error, schema)
    return [f"{key}: {error.message}"]


def _describe_one_of(error, schema: dict) -> list[str]:
    path = list(error.absolute_path)
    key = _key(path)
    branches = [_resolve(b, schema) for b in error.validator_value]
    if all(set(b) == {"required"} for b in branches) and isinstance(error.instance, dict):
        # Alternatives told apart by which keys are present: data sources, class vs steps.
        options = [" + ".join(b["required"]) for b in branches]
        present = set(error.instance)
        complete = [o for o, b in zip(options, branches, strict=True) if set(b["required"]) <= present]
        if len(complete) > 1:
            return [f"{key}: give only one of {', '.join(complete)}"]
        for b in branches:
            given = present & set(b["required"])
            if given:
                missing = [name for name in b["required"] if name not in present]
                return [f"{_key(path + [missing[0]])}: required with {_key(path + [sorted(given)[0]])}"]
        return [f"{key}: give one of {' | '.join(options)}"]
    by_branch: dict[int, list] = {}
    for sub in error.context:
        by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
    # The alternative meant is the one whose complaints are deeper inside the value, or else the
    # only one of the right type whose complaint is about its keys; its complaints are the useful
    # ones. Otherwise the value fits no alternative: say what each accepts.
    deeper = [errs for errs in by_branch.values() if any(sub.relative_path for sub in errs)]
    if len(deeper) == 1:
        return [line for sub in deeper[0] for line in _describe(sub, schema)]
    typed = [errs for errs in by_branch.values() if not any(sub.validator == "type" for sub in errs)]
    if len(typed) == 1 and any(sub.validator in ("additionalProperties", "required") for sub in typed[0]):
        return [line for sub in typed[0] for line in _describe(sub, schema)]
    if not error.context:  # valid under several alternatives
        return [f"{key}: {error.message}"]
    expected = " or ".join(dict.fromkeys(_expected(b, schema) for b in branches))
    return [f"{key}: {error.instance!r} must be {expected}"]


def schema_problems(config: dict, schema: dict | None = None) -> list[str]:
    """One line per JSON-schema violation, naming the key.

    Parameters
    ----------
    config : dict
        The study config as read from YAML.
    schema : dict, optional
        The schema; by default :func:`load_schema`.

    Returns
    -------
    list of str
        ``"<key>: <what is wrong>"`` lines, empty when the config is valid.
    """
    import jsonschema

    schema = schema or load_schema()
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        problems += _describe(error, schema)
    return list(dict.fromkeys(problems))


def fill_defaults(config: dict, schema: dict) -> dict:
    """Fill ``default`` values of the schema into ``config`` (objects only, recursively)."""

    def fill(instance, node):
        node = _resolve(node, schema)
        if not isinstance(instance, dict):
            return
        for name, sub in node.get("properties", {}).items():
            sub = _resolve(sub, schema)
            if name not in instance and "default" in sub:
                instance[name] = copy.deepcopy(sub["default"])
            if name in instance and isinstance(instance[name], dict):
                fill(instance[name], sub)

    fill(config, schema)
    return config


def normalise(config: dict) -> dict:
    """Derived values: ``scoring`` as a list, ``refit`` defaulting to its first metric."""
    if "command" in config:  # a command study scores its command's metrics (config/command.py)
        from snaketune.config.command import normalise_command

        return normalise_command(config)
    scoring = config.get("scoring")
    if scoring is None:
        scoring = ["r2"] if _looks_like_regressor(config) else ["accuracy"]
    config["scoring"] = [scoring] if isinstance(scoring, str) else list(scoring)
    if config["scoring"]:
        config.setdefault("refit", config["scoring"][0])
    if isinstance(config.get("error_score"), str) and config["error_score"] == "nan":
        config["error_score"] = "nan"
    return config


def _looks_like_regressor(config: dict) -> bool:
    from snaketune.base.estimator import estimator_classes, import_class

    allowed = config.get("allowed_modules", ())
    if not isinstance(allowed, list) or not all(isinstance(m, str) for m in allowed):
        allowed = ()  # invalid; reported by the schema
    try:
        cls = import_class(estimator_classes(config["estimator"])[-1], allowed)
    except Exception:  # noqa: BLE001 - reported by semantic checks
        return False
    from sklearn.base import is_regressor

    try:
        return bool(is_regressor(cls()))
    except Exception:  # noqa: BLE001 - required constructor arguments: guess from the name
        return "Regress" in cls.__name__


def _invalid_sections(config: dict, problems: list[str]) -> set[str]:
    """Top-level keys that a schema problem is about (their semantic checks are skipped)."""
    invalid = set()
    for problem in problems:
        head = problem.split(":", 1)[0]
        invalid.add(head.split(".", 1)[0].split("[", 1)[0])
    return invalid


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

    Returns
    -------
    dict
        A validated copy of ``config`` with schema defaults filled in, ``scoring`` as a list
        and ``refit`` set.

    Raises
    ------
    ConfigError
        Listing every problem found, one per line.
    """
    if not isinstance(config, dict):
        raise ConfigError([f"<top level>: a config must be a mapping of keys to values, not {type(config).__name__}"])
    config = copy.deepcopy(config)
    schema = load_schema()
    problems = schema_problems(config, schema)
    # Sections the schema accepted are still checked against scikit-learn, so one run reports
    # every problem; sections with schema problems are skipped (their checks assume valid input).
    invalid = _invalid_sections(config, problems)
    fill_defaults(config, schema)
    if "scoring" not in invalid:
        normalise(config)
    from snaketune.config.checks import semantic_problems

    problems += semantic_problems(config, Path(basedir), check_data=check_data, invalid=invalid)
    if problems:
        raise ConfigError(list(dict.fromkeys(problems)))
    return config


def main(argv: list[str] | None = None) -> int:
    """``python -m snaketune.config FILE...``: check config files without running Snakemake.

    Prints one ``config error:`` line per problem to stderr and returns 1 if there is any. Useful
    before ``snakemake --configfile FILE``, as Snakemake itself reports a YAML error in a
    ``--configfile`` without naming the file or line.
    """
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m snaketune.config CONFIG.yaml [...]", file=sys.stderr)
        return 2
    status = 0
    for name in argv:
        try:
            # Relative data paths resolve against the working directory, as under Snakemake.
            load_config(read_yaml(name), Path.cwd())
        except ConfigError as error:
            print(str(error), file=sys.stderr)
            status = 1
        else:
            print(f"{name}: ok")
    return status
