"""The study plan: every trial of a study, named by a content hash.

A trial's file name is ``<config_key>_<fold>``, where ``config_key`` hashes everything that
determines its result: estimator spec, parameters, data identity, CV scheme, scoring, seed. So
adding a grid value adds new names only, reverting a change finds the old files again, and edits
that do not change results (plots, timeouts, resources) rename nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from snaketune.base.jsonutil import digest, to_jsonable
from snaketune.base.splits import n_folds, ordered


@dataclass
class Plan:
    """Trials of one study, in sklearn's candidate order, fold-major within a candidate."""

    out: str
    data_key: str
    cv_key: str
    n_folds: int
    candidates: list[dict]
    config_keys: list[str]
    trial_spec_base: dict = field(repr=False)
    classifier: bool = True
    # The estimator's task (base.estimator.estimator_task): what the target is, not its dtype.
    task: str | None = None

    @property
    def data_dir(self) -> str:
        return self.trial_spec_base["data_dir"]

    @property
    def splits_path(self) -> str:
        return self.trial_spec_base["splits"]

    @property
    def trial_ids(self) -> list[str]:
        return [f"{key}_{fold}" for key in self.config_keys for fold in range(self.n_folds)]

    def trial_path(self, trial_id: str) -> str:
        return f"{self.out}/trials/{trial_id}.json"

    @property
    def trial_paths(self) -> list[str]:
        return [self.trial_path(t) for t in self.trial_ids]

    def spec(self, trial_id: str) -> dict:
        """Everything a process needs to run trial ``trial_id``."""
        key, fold = trial_id.rsplit("_", 1)
        index = self._index[key]
        spec = dict(self.trial_spec_base)
        spec.update(
            trial_id=trial_id,
            config_key=key,
            fold=int(fold),
            params=to_jsonable(self.candidates[index]),
        )
        return spec

    def __post_init__(self):
        self._index = {key: i for i, key in enumerate(self.config_keys)}


class KeysMemo(Protocol):
    """Where :func:`make_plan` keeps the candidates and configuration keys of a grid's spaces.

    ``get``/``put`` by a key that hashes what they are computed from (a space and the fields
    every configuration key hashes); the memo adds what else they depend on (code, versions).
    """

    def get(self, key: str) -> tuple[list[dict], list[str]] | None: ...

    def put(self, key: str, candidates: list[dict], config_keys: list[str]) -> None: ...


def make_plan(
    config: dict, basedir: str | Path = ".", candidates: list[dict] | None = None, memo: KeysMemo | None = None
) -> Plan:
    """Build the plan of a validated config (no data is loaded; files are only hashed).

    Parameters
    ----------
    config : dict
        Output of :func:`snaketune.config.load_config`.
    basedir : path
        Folder relative data paths are resolved against.
    candidates : list of dict, optional
        Parameter configurations; by default those of the grid or random search.
    memo : KeysMemo, optional
        Candidates and keys of a grid's spaces seen before (a grown grid hashes only its new space).
    """
    from snaketune.base.data import source_digest
    from snaketune.base.splits import cv_identity

    if "command" in config:  # your own training script as the trial (search/command.py)
        from snaketune.search.command import command_plan

        return Plan(**command_plan(config, basedir, candidates))
    out = f"{config['output_dir']}/{config['study']}"
    source = source_digest(config["data"], Path(basedir))
    if ordered(config["cv"]) and config["data"].get("test_size"):
        source["holdout"] = "last rows"  # a different held-out set: a different data folder
    task = _task(config, basedir)
    if task == "regression" and stratified_holdout_possible(config):
        # A regressor's held-out split is never stratified; an integer target's once was (a
        # different held-out set, so a different data folder and trial names).
        source["holdout"] = "not stratified"
    data_key = digest(source)
    classifier = task == "classification"
    cv_spec = dict(cv_identity(config["cv"], basedir), classifier=classifier)
    cv_key = digest({"data": data_key, "cv": cv_spec})
    if candidates is None:
        candidates, config_keys = space_candidates_and_keys(
            config["search"], defining_fields(config, data_key, cv_key), memo
        )
    else:
        config_keys = make_config_keys(config, data_key, cv_key, candidates)
    base = {
        "estimator": config["estimator"],
        "allowed_modules": config["allowed_modules"],
        "seed": config["seed"],
        "scoring": config["scoring"],
        "return_train_score": config["return_train_score"],
        "data_dir": f"{out}/data/{data_key}",
        "splits": f"{out}/splits/{cv_key}.npz",
    }
    if config.get("scorers"):  # a search's stored callables (only then: other studies' specs unchanged)
        base["scorers"] = config["scorers"]
    n_groups = _n_groups(config, basedir) if config["cv"]["kind"] == "leave_one_group_out" else None
    folds = n_folds(config["cv"], n_groups, basedir)
    return Plan(out, data_key, cv_key, folds, list(candidates), config_keys, base, classifier, task)


