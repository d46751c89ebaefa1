"""Checks of a command study's config (``command:``): placeholders, input files, metric names.

Each check returns ``<key>: <what is wrong>`` lines; none raises (see :mod:`snaketune.config.checks`).
"""

from __future__ import annotations

import difflib
from pathlib import Path

from snaketune.search.command import ADAPTIVE, FIXED, RESERVED, budgeted, placeholders, scoring
from snaketune.search.space import search_spaces

# Sections of an estimator study that a command study does not take (cv is defaulted by the
# schema, so it cannot be told apart from absent; it is ignored).
NOT_FOR_COMMANDS = ("data", "estimator", "allowed_modules", "return_train_score")


def normalise_command(config: dict) -> dict:
    """``scoring`` from ``command.metrics`` (a loss as ``neg_<metric>``), ``refit`` named the same
    way (``refit: val_loss`` of a loss means ``neg_val_loss``), ``folds`` defaulting to 1."""
    command = config.get("command")
    if not isinstance(command, dict) or not isinstance(command.get("metrics"), list):
        return config
    try:
        names = scoring(command)
    except (TypeError, AttributeError):
        return config  # the schema reports it
    config.setdefault("scoring", names)
    config.setdefault("folds", 1)
    refit = config.setdefault("refit", names[0] if names else None)
    gib = command.get("greater_is_better") or {}
    if isinstance(refit, str) and refit in command["metrics"] and gib.get(refit, True) is False:
        config["refit"] = f"neg_{refit}"
    return config


def _search_names(config: dict) -> tuple[str | None, list[str], bool]:
    ((kind, spec),) = config["search"].items()
    names = (name for space in search_spaces(config["search"]) for name in space)
    return kind, list(dict.fromkeys(names)), budgeted(spec)


def _hint(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"did you mean {{{close[0]}}}? " if close else ""


def command_problems(config: dict, basedir: Path, invalid=frozenset()) -> list[str]:
    """Everything about ``command:`` a schema cannot see."""
    command = config["command"]
    problems = [
        f"{key}: a command study takes no {key} (the command reads its own data); remove it"
        for key in NOT_FOR_COMMANDS
        if key in config and not (key in ("allowed_modules", "return_train_score") and not config[key])
    ]
    kind, names, on_budget = (None, [], False)
    if "search" not in invalid:
        kind, names, on_budget = _search_names(config)
        for name in names:
            if name in RESERVED:
                problems.append(
                    f"search: parameter name {name!r} is reserved for the {{{name}}} placeholder; rename it"
                )
    known = set(names) | set(FIXED) | (set(ADAPTIVE) if on_budget else set())
    templates = [("command.run", command["run"])]
    if isinstance(command.get("refit"), str):
        templates.append(("command.refit", command["refit"]))
    used: set[str] = set()
    for key, template in templates:
        try:
            found = placeholders(template)
        except ValueError as exc:
            problems.append(f"{key}: {exc} (write {{{{ and }}}} for literal braces)")
            continue
        used |= set(found)
        for name in dict.fromkeys(found):
            if name in ADAPTIVE and not on_budget and kind is not None:
                problems.append(f"{key}: {{{name}}} needs a budgeted search (hyperband, successive_halving or bohb)")
            elif name not in known and name not in ADAPTIVE:
                problems.append(
                    f"{key}: unknown placeholder {{{name}}} ({_hint(name, known)}known: "
                    f"{', '.join('{' + k + '}' for k in sorted(known))})"
                )
        if "output" not in found:
            problems.append(f"{key}: {{output}} is missing: the command must write its metrics JSON there")
    if on_budget and "budget" not in placeholders_or_empty(command["run"]):
        problems.append(f"command.run: a {kind} search needs {{budget}} (the units, e.g. epochs, to train to)")
    if "params_json" not in used:
        for name in names:
            if name not in used and name not in RESERVED:
                problems.append(
                    f"search: parameter {name!r} reaches the command neither as {{{name}}} nor through {{params_json}}"
                )
    for i, path in enumerate(command.get("inputs", [])):
        if not (Path(basedir) / path).is_file():
            problems.append(f"command.inputs[{i}]: file {path!r} not found (relative to {Path(basedir).resolve()})")
    if command.get("conda") and not (Path(basedir) / command["conda"]).is_file():
        problems.append(f"command.conda: env file {command['conda']!r} not found")
    metrics = command["metrics"]
    for name in command.get("greater_is_better") or {}:
        if name not in metrics:
            close = difflib.get_close_matches(name, metrics, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append(
                f"command.greater_is_better.{name}: not one of command.metrics ({hint}metrics: {', '.join(metrics)})"
            )
    names_scored = scoring(command)
    if config.get("scoring") != names_scored:
        problems.append(f"scoring: a command study scores command.metrics ({', '.join(names_scored)}); remove scoring")
    refit = config.get("refit")
    if refit not in names_scored and "refit" not in invalid:
        problems.append(f"refit: {refit!r} is not one of command.metrics ({', '.join(metrics)})")
    return problems


def placeholders_or_empty(template: str) -> list[str]:
    try:
        return placeholders(template)
    except ValueError:
        return []
