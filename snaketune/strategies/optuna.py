"""Model-based search with Optuna's samplers, in rounds: round r's ask job tells the sampler round
r-1's results and asks ``batch_size`` configurations (:mod:`snaketune.evaluation.rounds`)."""

from __future__ import annotations

from functools import cached_property

from snaketune.strategies.base import Strategy


class OptunaSearch(Strategy):
    kind = "optuna"
    rule_files = ("optuna.smk",)
    expands_space = False
    batched = False
    sampled = True
    extra_plots = ("optimization_history",)
    side_outputs = ("journal",)

    @cached_property
    def layout(self):
        """The :class:`~snaketune.evaluation.rounds.OptunaPlan`."""
        from snaketune.evaluation.rounds import setup

        return setup(self)

    def side_output_paths(self) -> list[str]:
        return [self.layout.journal_path]  # the study as Optuna storage

    def step_outputs(self) -> list[str]:
        return self.layout.ask_outputs

    def announce(self) -> str:
        return self.layout.summary()

    def plan_summary(self) -> dict:
        return dict(self.layout.to_summary(), classifier=self.plan.classifier)

    def plan_report(self) -> tuple[dict, str]:
        rounds = self.layout
        summary = {"rounds": rounds.n_rounds, "batch_size": rounds.batch_size, "configurations": rounds.n_trials}
        summary.update(folds=rounds.n_folds, trials=len(rounds.trial_paths))
        return summary, rounds.summary() + f" = {summary['trials']} trials"

    @classmethod
    def search_note(cls, spec) -> str:
        return (
            f"Model-based search: Optuna's {spec.get('sampler')} sampler (seed {spec.get('seed', 0)}), "
            f"{spec.get('n_trials')} configurations asked in rounds of {spec.get('batch_size')}; "
            "the study is also Optuna storage in optuna/journal.log (optuna-dashboard opens it)."
        )

    # ------------------------------------------------------------------ results
    @classmethod
    def row_trial_ids(cls, plan: dict) -> list[list[str]]:
        return [row["trial_ids"] for row in plan["rows"]]  # one row per asked configuration

    @classmethod
    def extra_columns(cls, plan: dict, records: dict, trial_ids) -> dict:
        return {"round": [row["round"] for row in plan["rows"]], "number": [row["number"] for row in plan["rows"]]}

    @classmethod
    def best_summary(cls, plan: dict, records: dict, trial_ids, results: dict, best: int) -> dict:
        settings = {k: v for k, v in plan["settings"].items() if k != "params"}
        return {"round": int(results["round"][best]), "number": int(results["number"][best]), cls.kind: settings}
