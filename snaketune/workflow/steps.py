"""Call arguments of the workflow's steps that need the whole study: nested CV's outer refits and
a command study's refit (trial jobs: :mod:`snaketune.workflow.jobs`)."""

from __future__ import annotations

from snaketune.strategies.jobs import call_args, call_file
from snaketune.workflow.study import Study


def nested_outer_args(study: Study, o: int) -> str:
    """Outer fold ``o``: its inner plan (to pick the winner) and where its data and splits are."""
    nested, config = study.nested, study.config
    plan = nested.inner[o]
    return call_file(
        study.out,
        plan={"candidates": plan.candidates, "config_keys": plan.config_keys, "n_folds": plan.n_folds,
              "data_dir": plan.data_dir},
        config={k: config[k] for k in ("scoring", "refit", "error_score", "return_train_score", "estimator",
                                        "allowed_modules", "seed")},
        outer_splits=nested.outer_splits_path,
        outer_fold=o,
        trials_dir=f"{nested.out}/trials",
        outputs=[nested.outer_result_path(o)],
    )  # fmt: skip


def command_refit_args(study: Study) -> str:
    """The refit call of a command study."""
    command = study.command
    return call_args(
        best=f"{study.out}/best.json",
        spec=study.plan.trial_spec_base["command"],
        template=command.get("refit", False),
        seed=study.config["seed"],
        budget=study.refit_budget(),
        outputs=[f"{study.out}/refit.json"],
    )
