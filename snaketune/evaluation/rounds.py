"""Model-based search (Optuna's samplers) as a Snakemake DAG of rounds on the trial core.

Round ``r`` asks the sampler for ``batch_size`` configurations, given every result of rounds
``< r``; each configuration's folds are ordinary trials (``trials/o<r>-<k>_<fold>.json``). Trial
names are positions, known at parse time; a trial learns its configuration at run time from the
round's ask file (``optuna/round-<r>.json``), as a promoted Hyperband slot learns its candidate
from the promotion file. The result is also stored under the configuration's content hash in the
study's trial cache, so a rerun that asks the same configuration again computes nothing.

The ask step (:func:`ask_round`) carries the whole Optuna state from round to round in
``optuna/round-<r>.pkl``: the in-memory storage (trials with their system attributes, where
CMA-ES and QMC keep their state) and the sampler (its random streams). Round ``r`` unpickles
round ``r - 1``'s state, tells that round's configurations their results, in order, and asks the
next ``batch_size``: the call sequence of Optuna's own ``study.optimize`` when ``batch_size`` is
1, and of its "batch optimization" tutorial (ask k, then tell k) otherwise. Every round asks
``batch_size`` configurations, the last one too even when ``n_trials`` needs fewer of them, so
no ask file depends on ``n_trials``: raising it reruns nothing.
"""

from __future__ import annotations

import json
import math
import pickle
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from snaketune.base.jsonutil import to_jsonable, write_bytes_atomic, write_json_atomic
from snaketune.evaluation.records import TrialRecord, TrialSpec, read_record
from snaketune.search.plan import config_key, defining_fields


