"""Command studies: a trial is the user's own training script, run from a command template.

The template is the user's shell text (as a Snakemake ``shell:`` directive is); only the values
put into it come from the search, and every one is shell-quoted (:func:`fill`), so a parameter
value can never add a word or a command. A trial's key hashes the template, the sha256 of every
declared input file, the metric definitions, the environment (conda file content, container
image), the number of folds and the seed; with its parameters it names the trial file, so an
edited ``train.py`` renames (reruns) every trial and report settings rename none.
"""

from __future__ import annotations

import json
import shlex
import string
from pathlib import Path

from snaketune.base.jsonutil import digest, file_sha256, to_jsonable

# Placeholders every command template may use besides the searched parameters' names.
FIXED = ("params_json", "fold", "output", "seed")
# Only with a budgeted search (Hyperband's slots): units to train to, and the folder the model is
# saved in (a promoted model finds its previous rung's folder copied there).
ADAPTIVE = ("budget", "checkpoint")
RESERVED = FIXED + ADAPTIVE
# A budgeted search's section has one of these (required) keys: the budget of its schedule.
BUDGET_KEYS = ("max_iter", "n_candidates")


def budgeted(spec) -> bool:
    """Does a ``search`` section (its spec) train models on a budget (slots in rungs)?

    Only a section with settings beside its ``params`` has such keys: a grid's spec is the space
    itself, where ``max_iter`` is a parameter to search, not a budget."""
    return is_section(spec) and any(k in spec for k in BUDGET_KEYS)


def is_section(spec) -> bool:
    """A strategy's section: its settings beside ``params`` (one space, or a list of spaces).
    Not a grid's spec, which is the space itself."""
    if not isinstance(spec, dict):
        return False
    params = spec.get("params")
    return isinstance(params, dict) or (isinstance(params, list) and all(isinstance(p, dict) for p in params))


def placeholders(template: str) -> list[str]:
    """Names of the ``{name}`` placeholders of ``template``, in order (``{{`` is a literal brace).

    Raises
    ------
    ValueError
        For malformed braces, or a placeholder with a conversion, format spec, index or attribute
        (``{lr!r}``, ``{lr:.3f}``, ``{p[0]}``, ``{p.x}``): values are filled as plain text only.
    """
    names = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise ValueError(f"placeholder {shown} is not a plain {{name}}")
        names.append(name)
    return names


def as_text(value) -> str:
    """A value as the command sees it: strings as they are, anything else as JSON (0.001, true,
    null, [32, 32])."""
    if isinstance(value, str):
        return value
    if isinstance(value, Path):
        return str(value)
    return json.dumps(to_jsonable(value))


def fill(template: str, values: dict) -> str:
    """``template`` with each ``{name}`` replaced by ``shlex.quote`` of its value.

    Examples
    --------
    >>> fill("train.py --opt {opt} --fold {fold}", {"opt": "a b; rm -rf /", "fold": 0})
    "train.py --opt 'a b; rm -rf /' --fold 0"
    """
    parts = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(literal)
        if name is not None:
            parts.append(shlex.quote(as_text(values[name])))
    return "".join(parts)


def scored_name(metric: str, greater_is_better: dict) -> str:
    """The column a metric is ranked under: ``neg_<metric>`` for a loss, as scikit-learn names
    its negated scorers (``neg_log_loss``), so every ranking keeps "greater is better"."""
    return metric if greater_is_better.get(metric, True) else f"neg_{metric}"


def scoring(command: dict) -> list[str]:
    gib = command.get("greater_is_better") or {}
    return [scored_name(m, gib) for m in command["metrics"]]


def env_identity(command: dict, basedir: Path) -> dict:
    """What identifies the command's software environment: the conda file's content, the image."""
    env = {}
    if command.get("conda"):
        env["conda_sha256"] = file_sha256(Path(basedir) / command["conda"])
    if command.get("container"):
        env["container"] = command["container"]
    return env


def command_spec(config: dict, basedir: Path) -> dict:
    """What a command trial needs to run (and what its key hashes, less the refit template)."""
    command = config["command"]
    inputs = {path: file_sha256(Path(basedir) / path) for path in command.get("inputs", [])}
    gib = command.get("greater_is_better") or {}
    return {
        "run": command["run"],
        "metrics": list(command["metrics"]),
        "signs": [1 if gib.get(m, True) else -1 for m in command["metrics"]],
        "inputs": inputs,
        "env": env_identity(command, basedir),
        "folds": int(config.get("folds", 1)),
    }


def command_plan(config: dict, basedir: str | Path = ".", candidates: list[dict] | None = None) -> dict:
    """The fields of a command study's :class:`~snaketune.search.plan.Plan` (no data set, no CV
    splitter: fold ``k`` is whatever the command makes of ``{fold}``)."""
    from snaketune.search.space import candidates as space_candidates

    out = f"{config['output_dir']}/{config['study']}"
    spec = command_spec(config, Path(basedir))
    inputs_key = digest({"inputs": spec["inputs"], "env": spec["env"]})
    spec["inputs_digest"] = inputs_key
    if candidates is None:
        candidates = space_candidates(config["search"])
    defining = command_defining(config, spec)
    config_keys = [digest(dict(defining, params=to_jsonable(p))) for p in candidates]
    base = {
        "estimator": {},
        "allowed_modules": [],
        "seed": config["seed"],
        "scoring": config["scoring"],
        "return_train_score": False,
        "data_dir": "",
        "splits": "",
        "command": spec,
    }
    cv_key = digest({"folds": spec["folds"]})
    return {
        "out": out,
        "data_key": inputs_key,
        "cv_key": cv_key,
        "n_folds": spec["folds"],
        "candidates": list(candidates),
        "config_keys": config_keys,
        "trial_spec_base": base,
        "classifier": False,
    }


def command_defining(config: dict, spec: dict) -> dict:
    """What a command study's configuration key hashes besides its parameters."""
    return {
        "command": {k: spec[k] for k in ("run", "metrics", "signs", "inputs", "env", "folds")},
        "seed": config["seed"],
    }


def adaptive_defining(config: dict, plan) -> dict:
    """What names an adaptive command study's model (its key, with its parameters)."""
    spec = plan.trial_spec_base["command"]
    return {
        "command": {k: spec[k] for k in ("run", "metrics", "signs", "inputs", "env", "folds")},
        "seed": config["seed"],
        "refit": config["refit"],
    }
