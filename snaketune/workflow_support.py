"""What the Snakefile needs at parse time: the validated config, the plan, the target list.

Kept out of the rule files so it is importable and tested without Snakemake.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from snaketune.config import ConfigError, load_config, read_yaml
from snaketune.plan import Plan, make_plan


@dataclass
class Study:
    config: dict
    plan: Plan

    @property
    def adaptive(self) -> bool:
        return bool({"hyperband", "successive_halving"} & set(self.config["search"]))

    @property
    def out(self) -> str:
        return self.plan.out

    def plot_names(self) -> list[str]:
        from snaketune.plots import plot_names

        return plot_names(self.config)

    def final_outputs(self) -> list[str]:
        if self.adaptive:
            from snaketune.hyperband_workflow import final_outputs

            return final_outputs(self)
        out = self.out
        return [
            f"{out}/leaderboard.csv",
            f"{out}/leaderboard.md",
            f"{out}/best.json",
            f"{out}/model.pkl",
            f"{out}/refit.json",
        ] + [f"{out}/plots/{name}.png" for name in self.plot_names()]


def _fail(error: ConfigError) -> None:
    # One line per problem and no traceback: exit before Snakemake builds any job.
    print(str(error), file=sys.stderr)
    sys.exit(1)


def load_study(config: dict, workflow=None, basedir: str | Path = ".") -> Study:
    """Validate the config Snakemake loaded (or ./config.yaml) and build the plan.

    Called at parse time by every Snakemake process; only the main process checks the data
    source (that reads it), cluster jobs re-parsing the workflow skip it.
    """
    main_process = True
    if workflow is not None:
        from snakemake.settings.types import ExecMode

        main_process = workflow.exec_mode == ExecMode.DEFAULT
    try:
        if not config:
            config = read_yaml(Path(basedir) / "config.yaml")
        study_config = load_config(config, basedir, check_data=main_process)
        candidates = [] if {"hyperband", "successive_halving"} & set(study_config["search"]) else None
        plan = make_plan(study_config, basedir, candidates=candidates)
    except ConfigError as error:
        _fail(error)
    set_trial_environment(study_config)
    return Study(study_config, plan)


def set_trial_environment(config: dict) -> None:
    """Settings that change how a trial runs but not its result travel as environment
    variables, so changing them does not trigger Snakemake's params rerun check."""
    os.environ["SNAKETUNE_TRIAL_TIMEOUT"] = str(config.get("trial_timeout") or "")
    os.environ["SNAKETUNE_ERROR_SCORE"] = "raise" if config["error_score"] == "raise" else ""


def spec_json(plan: Plan, trial_id: str) -> str:
    return json.dumps(plan.spec(trial_id), sort_keys=True, separators=(",", ":"))


def plan_summary(plan: Plan) -> dict:
    """What the aggregate step needs of the plan (JSON-able, so it can be a rule param)."""
    from snaketune.jsonutil import to_jsonable

    return {
        "candidates": to_jsonable(plan.candidates),
        "config_keys": plan.config_keys,
        "n_folds": plan.n_folds,
    }


def start_worker(study: Study, workflow):
    """Start the warm worker for a local, non-dry run when the config enables it."""
    from snakemake.settings.types import ExecMode

    from snaketune import worker

    if not study.config.get("worker", True) or study.adaptive:
        return None
    if not workflow.local_exec or workflow.exec_mode != ExecMode.DEFAULT or workflow.dryrun:
        return None
    proc = worker.start(study.out, f"{study.out}/logs/worker.log")
    worker.wait_ready(os.environ[worker.ENV_ADDRESS], timeout=15)
    return proc


def stop_worker(proc) -> None:
    from snaketune import worker

    worker.stop(proc)


def print_top(study: Study, n: int = 5) -> None:
    """Show the top-n table at the end of a successful run."""
    path = Path(study.out) / "leaderboard.md"
    if study.adaptive or not path.exists():
        return
    lines = path.read_text().splitlines()
    print(f"\nTop {n} of study {study.config['study']!r} ({path}):")
    print("\n".join(lines[2 : 4 + n]))
