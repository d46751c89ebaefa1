"""What the Snakefile needs at parse time: the validated config, the plan, the target list.

Kept out of the rule files so it is importable and tested without Snakemake.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from snaketune.config.load import ConfigError, load_config, read_yaml
from snaketune.search.plan import Plan, make_plan


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
        from snaketune.results.plots import plot_names

        return plot_names(self.config)

    def final_outputs(self) -> list[str]:
        if self.adaptive:
            from snaketune.evaluation.adaptive import final_outputs

            return final_outputs(self)
        out = self.out
        return (
            [
                f"{out}/leaderboard.csv",
                f"{out}/leaderboard.md",
                f"{out}/best.json",
                f"{out}/model.pkl",
                f"{out}/refit.json",
            ]
            + [f"{out}/plots/{name}.png" for name in self.plot_names()]
            + [f"{out}/report/{page}.html" for page in ("leaderboard", "best", "study")]
            + self.plan.trial_paths
        )  # targets too: Snakemake does not redo a deleted intermediate file


def fail_config(error: ConfigError) -> None:
    # One line per problem and no traceback: exit before Snakemake builds any job.
    print(str(error), file=sys.stderr, flush=True)
    sys.exit(1)


def load_study(config: dict, workflow=None, basedir: str | Path = ".") -> Study:
    """Validate the config Snakemake loaded (or ./config.yaml) and build the plan.

    Called at parse time by every Snakemake process; only the main process checks the data
    source (that reads it), cluster jobs re-parsing the workflow skip it. Any problem ends the
    process with one ``config error:`` line each and exit status 1, before a job is scheduled.

    Parameters
    ----------
    config : dict
        Snakemake's ``config`` (from ``--configfile``/``--config``); empty means ./config.yaml.
    workflow : snakemake.workflow.Workflow, optional
        The running workflow, to tell the main process from jobs and find ``--configfile`` paths.
    basedir : path
        Folder that relative data paths are resolved against.
    """
    main_process = True
    configfiles = []
    if workflow is not None:
        main_process = is_main_process(workflow)
        configfiles = list(getattr(workflow, "overwrite_configfiles", None) or [])
    try:
        if not config:
            config = read_yaml(Path(basedir) / "config.yaml")
        elif main_process:
            # Snakemake parsed --configfile with a loader that accepts duplicate keys and Python
            # tags; reading it again as plain data reports those with file and line.
            problems = []
            for path in configfiles:
                try:
                    read_yaml(path)
                except ConfigError as error:
                    problems += error.problems
            if problems:
                raise ConfigError(problems)
        cache = _plan_cache_path(config, basedir, main_process)
        cached = _read_plan_cache(cache)
        if cached is not None:
            study_config, plan = cached
        else:
            study_config = load_config(config, basedir, check_data=main_process)
            candidates = [] if {"hyperband", "successive_halving"} & set(study_config["search"]) else None
            try:
                plan = make_plan(study_config, basedir, candidates=candidates)
            except Exception as exc:  # noqa: BLE001 - the checks missed something: still one line
                message = " ".join(str(exc).split())
                raise ConfigError([f"search: cannot plan the trials: {type(exc).__name__}: {message}"]) from None
            _write_plan_cache(cache, study_config, plan)
    except ConfigError as error:
        fail_config(error)
    set_trial_environment(study_config)
    return Study(study_config, plan)


# Parse-time cache: every Snakemake process (and every cluster job) parses the workflow again.
# Validating against scikit-learn and expanding the space import scikit-learn (~1.4 s); a config
# seen before, with the same data files, library versions and snaketune code, skips both.
_VERSIONED = ("scikit-learn", "numpy", "scipy", "snakemake")


def _plan_cache_path(config: dict, basedir, main_process: bool) -> Path | None:
    import importlib.metadata
    import re

    from snaketune.base.data import source_digest
    from snaketune.base.jsonutil import digest, file_sha256

    study, output_dir = config.get("study"), config.get("output_dir", "results")
    if not (isinstance(study, str) and re.fullmatch(r"[A-Za-z0-9_-]+", study)):
        return None
    if (
        not isinstance(output_dir, str)
        or not output_dir
        or Path(output_dir).is_absolute()
        or ".." in Path(output_dir).parts
    ):
        return None
    try:
        data = source_digest(config.get("data") or {}, Path(basedir))
        versions = {name: importlib.metadata.version(name) for name in _VERSIONED}
    except Exception:  # noqa: BLE001 - a missing file etc.: validate the slow way, which reports it
        return None
    package = Path(__file__).resolve().parents[1]
    code = [file_sha256(p) for p in sorted(package.rglob("*.py"))]
    code.append(file_sha256(package.parent / "workflow" / "schemas" / "config.schema.yaml"))
    key = digest({"config": config, "data": data, "versions": versions, "code": code, "main": main_process}, 20)
    return Path(basedir) / output_dir / study / ".snaketune" / f"plan-{key}.json"


def _read_plan_cache(path: Path | None):
    if path is None or not path.exists():
        return None
    from snaketune.search.space import as_candidate

    try:
        saved = json.loads(path.read_text())
        fields = saved["plan"]
        fields["candidates"] = [{k: as_candidate(v) for k, v in c.items()} for c in fields["candidates"]]
        return saved["config"], Plan(**fields)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_plan_cache(path: Path | None, config: dict, plan: Plan) -> None:
    if path is None:
        return
    from snaketune.base.jsonutil import write_json_atomic

    fields = {
        "out": plan.out,
        "data_key": plan.data_key,
        "cv_key": plan.cv_key,
        "n_folds": plan.n_folds,
        "candidates": plan.candidates,
        "config_keys": plan.config_keys,
        "trial_spec_base": plan.trial_spec_base,
        "classifier": plan.classifier,
    }
    try:
        write_json_atomic(path, {"config": config, "plan": fields})
    except OSError:
        pass


def export_job_environment(basedir: str) -> None:
    """Environment every job inherits: the package on PYTHONPATH, this Python first on PATH,
    and SNAKETUNE_HOME for the trial client's path (absolute, so --directory works)."""
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (basedir, os.environ.get("PYTHONPATH")) if p)
    os.environ["PATH"] = os.pathsep.join((os.path.dirname(sys.executable), os.environ.get("PATH", "")))
    os.environ["SNAKETUNE_HOME"] = basedir


