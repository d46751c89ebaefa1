"""BOHB (Falkner, Klein, Hutter 2018): Hyperband whose brackets draw their new configurations
from a TPE model of the results so far, written against the strategy interface only.

Brackets run one after another (most exploratory first, as Hyperband schedules them). Before
bracket ``b`` starts, its ``propose`` step reads every trial of the brackets before it, takes the
largest budget (units) with at least ``min_points_in_model`` scored models, fits Optuna's
``TPESampler(multivariate=True)`` on those (configuration, mean CV score) pairs and asks it for
the bracket's configurations; a ``random_fraction`` of them (and all of them while no budget has
enough points) are drawn at random instead, as in BOHB. The bracket's rung-0 slots read their
configuration from ``bohb/b<b>/proposals.json`` at run time, as a promoted slot reads its
survivor from the promotion file; promotion, budgets, rows, columns and selection are
Hyperband's (:class:`~snaketune.strategies.hyperband.Hyperband`).

Reproducible: every random choice is seeded by ``seed`` and the bracket, and the model sees the
trial results in slot order, so the same config gives the same proposals on 1 or N cores. A
proposal file is written atomically and kept; a kill mid-bracket resumes with the same file.
Categorical choices (lists, which may hold lists such as ``hidden_layer_sizes``) are given to
Optuna as indices into the list, so any value random search takes, BOHB takes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

from snaketune.base.jsonutil import digest, to_jsonable, write_json_atomic
from snaketune.evaluation.adaptive import AdaptivePlan, adaptive_defining
from snaketune.strategies.hyperband import Hyperband

RANDOM_FRACTION = 1 / 3  # BOHB's default share of random configurations


@dataclass
class BohbPlan(AdaptivePlan):
    """Hyperband's slots, with every bracket's rung 0 read from its proposal file."""

    defining: dict | None = None

    def proposals_path(self, b: int) -> str:
        return f"{self.out}/bohb/b{b}/proposals.json"

    def slot_inputs(self, b: int, i: int) -> dict:
        if i == 0:
            return {"promotion": self.proposals_path(b)}
        return super().slot_inputs(b, i)

    def slot_specs(self, b: int, i: int, j: int) -> list[dict]:
        if i > 0:
            return super().slot_specs(b, i, j)
        slot = {"bracket": b, "rung": 0, "slot": j, "promotion": self.proposals_path(b), "model_id": None}
        budget = self.budget(b, 0).to_dict()
        return [
            dict(self.base, trial_id=f"{self.slot_id(b, 0, j)}_{k}", fold=k, budget=budget, slot=slot)
            for k in range(self.n_folds)
        ]

    def earlier_slots(self, b: int) -> list[dict]:
        """Every slot of the brackets scheduled before ``b``: its units and fold trial files."""
        order = [bracket.id for bracket in self.schedule.brackets]
        before = set(order[: order.index(b)])
        return [
            {"units": self.schedule.bracket(c).rungs[i].units, "trials": self.slot_trials(c, i, j)}
            for c, i, j in self.slots
            if c in before
        ]

    def propose_args(self, b: int, spec: dict) -> dict:
        return {
            "bracket": b,
            "n": self.schedule.bracket(b).rungs[0].n_models,
            "params": spec["params"],
            "seed": int(spec.get("seed", 0)),
            "random_fraction": float(spec.get("random_fraction", RANDOM_FRACTION)),
            "min_points_in_model": spec.get("min_points_in_model"),
            "refit": self.settings["refit"],
            "defining": self.defining,
            "observed": self.earlier_slots(b),
        }


class Bohb(Hyperband):
    kind = "bohb"
    rule_files = ("adaptive.smk", "bohb.smk")

    @cached_property
    def layout(self) -> BohbPlan:
        from snaketune.evaluation.adaptive import adaptive_settings

        config, plan = self.config, self.plan
        schedule = self.schedule(self.spec)
        settings = adaptive_settings(config, schedule, plan.classifier)
        n_folds = min(settings["folds"] or plan.n_folds, plan.n_folds)
        defining = adaptive_defining(config, plan, settings)
        return BohbPlan(plan.out, schedule, settings, {}, n_folds, dict(plan.trial_spec_base), defining=defining)

    def step_outputs(self) -> list[str]:
        return [self.layout.proposals_path(b.id) for b in self.layout.schedule.brackets]

    def propose_args(self, b: int) -> dict:
        return dict(self.layout.propose_args(b, self.spec), strategy=self.kind, step="propose")

    @classmethod
    def search_note(cls, spec) -> str:
        return (
            f"BOHB: Hyperband (max_iter {spec.get('max_iter')}, aggressiveness {spec.get('aggressiveness', 3)}) "
            f"whose brackets, one after another, take new configurations from Optuna's multivariate TPE "
            f"fitted on the results so far (random fraction {spec.get('random_fraction', RANDOM_FRACTION):.2f})."
        )

    @classmethod
    def run_step(cls, step: str, *, outputs: list[str], **kwargs) -> str:
        if step != "propose":
            raise ValueError(f"{cls.kind}: no step {step!r}")
        doc = propose(**kwargs)
        write_json_atomic(outputs[0], doc)
        how = f"TPE on {doc['n_observations']} models at {doc['budget']} units" if doc["budget"] else "no model yet"
        return (
            f"bracket {kwargs['bracket']}: {len(doc['survivors'])} configurations ({how}, {sum(doc['random'])} random)"
        )


# ----------------------------------------------------------------------------------------------
# The propose step (runs in a job)


def encoded_space(params: dict):
    """Optuna distributions of ``params`` (sorted names) and the decoder back to values: lists
    become a categorical over indices, distributions stay what they are."""
    from optuna.distributions import CategoricalDistribution

    from snaketune.search.optuna_space import distributions
    from snaketune.search.space import expand_values

    dists, choices = {}, {}
    for name, dist in distributions(params).items():
        if isinstance(dist, CategoricalDistribution):
            choices[name] = expand_values(params[name])
            dist = CategoricalDistribution(list(range(len(choices[name]))))
        dists[name] = dist

    def decode(encoded: dict) -> dict:
        return {k: choices[k][v] if k in choices else v for k, v in encoded.items()}

    def encode(values: dict) -> dict:
        out = {}
        for k, v in values.items():
            if k in choices:
                out[k] = next(i for i, c in enumerate(choices[k]) if to_jsonable(c) == to_jsonable(v))
            else:
                out[k] = v
        return out

    return dists, decode, encode


def observations(observed: list[dict], refit: str) -> dict[int, list[tuple[dict, float]]]:
    """units -> [(params, mean test score of the refit metric)] of every scored slot, slot order.
    A slot with a failed fold is left out (BOHB gives a crashed run no score to model)."""
    from snaketune.evaluation.records import read_record
    from snaketune.evaluation.slots import slot_score

    by_units: dict[int, list[tuple[dict, float]]] = {}
    for slot in observed:
        records = [read_record(p) for p in slot["trials"]]
        score = slot_score(records, refit)
        if math.isfinite(score):
            by_units.setdefault(int(slot["units"]), []).append((records[0].params, score))
    return by_units


def model_budget(by_units: dict, min_points: int) -> int | None:
    """BOHB's rule: the largest budget with at least ``min_points`` observations, or None."""
    enough = [u for u, obs in by_units.items() if len(obs) >= min_points]
    return max(enough) if enough else None