@dataclass
class OptunaPlan:
    """Everything the rules need at parse time: rounds, trial names and paths, trial specs.

    A *slot* here is one configuration of one round, ``(round, index)``: the same interface as
    the adaptive plan's slots, for ``status``.
    """

    out: str
    settings: dict  # sampler, seed, batch_size, n_trials, params (the config's space), refit
    defining: dict
    n_folds: int
    base: dict = field(repr=False)

    @property
    def batch_size(self) -> int:
        return self.settings["batch_size"]

    @property
    def n_trials(self) -> int:
        return self.settings["n_trials"]

    @property
    def n_rounds(self) -> int:
        return math.ceil(self.n_trials / self.batch_size)

    def round_size(self, r: int) -> int:
        """Configurations of round ``r`` that run (the last round may use fewer than it asks)."""
        return min(self.batch_size, self.n_trials - r * self.batch_size)

    # ------------------------------------------------------------------ names and paths
    def ask_path(self, r: int) -> str:
        return f"{self.out}/optuna/round-{r}.json"

    def state_path(self, r: int) -> str:
        return f"{self.out}/optuna/round-{r}.pkl"

    @property
    def journal_path(self) -> str:
        return f"{self.out}/optuna/journal.log"

    @property
    def ask_outputs(self) -> list[str]:
        """Every round's ask file and Optuna state."""
        return [p for r in range(self.n_rounds) for p in (self.ask_path(r), self.state_path(r))]

    @staticmethod
    def trial_id(r: int, k: int, fold: int) -> str:
        return f"o{r}-{k}_{fold}"

    def slot_trials(self, r: int, k: int) -> list[str]:
        return [f"{self.out}/trials/{self.trial_id(r, k, f)}.json" for f in range(self.n_folds)]

    @property
    def slots(self) -> list[tuple[int, int]]:
        """Every configuration that runs, in the order Optuna numbers them."""
        return [(r, k) for r in range(self.n_rounds) for k in range(self.round_size(r))]

    @property
    def trial_paths(self) -> list[str]:
        return [p for s in self.slots for p in self.slot_trials(*s)]

    # ------------------------------------------------------------------ what jobs run
    def trial_specs(self, r: int, k: int) -> list[dict]:
        """The trial specs of configuration ``k`` of round ``r``, one per fold."""
        ask = {"path": self.ask_path(r), "round": r, "index": k, "number": r * self.batch_size + k}
        return [dict(self.base, trial_id=self.trial_id(r, k, f), fold=f, ask=ask) for f in range(self.n_folds)]

    def ask_args(self, r: int) -> dict:
        """Keyword arguments of round ``r``'s ask call: nothing here depends on ``n_trials``."""
        s = self.settings
        previous = None
        if r > 0:
            previous = {
                "ask": self.ask_path(r - 1),
                "state": self.state_path(r - 1),
                "trials": [self.slot_trials(r - 1, k) for k in range(self.batch_size)],
            }
        return {
            "round_index": r,
            "batch_size": s["batch_size"],
            "sampler": s["sampler"],
            "seed": s["seed"],
            "space": s["params"],
            "refit": s["refit"],
            "error_score": s["error_score"],
            "defining": self.defining,
            "previous": previous,
            "outputs": [self.ask_path(r), self.state_path(r)],
        }

    def trial_groups(self, trials_per_job, one_job_a_round: bool = False) -> list[tuple[int, list[tuple[int, int]]]]:
        """Trials run together in one job: ``(round, [(index, fold), ...])``, round by round.

        ``1`` is one job a trial; an integer ``N`` puts ``N`` trials of one round in a job;
        ``auto`` puts a round's trials in one job with ``one_job_a_round`` (a local run: the job
        hands them to forks as cores free up), else ``n_folds`` trials in a job (as many jobs as
        configurations: a cluster). Trials are dealt fold by fold, so a job's consecutive trials
        are different configurations: a slow configuration (an SVC with a huge C) spreads over
        several jobs, or several forks, instead of making one long queue that the whole round,
        and the next ask, waits for.
        """
        groups = []
        for r in range(self.n_rounds):
            trials = [(k, f) for f in range(self.n_folds) for k in range(self.round_size(r))]
            if trials_per_job != "auto":
                per_job = max(1, int(trials_per_job))
            elif one_job_a_round:
                per_job = len(trials)
            else:
                per_job = self.n_folds
            groups += [(r, trials[i : i + per_job]) for i in range(0, len(trials), per_job)]
        return groups

    def summary(self) -> str:
        s = self.settings
        return (
            f"snaketune optuna: {s['sampler']} sampler, {self.n_trials} configurations in {self.n_rounds} "
            f"round(s) of {self.batch_size}, {self.n_folds} fold(s) each"
        )

    def to_summary(self) -> dict:
        """What aggregation needs (JSON-able)."""
        return {
            "rows": [
                {
                    "round": r,
                    "number": r * self.batch_size + k,
                    "trial_ids": [self.trial_id(r, k, f) for f in range(self.n_folds)],
                }
                for r, k in self.slots
            ],
            "n_folds": self.n_folds,
            "settings": dict(self.settings, n_rounds=self.n_rounds, journal=self.journal_path),
        }


def setup(study) -> OptunaPlan:
    """The round plan of a validated config whose search is ``optuna``."""
    config, plan = study.config, study.plan
    ((_kind, spec),) = config["search"].items()
    settings = {
        "sampler": spec["sampler"],
        "seed": int(spec["seed"]),
        "batch_size": int(spec["batch_size"]),
        "n_trials": int(spec["n_trials"]),
        "params": spec["params"],
        "refit": config["refit"],
        "error_score": config["error_score"],
    }
    if "command" in config:  # your own training script: keys as search/command.py names them
        from snaketune.search.command import command_defining

        defining = to_jsonable(command_defining(config, plan.trial_spec_base["command"]))
    else:
        defining = to_jsonable(defining_fields(config, plan.data_key, plan.cv_key))
    return OptunaPlan(plan.out, settings, defining, plan.n_folds, dict(plan.trial_spec_base))


# ----------------------------------------------------------------------------------------------
# The ask step


def objective_value(records: list[TrialRecord], refit: str, error_score) -> float | None:
    """What the sampler is told: the mean over folds of the refit metric, failed folds scored
    ``error_score`` (as the leaderboard's mean); None (told as failed) when every fold failed or
    the mean is NaN (``error_score: nan`` and a failed fold)."""
    from snaketune.evaluation.records import error_value

    if not any(r.ok for r in records):
        return None
    fill = error_value(error_score)
    scores = [r.test_scores[refit] if r.ok else fill for r in records]
    value = float(np.mean(scores))  # as cross_val_score(...).mean() and the leaderboard compute it
    return None if math.isnan(value) else value