def set_trial_environment(config: dict) -> None:
    """Settings that change how a trial runs but not its result travel as environment
    variables, so changing them does not trigger Snakemake's params rerun check."""
    os.environ["SNAKETUNE_TRIAL_TIMEOUT"] = str(config.get("trial_timeout") or "")
    os.environ["SNAKETUNE_ERROR_SCORE"] = "raise" if config["error_score"] == "raise" else ""
    os.environ["SNAKETUNE_CACHE"] = f"{config['output_dir']}/{config['study']}/.cache/trials"


def spec_json(plan: Plan, trial_id: str) -> str:
    return json.dumps(plan.spec(trial_id), sort_keys=True, separators=(",", ":"))


def plan_summary(plan: Plan) -> dict:
    """What the aggregate step needs of the plan (JSON-able, so it can be a rule param)."""
    from snaketune.base.jsonutil import to_jsonable

    return {
        "candidates": to_jsonable(plan.candidates),
        "config_keys": plan.config_keys,
        "n_folds": plan.n_folds,
    }


def start_worker(study: Study, workflow):
    """Start the warm worker for a local, non-dry run when the config enables it."""
    from snaketune.runtime import worker

    if not study.config.get("worker", True):
        return None
    if not workflow.local_exec or not is_main_process(workflow) or workflow.dryrun:
        return None
    proc = worker.start(study.out, f"{study.out}/logs/worker.log")
    worker.wait_ready(os.environ[worker.ENV_ADDRESS], timeout=15)
    return proc