def prepare_args(config: dict, plan: Plan) -> dict:
    """Extra arguments of the data's prepare call: time-series CV holds out the last rows; the
    estimator's task says whether a shuffled held-out split is stratified (given only then, so
    studies whose split it cannot change keep their call)."""
    if ordered(config["cv"]):
        return {"ordered": True}
    if stratified_holdout_possible(config) and plan.task is not None:
        return {"task": plan.task}
    return {}


def stratified_holdout_possible(config: dict) -> bool:
    """Whether the target's type decides the held-out split: a shuffled ``data.test_size``
    without groups (groups hold out whole groups, time series the last rows)."""
    data = config["data"]
    return bool(data.get("test_size")) and not data.get("groups") and not ordered(config["cv"])


def _n_groups(config: dict, basedir) -> int:
    """Groups among the training rows (leave_one_group_out has one fold each): reads the data."""
    import numpy as np

    from snaketune.base.data import holdout, is_classification, load_dataset

    source = load_dataset(config["data"], Path(basedir))
    train, _ = holdout(source, config["data"], is_classification(source.y))
    return int(len(np.unique(source.groups[train])))


def space_candidates_and_keys(search: dict, defining: dict, memo: KeysMemo | None) -> tuple[list[dict], list[str]]:
    """The search's candidates in sklearn's order and their configuration keys.

    A grid given as a list of spaces lists each space's candidates in turn (``ParameterGrid``), so
    with a ``memo`` each space is expanded and hashed once: adding a space to a grid of 20,000
    configurations hashes only the new space's (20,000 keys took 1.6 s of every parse, issue 28).
    """
    from snaketune.search.space import candidates as space_candidates

    ((kind, spec),) = search.items()
    if kind != "grid" or memo is None:
        candidates = space_candidates(search)
        return candidates, [config_key(defining, p) for p in candidates]
    candidates, keys = [], []
    for space in spec if isinstance(spec, list) else [spec]:
        # repr, not JSON: NaN and None, or 1 and "1" as a dict key, are different spaces here.
        key = digest({"defining": defining, "grid": repr(space)}, 20)
        known = memo.get(key)
        if known is None:
            known = space_candidates({"grid": [space]}), []
            known[1].extend(config_key(defining, p) for p in known[0])
            memo.put(key, *known)
        candidates += known[0]
        keys += known[1]
    return candidates, keys


def make_config_keys(config: dict, data_key: str, cv_key: str, candidates: list[dict]) -> list[str]:
    """Content hash of each candidate: everything that determines its trials' results."""
    defining = defining_fields(config, data_key, cv_key)
    return [config_key(defining, p) for p in candidates]


def defining_fields(config: dict, data_key: str, cv_key: str) -> dict:
    """What a configuration's key hashes besides its parameters (see the module docstring)."""
    defining = {
        "estimator": config["estimator"],
        "data": data_key,
        "cv": cv_key,
        "scoring": config["scoring"],
        "return_train_score": config["return_train_score"],
        "seed": config["seed"],
    }
    if config.get("scorers"):  # their pickles, named by their content: another callable, other trials
        defining["scorers"] = config["scorers"]
    return defining


def config_key(defining: dict, params: dict) -> str:
    """The content hash naming a configuration (``<config_key>_<fold>`` names its trials)."""
    return digest(dict(defining, params=to_jsonable(params)))


def _task(config: dict, basedir) -> str | None:
    from snaketune.base.estimator import build_estimator, estimator_task

    estimator = config["estimator"]
    if "pickle" in estimator:  # a search's, named relative to the folder runs start in
        estimator = dict(estimator, pickle=str(Path(basedir) / estimator["pickle"]))
    return estimator_task(build_estimator(estimator, config["allowed_modules"]))