def tpe_sampler(seed: int):
    """Optuna's multivariate TPE, used from the first observation (BOHB's ``min_points_in_model``
    decides when a model is fitted). Its good/bad split is Optuna's (the top 10 %, at most 25)
    rather than BOHB's 15 %: Optuna 5 deprecates a custom ``gamma``."""
    import optuna

    return optuna.samplers.TPESampler(multivariate=True, seed=seed, n_startup_trials=0)


def propose(
    *,
    bracket: int,
    n: int,
    params: dict,
    seed: int,
    random_fraction: float,
    min_points_in_model: int | None,
    refit: str,
    defining: dict,
    observed: list[dict],
) -> dict:
    """Bracket ``bracket``'s ``n`` configurations (the proposal file's content)."""
    import numpy as np
    import optuna
    from optuna.trial import create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists, decode, encode = encoded_space(params)
    min_points = max(int(min_points_in_model or 0), len(dists) + 1)
    by_units = observations(observed, refit)
    budget = model_budget(by_units, min_points)
    rng = np.random.default_rng([seed, bracket])
    random = [True] * n if budget is None else [bool(u < random_fraction) for u in rng.random(n)]
    sampled = []
    n_model = n - sum(random)
    if n_model:
        study = optuna.create_study(direction="maximize", sampler=tpe_sampler(seed + bracket))
        for values, score in by_units[budget]:
            study.add_trial(create_trial(params=encode(values), distributions=dists, value=score))
        model = [study.ask(dists).params for _ in range(n_model)]
    if sum(random):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed + bracket))
        drawn = [study.ask(dists).params for _ in range(sum(random))]
    model_iter, random_iter = iter(model if n_model else []), iter(drawn if sum(random) else [])
    for is_random in random:
        sampled.append(decode(next(random_iter) if is_random else next(model_iter)))
    survivors = []
    for j, p in enumerate(sampled):
        p = to_jsonable(p)
        survivors.append({"model_id": f"b{bracket}-{j}", "config_key": digest(dict(defining, params=p)), "params": p})
    return {
        "bracket": bracket,
        "budget": budget,
        "n_observations": len(by_units.get(budget, [])) if budget is not None else 0,
        "min_points_in_model": min_points,
        "random": random,
        "survivors": survivors,
    }