def stop_worker(proc) -> None:
    from snaketune.runtime import worker

    worker.stop(proc)


def print_top(study: Study, n: int = 5) -> None:
    """Show the top-n table at the end of a successful run."""
    path = Path(study.out) / "leaderboard.md"
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.startswith("|")]
    print(f"\nTop {n} of study {study.config['study']!r} ({path}):")
    print("\n".join(lines[: 2 + n]))


def batches(study: Study, workflow=None) -> dict[str, list[str]]:
    """Batches of trials for ``trials_per_job`` (``auto`` measured in the main process only)."""
    from snaketune.runtime.batching import make_batches, resolve_trials_per_job

    if study.adaptive:
        return {}
    main_process, cores = True, 1
    if workflow is not None:
        main_process = is_main_process(workflow)
        try:
            cores = workflow.cores or 1
        except Exception:  # noqa: BLE001 - `--report` and `--lint` run without --cores
            cores = 1
    per_job = resolve_trials_per_job(study.config, study.plan, Path("."), cores, measure=main_process)
    return make_batches(study.plan.config_keys, study.plan.n_folds, per_job)


def batch_spec_file(plan: Plan, trial_ids: list[str]) -> str:
    """Write a batch's trial specs once to ``<study>/.snaketune/batches/<digest>.json``; return
    ``@<path>`` for the trial client.

    A file, not a rule parameter: Snakemake stores a job's params and command with every output
    (a batch of 100 specs on each of its 100 files is megabytes of metadata), and one command-line
    argument is capped at 128 KiB. The name is a content hash, so the params check still reruns a
    batch whose trials change, and an existing file never needs rewriting.
    """
    from snaketune.base.jsonutil import digest

    specs = [plan.spec(t) for t in trial_ids]
    path = Path(plan.out) / ".snaketune" / "batches" / f"{digest(specs, 16)}.json"
    if not path.exists():
        from snaketune.base.jsonutil import write_json_atomic

        write_json_atomic(path, specs)
    return f"@{path}"


def is_main_process(workflow) -> bool:
    """The Snakemake process the user started (not a job re-parsing the workflow)."""
    from snakemake.settings.types import ExecMode

    return workflow.exec_mode == ExecMode.DEFAULT


def release_finished_trials(study: Study, snakemake_dir: str = ".snakemake") -> int:
    """Clear Snakemake's "incomplete" mark on trial files that are complete records.

    Snakemake marks a job's outputs incomplete when it starts the job and clears the mark when it
    notices the job ended. A ``kill -9`` between a trial's (atomic) write and that moment leaves a
    complete trial marked incomplete, and ``--rerun-incomplete`` would compute it again. A trial
    file exists only once it is whole, so a readable record needs no rerun. Reads Snakemake 9's
    file persistence layout (``.snakemake/incomplete/<urlsafe-b64 of the path>``); does nothing if
    that layout is absent. Returns the number of marks cleared.
    """
    import base64

    from snaketune.results.aggregate import CorruptTrialError, read_record

    root = Path(snakemake_dir) / "incomplete"
    if not root.is_dir():
        return 0
    prefix = f"{study.out}/trials/"
    cleared = 0
    for marker in root.rglob("*"):
        if not marker.is_file():
            continue
        parts = marker.relative_to(root).parts
        encoded = "".join(p.removeprefix("@") for p in parts)
        try:
            key = base64.urlsafe_b64decode(encoded.encode()).decode()
        except (ValueError, UnicodeDecodeError):
            continue
        if not (key.startswith(prefix) and key.endswith(".json")):
            continue
        try:
            read_record(key)
        except CorruptTrialError:
            continue  # missing or partial: leave it to --rerun-incomplete
        marker.unlink(missing_ok=True)
        cleared += 1
    return cleared