def ask_round(
    *,
    round_index: int,
    batch_size: int,
    sampler: str,
    seed: int,
    space: dict,
    refit: str,
    defining: dict,
    previous: dict | None,
    outputs: list[str],
    error_score="nan",
) -> list[dict]:
    """Tell round ``round_index - 1``'s results, ask ``batch_size`` configurations, save the state.

    Writes the ask file (``outputs[0]``: every asked configuration with its Optuna number, params
    and content hash) and the Optuna state (``outputs[1]``). Returns the asked entries.
    """
    import optuna
    from optuna.storages import InMemoryStorage

    from snaketune.search.optuna_space import STUDY_NAME, distributions, make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = distributions(space)
    if previous is None:
        storage, sampler_obj = InMemoryStorage(), make_sampler(sampler, seed)
        study = optuna.create_study(storage=storage, sampler=sampler_obj, study_name=STUDY_NAME, direction="maximize")
    else:
        with open(previous["state"], "rb") as fh:
            saved = pickle.load(fh)  # the state this study's previous round saved itself
        storage, sampler_obj = saved["storage"], saved["sampler"]
        study = optuna.load_study(study_name=STUDY_NAME, storage=storage, sampler=sampler_obj)
        asked = json.loads(Path(previous["ask"]).read_text())["asked"]
        for entry, paths in zip(asked, previous["trials"], strict=True):
            tell(study, entry["number"], [read_record(p) for p in paths], refit, error_score)
    entries = []
    for _ in range(batch_size):
        trial = study.ask(dists)
        params = to_jsonable(trial.params)
        entries.append({"number": trial.number, "config_key": config_key(defining, params), "params": params})
    # State first: the ask file (what trials read) exists only with the state the next round needs.
    write_bytes_atomic(outputs[1], pickle.dumps({"storage": storage, "sampler": sampler_obj}))
    write_json_atomic(outputs[0], {"round": round_index, "sampler": sampler, "seed": seed, "asked": entries})
    return entries


def tell(study, number: int, records: list[TrialRecord], refit: str, error_score="nan") -> None:
    from optuna.trial import TrialState

    value = objective_value(records, refit, error_score)
    if value is None:
        study.tell(number, state=TrialState.FAIL)
    else:
        study.tell(number, value)


# ----------------------------------------------------------------------------------------------
# What a trial runs


def with_asked(spec: TrialSpec) -> TrialSpec:
    """``spec`` with the configuration its round's ask file gives its index."""
    if spec.ask is None or spec.params is not None:
        return spec
    entry = json.loads(Path(spec.ask.path).read_text())["asked"][spec.ask.index]
    return replace(spec, config_key=entry["config_key"], params=entry["params"])


def cache_path(cache_dir: str | None, spec: TrialSpec) -> Path | None:
    """Where an asked trial's result is kept under its configuration's name (``<key>_<fold>``,
    the name a grid or random trial of the same configuration has)."""
    if not cache_dir or spec.ask is None or spec.budget is not None:
        return None
    return Path(cache_dir) / f"{spec.config_key}_{spec.fold}.json"


def restore(cached: Path | None, spec: TrialSpec) -> TrialRecord | None:
    """A finished record of the same configuration and fold, relabelled as ``spec``'s trial."""
    if cached is None or not cached.exists():
        return None
    try:
        record = read_record(cached)
    except Exception:  # noqa: BLE001 - a bad cache entry is only a missed shortcut
        return None
    if record.config_key != spec.config_key or record.fold != spec.fold or not record.ok:
        return None
    return replace(relabel(record, spec), reused=True)


def relabel(record: TrialRecord, spec: TrialSpec) -> TrialRecord:
    ask = spec.ask
    return replace(record, trial_id=spec.trial_id, round=ask.round if ask else None, number=ask.number if ask else None)


def keep(cached: Path | None, record: TrialRecord) -> None:
    """Store an ok record under its configuration's name (as a plain, unlabelled trial)."""
    if cached is None or not record.ok or cached.exists():
        return
    plain = replace(record, trial_id=cached.stem, round=None, number=None)
    write_json_atomic(cached, plain.to_dict())
