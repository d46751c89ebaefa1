"""Hyperband (and, as its one-bracket case, successive halving): a static DAG of slots in rungs,
promotion between rungs (:mod:`snaketune.evaluation.adaptive`, :mod:`snaketune.evaluation.slots`).

Rows are slots (a model at one rung) with scikit-learn's successive-halving columns ``iter`` and
``n_resources``; the best is chosen among the last rung's rows of every bracket.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from snaketune.strategies.base import Strategy
from snaketune.strategies.jobs import JobSettings, TrialJob, call_args, call_file, fixed

SELECTION = "best of the final rung of every bracket (mean test score of the refit metric; ties: first)"


class Hyperband(Strategy):
    kind = "hyperband"
    rule_files = ("adaptive.smk",)
    expands_space = False
    batched = False
    sampled = True
    budgeted = True
    extra_plots = ("score_vs_resource",)
    side_outputs = ("history",)
    selection_note = ", final rung of each bracket"

    @cached_property
    def layout(self):
        """The :class:`~snaketune.evaluation.adaptive.AdaptivePlan`."""
        from snaketune.evaluation.adaptive import setup

        return setup(self)

    def side_output_paths(self) -> list[str]:
        return [f"{self.plan.out}/history.csv"]

    def trial_jobs(self, settings: JobSettings) -> list[TrialJob]:
        """Slot j of rung i of bracket b: one job of ordinary trials, one per fold, with a model
        state each; in rung i > 0 it trains the j-th survivor of rung i-1 (read from that rung's
        promotion file). ``trials_per_job`` > 1 or ``auto`` puts several slots of one rung in a
        job (a rung of 256 one-call models is not 256 jobs)."""
        slots, out, data = self.layout, self.plan.out, settings.data_inputs
        groups = slots.slot_groups(self.config.get("trials_per_job", "auto"))
        if all(len(group) == 1 for _, _, group in groups):

            def slot(wc) -> tuple[int, int, int]:
                return int(wc.bracket), int(wc.rung), int(wc.slot)

            unit = f"{out}/trials/b{{bracket}}-r{{rung}}-s{{slot}}"
            return [
                TrialJob(
                    name="slot",
                    outputs={
                        "trials": [f"{unit}_{k}.json" for k in range(slots.n_folds)],
                        "states": [f"{unit}_{k}.pkl" for k in range(slots.n_folds)],
                    },
                    log=f"{out}/logs/slots/b{{bracket}}-r{{rung}}-s{{slot}}.log",
                    call=lambda wc: call_args(specs=slots.slot_specs(*slot(wc)), outputs=slots.slot_trials(*slot(wc))),
                    # Later rungs start from the previous promotion (rung 0: sampled, or proposed).
                    inputs=lambda wc: dict(slots.slot_inputs(*slot(wc)[:2]), **data),
                    # Promoted models first, better ones (lower slots) first: the "high scores" scheme.
                    priority=lambda wc: slots.priority(*slot(wc)),
                )
            ]
        jobs = []
        for b, i, group in groups:
            trials = [p for j in group for p in slots.slot_trials(b, i, j)]
            specs = [s for j in group for s in slots.slot_specs(b, i, j)]
            jobs.append(
                TrialJob(
                    name=f"slots_b{b}_r{i}_s{group[0]}",
                    outputs={"trials": trials, "states": [p.removesuffix(".json") + ".pkl" for p in trials]},
                    log=f"{out}/logs/slots/b{b}-r{i}-s{group[0]}-{group[-1]}.log",
                    call=call_file(out, specs=specs, outputs=trials),
                    inputs=fixed(dict(slots.slot_inputs(b, i), **data)),
                    priority=slots.priority(b, i, group[0]),
                )
            )
        return jobs

    def announce(self) -> str:
        return self.layout.summary()

    def plan_summary(self) -> dict:
        return dict(self.layout.to_summary(), classifier=self.plan.classifier)

    def refit_budget(self) -> dict:
        slots = self.layout
        b = slots.schedule.brackets[0]
        return slots.budget(b.id, len(b.rungs) - 1).to_dict()

    @classmethod
    def early_plan_report(cls, spec) -> tuple[dict, str]:
        schedule = cls.schedule(spec)
        return schedule.to_dict(), schedule.table()

    def plan_report(self) -> tuple[dict, str]:
        return self.early_plan_report(self.spec)

    @classmethod
    def schedule(cls, spec: dict):
        from snaketune.search.hyperband import hyperband_schedule

        return hyperband_schedule(
            spec["max_iter"], spec.get("aggressiveness", 3), spec.get("resource", "partial_fit"), kind=cls.kind
        )

    @classmethod
    def search_note(cls, spec) -> str:
        return (
            f"Hyperband: max_iter {spec.get('max_iter')}, aggressiveness {spec.get('aggressiveness', 3)}, "
            f"resource {spec.get('resource', 'partial_fit')} (python -m snaketune plan prints the brackets)."
        )

    # ------------------------------------------------------------------ results
    @classmethod
    def row_trial_ids(cls, plan: dict) -> list[list[str]]:
        return [s["trial_ids"] for s in plan["slots"]]

    @classmethod
    def extra_columns(cls, plan: dict, records: dict, trial_ids) -> dict:
        rows = plan["slots"]
        return {
            "iter": [s["iter"] for s in rows],
            "n_resources": [s["n_resources"] for s in rows],
            "bracket": [s["bracket"] for s in rows],
            "model_id": [records[ids[0]].model_id for ids in trial_ids],
            "final_rung": [s["final"] for s in rows],
            "stopped_early": [all(records[t].stopped for t in ids) for ids in trial_ids],
        }

    @classmethod
    def eligible(cls, results: dict) -> np.ndarray:
        return np.asarray(results["final_rung"], dtype=bool)

    @classmethod
    def best_summary(cls, plan: dict, records: dict, trial_ids, results: dict, best: int) -> dict:
        """Where the best sits, the plan and what the search used."""
        top_units: dict[tuple, int] = {}
        for r in records.values():
            key = (r.bracket, r.model_id)
            top_units[key] = max(top_units.get(key, 0), r.budget or 0)
        evaluated = list(records.values())
        return {
            "model_id": str(results["model_id"][best]),
            "bracket": int(results["bracket"][best]),
            "rung": int(results["iter"][best]),
            "n_resources": int(results["n_resources"][best]),
            "stopped_early": bool(results["stopped_early"][best]),
            "mean_test_scores": {
                k.removeprefix("mean_test_"): v[best] for k, v in results.items() if k.startswith("mean_test_")
            },
            "settings": plan["settings"],
            "plan": plan["schedule"],
            "used": {
                "n_models": len(top_units),
                "units": int(sum(top_units.values())),
                "units_trained": int(sum(r.units_trained or 0 for r in evaluated) // max(plan["n_folds"], 1)),
                "n_evaluations": len(trial_ids),
                "stopped_early": sum(1 for r in evaluated if r.stopped and not r.carried),
                "failed": sum(1 for r in evaluated if not r.ok),
                "reused": sum(1 for r in evaluated if r.reused),
            },
            "selection": SELECTION,
        }
