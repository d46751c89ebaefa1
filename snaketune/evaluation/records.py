"""The records that cross process and file boundaries: a trial's spec (what to run), its
record (what a trial file holds, with a :class:`TrialStatus`), and the run settings.

:func:`read_record` is the one validated reader of trial files: aggregation, status, the
report, promotion and the crash-recovery bookkeeping all use it.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path

from snaketune.evaluation.budget import Budget

TRIAL_FORMAT = 2


class TrialStatus(StrEnum):
    """How a trial ended (Optuna's ``TrialState`` for one fold)."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class RunSettings:
    """How trials run, not what they compute: none of it is part of a trial's name.

    Travels from the Snakefile (parse time) to the process that runs the trial as one JSON
    value (``SNAKETUNE_SETTINGS``), plus the job's ``threads``.
    """

    timeout: float | None = None
    raise_errors: bool = False
    cache_dir: str | None = None
    threads: int = 1

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None, threads: int | None = None) -> RunSettings:
        data = json.loads(text) if text else {}
        if threads:
            data["threads"] = int(threads)
        return cls(**data)


@dataclass(frozen=True)
class SlotRef:
    """Where a budgeted trial sits in an adaptive search: bracket, rung and slot (the slot's
    model is read from the previous rung's promotion file when ``rung > 0``)."""

    bracket: int
    rung: int
    slot: int
    promotion: str | None = None
    model_id: str | None = None


@dataclass(frozen=True)
class AskRef:
    """Where a model-based search's trial sits: configuration ``index`` of round ``round``, Optuna
    trial ``number``; its configuration is read at run time from the round's ask file ``path``."""

    path: str
    round: int
    index: int
    number: int


@dataclass(frozen=True)
class TrialSpec:
    """Everything a process needs to run one trial (the JSON a job hands over)."""

    trial_id: str
    fold: int
    estimator: dict
    scoring: list[str]
    data_dir: str
    splits: str
    config_key: str | None = None  # None: decided at run time (a promoted slot)
    params: dict | None = None
    allowed_modules: list[str] = field(default_factory=list)
    seed: int | None = None
    return_train_score: bool = False
    budget: Budget | None = None
    slot: SlotRef | None = None
    command: dict | None = None  # a command study's trial (snaketune/evaluation/command.py)
    ask: AskRef | None = None
    # Scorer name -> pickle of a callable a snaketune search stored (config ``scorers``).
    scorers: dict | None = None

    @classmethod
    def from_dict(cls, data: dict) -> TrialSpec:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["budget"] = Budget.from_dict(data.get("budget"))
        values["slot"] = SlotRef(**data["slot"]) if data.get("slot") else None
        values["ask"] = AskRef(**data["ask"]) if data.get("ask") else None
        return cls(**values)

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["budget"] = self.budget.to_dict() if self.budget else None
        data["slot"] = dict(self.slot.__dict__) if self.slot else None
        data["ask"] = dict(self.ask.__dict__) if self.ask else None
        return data


@dataclass
class TrialRecord:
    """What a trial file holds (``trials/<trial_id>.json``)."""

    trial_id: str
    config_key: str
    fold: int
    params: dict
    status: TrialStatus
    test_scores: dict
    fit_time: float
    score_time: float
    train_scores: dict = field(default_factory=dict)
    fit_cpu: float = 0.0
    score_cpu: float = 0.0
    error: str | None = None
    traceback: str | None = None
    warnings: list = field(default_factory=list)
    seed: int | None = None
    versions: dict = field(default_factory=dict)
    host: str = ""
    pid: int = 0
    start: str | None = None
    end: str | None = None
    n_train: int | None = None
    n_test: int | None = None
    data_fingerprint: str | None = None
    format: int = TRIAL_FORMAT
    # Budgeted (adaptive) trials: the resource trained, the score history, where in the search.
    budget: int | None = None
    resource: str | None = None
    units_trained: int | None = None
    n_rows: int | None = None
    stopped: bool = False
    history: list = field(default_factory=list)
    model_id: str | None = None
    bracket: int | None = None
    rung: int | None = None
    slot: int | None = None
    carried: bool = False
    reused: bool = False
    # Command studies: the command line run, its exit status, raw metrics and log file.
    command: dict | None = None
    # Model-based (Optuna) trials: the round that asked the configuration and its trial number.
    round: int | None = None
    number: int | None = None

    @property
    def ok(self) -> bool:
        return self.status is TrialStatus.OK

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TrialRecord:
        """Validate a parsed trial file; ValueError names what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        missing = [k for k in REQUIRED_KEYS if k not in data]
        if missing:
            raise ValueError(f"missing keys {missing}")
        known = _field_names(cls)
        values = {k: v for k, v in data.items() if k in known}
        values["status"] = TrialStatus(data["status"])
        return cls(**values)


@functools.cache
def _field_names(cls) -> frozenset[str]:
    # dataclasses.fields() each time was a quarter of reading 100,000 records (issue 28)
    return frozenset(f.name for f in fields(cls))


REQUIRED_KEYS = ("trial_id", "config_key", "fold", "status", "test_scores", "fit_time", "score_time")


class CorruptTrialError(RuntimeError):
    """A trial file that is not a complete record; the message says how to recover."""


def read_record(path: str | Path) -> TrialRecord:
    """Read one trial file, or raise :class:`CorruptTrialError` naming it and the fix."""
    path = Path(path)
    try:
        record = TrialRecord.from_dict(json.loads(path.read_text()))
        if record.trial_id != path.stem:
            raise ValueError(f"records trial {record.trial_id!r}, not {path.stem!r}")
    except (OSError, ValueError, TypeError) as exc:
        raise CorruptTrialError(
            f"corrupt trial file {path}: {exc}. Delete it and rerun snakemake: only that trial "
            "runs again, every other finished trial is kept."
        ) from None
    return record


def read_records(paths) -> dict[str, TrialRecord]:
    """Read every trial file; all corrupt files are reported together."""
    records, problems = {}, []
    for path in paths:
        try:
            record = read_record(path)
        except CorruptTrialError as exc:
            problems.append(str(exc))
            continue
        records[record.trial_id] = record
    if problems:
        raise CorruptTrialError("\n".join(problems))
    return records


def error_value(error_score) -> float:
    """Score given to a failed or timed-out fold."""
    if error_score in ("nan", "raise") or error_score is None:
        return math.nan
    return float(error_score)


def state_path(output: str | Path) -> Path:
    """Where a budgeted trial keeps its trained model (``partial_fit`` state) next to its record."""
    return Path(output).with_suffix(".pkl")


def versions() -> dict:
    """The library versions a record was computed with (provenance in trial and refit files)."""
    return dict(_versions())


@functools.cache
def _versions() -> dict:
    import platform

    return {
        "python": platform.python_version(),
        "numpy": _version("numpy", "numpy"),
        "sklearn": _version("sklearn", "scikit-learn"),
    }


def _version(module: str, dist: str) -> str:
    """The imported module's ``__version__``; else the installed package's metadata, which costs
    no import (scikit-learn's is 0.4 s, which a refit copied from the cache would pay); else
    the module imported after all (a source checkout without metadata)."""
    import importlib
    import sys
    from importlib.metadata import PackageNotFoundError, version

    if module in sys.modules:
        return sys.modules[module].__version__
    try:
        return version(dist)
    except PackageNotFoundError:
        return importlib.import_module(module).__version__
