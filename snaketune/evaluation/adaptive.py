"""Hyperband and successive halving as a static Snakemake DAG of *slots* on the trial core.

The schedule (:mod:`snaketune.search.hyperband`) fixes, before anything runs, how many models
every rung of every bracket holds. So the DAG is static and ``snakemake -n`` lists every job:

* slot ``j`` of rung ``i`` of bracket ``b`` is one job of ``n_folds`` ordinary trials
  (``trials/b<b>-r<i>-s<j>_<fold>.json``, each with its model state ``.pkl``). In rung 0 it trains
  the ``j``-th sampled configuration of the bracket; in rung ``i > 0`` the ``j``-th survivor of
  rung ``i - 1`` (see :mod:`snaketune.evaluation.slots`), each fold continuing its own model.
  Trials carry a :class:`~snaketune.evaluation.budget.Budget`; everything else (timeouts,
  ``error_score``, threads, resources, ``return_train_score``, status, leaderboard, report) is
  the trial core's.
* ``promote`` ranks a rung's slots and writes the survivors in order.

Lower slots hold better models, so slot jobs get priority ``1000 * rung - slot``: promoted models
first, the best of them first (the "high scores" scheme of Sievert et al.).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from snaketune.base.jsonutil import digest, to_jsonable
from snaketune.config.load import ConfigError
from snaketune.evaluation.budget import Budget
from snaketune.search.hyperband import Schedule

# With trials_per_job: auto, a rung's slots run in at most this many jobs.
JOBS_PER_RUNG = 16


@dataclass
class AdaptivePlan:
    """Everything the rules need at parse time: schedule, sampled models, paths, trial specs."""

    out: str
    schedule: Schedule
    settings: dict
    models: dict  # bracket id -> list of {"model_id", "config_key", "params"}
    n_folds: int
    base: dict = field(repr=False)

    # ------------------------------------------------------------------ names and paths
    @staticmethod
    def slot_id(b: int, i: int, j: int) -> str:
        return f"b{b}-r{i}-s{j}"

    def trial_path(self, trial_id: str) -> str:
        return f"{self.out}/trials/{trial_id}.json"

    def slot_trials(self, b: int, i: int, j: int) -> list[str]:
        return [self.trial_path(f"{self.slot_id(b, i, j)}_{k}") for k in range(self.n_folds)]

    def rung_slots(self, b: int, i: int) -> list[list[str]]:
        n = self.schedule.bracket(b).rungs[i].n_models
        return [self.slot_trials(b, i, j) for j in range(n)]

    def promotion_path(self, b: int, i: int) -> str:
        return f"{self.out}/hyperband/b{b}/r{i}/promotion.json"

    @property
    def slots(self) -> list[tuple[int, int, int]]:
        """Every slot in search order: bracket (as scheduled), rung, slot."""
        return [(b.id, r.index, j) for b in self.schedule.brackets for r in b.rungs for j in range(r.n_models)]

    @property
    def trial_paths(self) -> list[str]:
        return [p for s in self.slots for p in self.slot_trials(*s)]

    # ------------------------------------------------------------------ what a slot runs
    def budget(self, b: int, i: int) -> Budget:
        s = self.settings
        return Budget(
            resource=s["resource"],
            units=self.schedule.bracket(b).rungs[i].units,
            max_units=s["max_units"],
            chunk_size=s["chunk_size"],
            patience=s["patience"],
            tol=s["tol"],
            stratify=s["classifier"],
            metric=s["refit"],
        )

    def slot_inputs(self, b: int, i: int) -> dict:
        """A slot's inputs beyond data and splits: the previous rung's promotion (rung > 0)."""
        return {"promotion": self.promotion_path(b, i - 1)} if i else {}

    def slot_specs(self, b: int, i: int, j: int) -> list[dict]:
        """The trial specs of a slot's folds (JSON: the job's definition)."""
        slot = {"bracket": b, "rung": i, "slot": j, "promotion": None, "model_id": None}
        candidate = {}
        if i == 0:
            model = self.models[b][j]
            slot["model_id"] = model["model_id"]
            candidate = {"config_key": model["config_key"], "params": model["params"]}
        else:
            slot["promotion"] = self.promotion_path(b, i - 1)
        return [
            dict(
                self.base,
                **candidate,
                trial_id=f"{self.slot_id(b, i, j)}_{k}",
                fold=k,
                budget=self.budget(b, i).to_dict(),
                slot=slot,
            )
            for k in range(self.n_folds)
        ]

    def slot_groups(self, trials_per_job) -> list[tuple[int, int, list[int]]]:
        """Slots run together in one job: ``(bracket, rung, slots)``, rung by rung.

        ``trials_per_job: 1`` keeps one slot a job. An integer ``N`` puts ``N // n_folds`` slots
        (at least one) in a job; ``auto`` splits every rung into at most
        :data:`JOBS_PER_RUNG` jobs, so a rung of 256 one-call models is 16 jobs, not 256, while
        a rung of a few long-trained models keeps one job each. Decided from the schedule alone,
        so the jobs are the same in every run.
        """
        groups = []
        for bracket in self.schedule.brackets:
            for rung in bracket.rungs:
                n = rung.n_models
                if trials_per_job == "auto":
                    per_job = math.ceil(n / JOBS_PER_RUNG)
                else:
                    per_job = max(1, int(trials_per_job) // self.n_folds)
                for start in range(0, n, per_job):
                    groups.append((bracket.id, rung.index, list(range(start, min(n, start + per_job)))))
        return groups

    def keep(self, b: int, i: int) -> int:
        return self.schedule.bracket(b).survivors(i)

    def priority(self, b: int, i: int, j: int) -> int:
        return 1000 * i - j

    def final_rung(self, b: int) -> int:
        return len(self.schedule.bracket(b).rungs) - 1

    def summary(self) -> str:
        s = self.schedule
        return (
            f"snaketune {s.kind}: {len(s.brackets)} bracket(s), {s.n_models} models, {s.units} units "
            f"({s.resource}), {s.n_evaluations} slot jobs of {self.n_folds} fold(s); "
            "table: python -m snaketune plan <config>"
        )

    def to_summary(self) -> dict:
        """What aggregation needs (JSON-able)."""
        return {
            "slots": [
                {
                    "bracket": b,
                    "iter": i,
                    "slot": j,
                    "n_resources": self.schedule.bracket(b).rungs[i].units,
                    "final": i == self.final_rung(b),
                    "trial_ids": [f"{self.slot_id(b, i, j)}_{k}" for k in range(self.n_folds)],
                }
                for b, i, j in self.slots
            ],
            "n_folds": self.n_folds,
            "schedule": self.schedule.to_dict(),
            "settings": self.settings,
        }


def adaptive_settings(config: dict, schedule: Schedule, classifier: bool) -> dict:
    """Resolved settings of the ``hyperband`` / ``successive_halving`` section."""
    ((kind, spec),) = config["search"].items()
    patience = spec.get("patience")
    max_units = max(r.units for b in schedule.brackets for r in b.rungs)
    if patience is True:
        # dask-ml's patience=True: max(max_iter // aggressiveness, 1).
        eta = spec.get("aggressiveness", spec.get("factor", 3))
        patience = max(max_units // eta, 1)
    elif patience is False:
        patience = None
    if "command" in config:  # the command trains {budget} units itself and reports once
        patience = None
    return {
        "kind": kind,
        "resource": "command" if "command" in config else spec.get("resource", schedule.resource),
        "chunk_size": spec.get("chunk_size"),
        "patience": patience,
        "tol": float(spec.get("tol", 1e-3)),
        "folds": spec.get("folds"),
        "seed": int(spec.get("seed", 0)),
        "max_units": max_units,
        "classifier": classifier,
        "refit": config["refit"],
    }


def adaptive_defining(config: dict, plan, settings: dict) -> dict:
    """Everything besides its parameters that determines a budgeted model's results (what its
    config key hashes)."""
    defining = {
        "estimator": config.get("estimator"),
        "data": plan.data_key,
        "cv": plan.cv_key,
        "scoring": config["scoring"],
        "refit": config["refit"],
        "return_train_score": config["return_train_score"],
        "seed": config["seed"],
        "adaptive": {k: settings[k] for k in ("resource", "chunk_size", "patience", "tol", "folds")},
    }
    if "command" in config:
        from snaketune.search.command import adaptive_defining as command_defining

        defining = dict(command_defining(config, plan), folds=settings["folds"])
    if settings["resource"] == "n_samples" and not settings["chunk_size"]:
        defining["adaptive"]["max_units"] = settings["max_units"]  # sets the default chunk size
    return defining


def sample_models(config: dict, plan, schedule: Schedule, settings: dict) -> dict:
    """Sample each bracket's configurations (``ParameterSampler``, seed ``seed + bracket``) and
    name them by a content hash of everything that determines their results."""
    from sklearn.model_selection import ParameterSampler

    from snaketune.search.space import expand_space

    ((kind, spec),) = config["search"].items()
    (dists,) = expand_space(spec["params"])
    defining = adaptive_defining(config, plan, settings)
    models = {}
    for bracket in schedule.brackets:
        n = bracket.n_models
        sampled = list(ParameterSampler(dists, n, random_state=settings["seed"] + bracket.id))
        if len(sampled) < n:
            raise ConfigError(
                [
                    f"search.{kind}.params: the space has only {len(sampled)} configurations but bracket "
                    f"{bracket.id} needs {n}; add values or a distribution, or lower the budget"
                ]
            )
        models[bracket.id] = [
            {
                "model_id": f"b{bracket.id}-{j}",
                "config_key": digest(dict(defining, params=to_jsonable(p))),
                "params": to_jsonable(p),
            }
            for j, p in enumerate(sampled)
        ]
    return models


def setup(strategy) -> AdaptivePlan:
    """The adaptive plan of a budgeted strategy (its ``config``, base ``plan`` and ``schedule``)."""
    config, plan = strategy.config, strategy.plan
    schedule = strategy.schedule(strategy.spec)
    settings = adaptive_settings(config, schedule, plan.classifier)
    models = sample_models(config, plan, schedule, settings)
    n_folds = min(settings["folds"] or plan.n_folds, plan.n_folds)
    return AdaptivePlan(plan.out, schedule, settings, models, n_folds, dict(plan.trial_spec_base))
