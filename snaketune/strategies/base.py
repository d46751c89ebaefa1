"""The strategy protocol: what every search strategy tells the rest of the package.

In the spirit of scikit-learn's ``_run_search`` and Optuna's ``BaseSampler``: a strategy is a
small class that knows its plan (trials, slots or rounds), the trial files and the extra targets
its rules produce, the rule files it needs, the columns it adds to ``cv_results_`` (as
scikit-learn's ``more_results``), which rows the best is chosen from, its plots and its plan
summary. Parse-time hooks are methods of an instance built from the validated config and the
base :class:`~snaketune.search.plan.Plan`; aggregation hooks are class methods of the JSON plan
summary, because the aggregate job gets the summary, not the Study.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, ClassVar

from snaketune.base.jsonutil import to_jsonable

if TYPE_CHECKING:
    import numpy as np

    from snaketune.search.plan import Plan
    from snaketune.strategies.jobs import JobSettings, TrialJob


def search_section(config: dict) -> tuple[str, dict | list]:
    """The kind and spec of a config's ``search`` section (exactly one key)."""
    ((kind, spec),) = config["search"].items()
    return kind, spec


class Strategy:
    """One search strategy. Subclasses set :attr:`kind` and override what differs.

    The default is a search over a fixed list of candidates (grid and random search): one trial
    per (candidate, fold), batched with ``trials_per_job``, one leaderboard row per candidate,
    the best among all rows.
    """

    kind: ClassVar[str] = ""
    #: Rule files (in ``workflow/rules/``) of the strategy's own steps (promote, ask, propose);
    #: its trials run through the one trial rule (``trials.smk``) from :meth:`trial_jobs`.
    rule_files: ClassVar[tuple[str, ...]] = ()
    #: Does the base plan expand the space into candidates (False: the strategy names its own)?
    expands_space: ClassVar[bool] = True
    #: Can trials be batched by ``trials_per_job`` into manifests (grid/random's batches)?
    batched: ClassVar[bool] = True
    #: Configurations sampled rather than laid out (no trend line; a surrogate ranks parameters).
    sampled: ClassVar[bool] = False
    #: Trials trained on a budget (slots of rungs): the run header counts budgeted trials.
    budgeted: ClassVar[bool] = False
    #: Plots beyond the common ones (names of ``results/plots.PLOT_TITLES``).
    extra_plots: ClassVar[tuple[str, ...]] = ()
    #: Result files beyond leaderboard.csv/.md and best.json, by role (the writer aggregation runs).
    side_outputs: ClassVar[tuple[str, ...]] = ()
    #: Leaderboard heading note on which rows the table and the best come from.
    selection_note: ClassVar[str] = ""
    #: Modules its steps import, which the warm worker imports while Snakemake builds the DAG
    #: (so the first step does not): third-party libraries only, never user code.
    worker_imports: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: dict, plan: Plan):
        self.config = config
        self.plan = plan

    @property
    def spec(self):
        return search_section(self.config)[1]

    # ------------------------------------------------------------------ plan (parse time)
    @cached_property
    def layout(self):
        """The strategy's own plan (slots or rounds) with ``slots``, ``slot_trials(*slot)`` and
        ``n_folds``; None when the rows are the base plan's candidates."""
        return None

    @property
    def n_folds(self) -> int:
        return self.layout.n_folds if self.layout is not None else self.plan.n_folds

    @property
    def trial_paths(self) -> list[str]:
        return self.layout.trial_paths if self.layout is not None else self.plan.trial_paths

    def rows(self) -> list[list[str]]:
        """The trial files of every leaderboard row, one list per row."""
        if self.layout is not None:
            return [self.layout.slot_trials(*s) for s in self.layout.slots]
        plan = self.plan
        return [[plan.trial_path(f"{key}_{k}") for k in range(plan.n_folds)] for key in plan.config_keys]

    @property
    def n_configs(self) -> int:
        return len(self.rows())

    def side_output_paths(self) -> list[str]:
        """Paths of :attr:`side_outputs`, in that order."""
        return []

    def step_outputs(self) -> list[str]:
        """Files of the strategy's own steps that are targets (ask files: Snakemake does not redo a
        deleted intermediate file)."""
        return []

    def trial_jobs(self, settings: JobSettings) -> list[TrialJob]:
        """The jobs of the one trial rule: a wildcard pattern when every unit is its own job, else
        one per batch (:mod:`snaketune.strategies.jobs`)."""
        from snaketune.strategies.jobs import candidate_jobs

        return candidate_jobs(self.plan, settings)

    def announce(self) -> str | None:
        """One line printed when the main process parses the workflow, or None."""
        return None

    def plan_summary(self) -> dict:
        """What aggregation needs of the plan (JSON-able)."""
        plan = self.plan
        return {
            "candidates": to_jsonable(plan.candidates),
            "config_keys": plan.config_keys,
            "n_folds": plan.n_folds,
            "classifier": plan.classifier,
        }

    def refit_budget(self) -> dict | None:
        """How the refit trains the best (a budget), or None: a plain fit."""
        return None

    def plan_report(self) -> tuple[dict, str]:
        """``snaketune plan``: a JSON-able summary and its one-line text."""
        summary = {"candidates": len(self.plan.candidates), "folds": self.plan.n_folds, "trials": len(self.trial_paths)}
        text = f"{summary['candidates']} configurations x {summary['folds']} folds = {summary['trials']} trials"
        return summary, text

    @classmethod
    def early_plan_report(cls, spec) -> tuple[dict, str] | None:
        """``snaketune plan`` before the config is valid (a schedule needs only its budget keys)."""
        return None

    @classmethod
    def search_note(cls, spec) -> str:
        """One sentence on the search for the report's study page."""
        return cls.kind

    @classmethod
    def run_step(cls, step: str, *, outputs: list[str], **kwargs) -> str:
        """Run one of the strategy's own steps in a job (the registered call ``step``); returns
        the log line."""
        raise ValueError(f"{cls.kind}: no step {step!r}")

    # ------------------------------------------------------------------ results (aggregate job)
    @classmethod
    def row_trial_ids(cls, plan: dict) -> list[list[str]]:
        """Trial ids per leaderboard row, from :meth:`plan_summary`."""
        return [[f"{key}_{k}" for k in range(plan["n_folds"])] for key in plan["config_keys"]]

    @classmethod
    def extra_columns(cls, plan: dict, records: dict, trial_ids: list[list[str]]) -> dict | None:
        """Columns added to ``cv_results_`` (scikit-learn's ``more_results``), or None."""
        return None

    @classmethod
    def eligible(cls, results: dict) -> np.ndarray | None:
        """Rows the best is chosen from and the table shows (a boolean mask); None: every row."""
        return None

    @classmethod
    def best_summary(cls, plan: dict, records: dict, trial_ids, results: dict, best: int) -> dict:
        """What best.json adds: where the best sits, the settings."""
        return {}
