"""What the Snakefile needs at parse time: the validated config, the plan, the target list.

Kept out of the rule files so it is importable and tested without Snakemake.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from snaketune.config.load import ConfigError, load_config, read_yaml
from snaketune.search.plan import Plan, make_plan
from snaketune.strategies import jobs
from snaketune.strategies.base import Strategy
from snaketune.strategies.jobs import call_args
from snaketune.strategies.registry import strategy_class, strategy_for


@dataclass
class Study:
    """A validated study: its config, its trial plan and its search strategy."""

    config: dict
    plan: Plan
    # Grid/random search with trials_per_job > 1: batch id -> trial ids
    # (:func:`snaketune.workflow.jobs.batches`).
    batches: dict[str, list[str]] = field(default_factory=dict)

    @cached_property
    def strategy(self) -> Strategy:
        """The :class:`~snaketune.strategies.base.Strategy` of the config's ``search`` kind."""
        return strategy_for(self.config, self.plan)

    @property
    def command(self) -> dict | None:
        """The ``command:`` section of a command study (your own training script), else None."""
        return self.config.get("command")

    @property
    def out(self) -> str:
        return self.plan.out

    @property
    def trial_paths(self) -> list[str]:
        return self.strategy.trial_paths

    def batch_manifest(self, batch: str) -> str:
        return jobs.batch_manifest(self.out, batch)

    @property
    def job_outputs(self) -> list[str]:
        """What Snakemake tracks for the trials: one manifest a batch, else every trial file.

        A batched study tracks its batches, not its trials: a DAG of 10,000 trial files costs
        Snakemake seconds on every run, one of 64 batch manifests does not. Each trial still has
        its own file; :func:`~snaketune.workflow.jobs.release_broken_batches` makes a deleted trial
        file rerun its batch.
        """
        if self.batches:
            return [self.batch_manifest(b) for b in self.batches]
        return self.trial_paths

    @property
    def data_files(self) -> list[str]:
        """The files the prepare job writes to the data folder (arrays, or a table's Arrow files)."""
        from snaketune.base.data import stored_files

        return stored_files(self.config.get("data") or {})  # command studies have none

    def prepare_args(self) -> dict:
        """Extra arguments of the prepare call: time-series CV holds out the last rows; the
        estimator's task says whether a shuffled held-out split is stratified (given only then,
        so studies whose split it cannot change keep their call)."""
        from snaketune.base.splits import ordered
        from snaketune.search.plan import stratified_holdout_possible

        if ordered(self.config["cv"]):
            return {"ordered": True}
        if stratified_holdout_possible(self.config) and self.plan.task is not None:
            return {"task": self.plan.task}
        return {}

    def plot_names(self) -> list[str]:
        from snaketune.results.plots import plot_names

        return plot_names(self.config) + list(self.strategy.extra_plots)

    def leaderboard_outputs(self) -> list[str]:
        out = self.out
        return [
            f"{out}/leaderboard.csv",
            f"{out}/leaderboard.md",
            f"{out}/best.json",
        ] + self.strategy.side_output_paths()

    def plan_summary(self) -> dict:
        """What aggregation needs of the plan (JSON-able), with the strategy's kind (aggregation
        asks that strategy for rows, columns and the best); ``classifier`` chooses the CV advice
        (aggregation does not import scikit-learn to ask the estimator)."""
        return dict(self.strategy.plan_summary(), strategy=self.strategy.kind)

    def refit_budget(self) -> dict | None:
        """How the refit trains the best (a budgeted search's resource; units from best.json)."""
        return self.strategy.refit_budget()

    def final_outputs(self) -> list[str]:
        out = self.out
        return (
            self.leaderboard_outputs()
            + ([] if self.command else [f"{out}/model.pkl"])
            + [f"{out}/refit.json"]
            + [f"{out}/plots/{name}.png" for name in self.plot_names()]
            + [f"{out}/report/{page}.html" for page in ("leaderboard", "best", "study")]
            + self.job_outputs
            + self.nested_outputs()
            + self.strategy.step_outputs()
        )  # trials (and ask files) are targets too: Snakemake does not redo a deleted intermediate file

    @property
    def nested(self):
        """The :class:`~snaketune.search.nested.NestedPlan` when ``nested`` is set, else None."""
        if "_nested" not in self.__dict__:
            from snaketune.search.nested import make_nested_plan

            self.__dict__["_nested"] = make_nested_plan(self.config, self.plan)
        return self.__dict__["_nested"]

    def nested_outputs(self) -> list[str]:
        """nested.json, its plot and report page, and every inner trial (empty without ``nested``)."""
        if self.nested is None:
            return []
        out = self.out
        return [f"{out}/nested.json", f"{out}/plots/nested.png", f"{out}/report/nested.html"] + self.nested.trial_paths


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
        if not config or (workflow is not None and not configfiles and (Path(basedir) / "config.yaml").exists()):
            # No --configfile: ./config.yaml, with any --config values (e.g. from a profile) on
            # top, as Snakemake's own `configfile:` directive would merge them.
            overrides, config = config, read_yaml(Path(basedir) / "config.yaml")
            _merge(config, overrides)
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
        prestart_worker(config, workflow)
        cache = _plan_cache_path(config, basedir, main_process)
        cached = _read_plan_cache(cache)
        if cached is not None:
            study_config, plan = cached
        else:
            study_config = load_config(config, basedir, check_data=main_process)
            candidates = None if strategy_class(study_config).expands_space else []
            try:
                plan = make_plan(study_config, basedir, candidates=candidates)
            except Exception as exc:  # noqa: BLE001 - the checks missed something: still one line
                message = " ".join(str(exc).split())
                raise ConfigError([f"search: cannot plan the trials: {type(exc).__name__}: {message}"]) from None
            _write_plan_cache(cache, study_config, plan)
    except ConfigError as error:
        fail_config(error)
    set_run_settings(study_config)
    return Study(study_config, plan)


def _merge(config: dict, overrides: dict) -> None:
    """Deep-merge ``overrides`` into ``config`` (Snakemake's rule for ``--config`` values)."""
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            _merge(config[key], value)
        else:
            config[key] = value


# Parse-time cache: every Snakemake process (and every cluster job) parses the workflow again.
# Validating against scikit-learn and expanding the space import scikit-learn (~1.4 s); a config
# seen before, with the same data files, library versions and snaketune code, skips both.
_VERSIONED = ("scikit-learn", "numpy", "scipy", "snakemake")


def _study_folder(config: dict) -> str | None:
    """``<output_dir>/<study>`` of a raw (not yet validated) config, or None unless both are plain.

    Used before validation (parse cache, early worker) to write only where a valid config would.
    """
    import re

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
    return f"{output_dir}/{study}"


def _plan_cache_path(config: dict, basedir, main_process: bool) -> Path | None:
    import importlib.metadata

    from snaketune.base.data import source_digest
    from snaketune.base.jsonutil import digest, file_sha256

    if "command" in config:
        return None  # a command study hashes its input files at every parse (search/command.py)
    folder = _study_folder(config)
    if folder is None:
        return None
    try:
        data = source_digest(config.get("data") or {}, Path(basedir))
        versions = {name: importlib.metadata.version(name) for name in _VERSIONED}
    except Exception:  # noqa: BLE001 - a missing file etc.: validate the slow way, which reports it
        return None
    from snaketune.base.paths import schema_path

    package = Path(__file__).resolve().parents[1]
    code = [file_sha256(p) for p in sorted(package.rglob("*.py"))]
    code.append(file_sha256(schema_path()))
    key = digest({"config": config, "data": data, "versions": versions, "code": code, "main": main_process}, 20)
    return Path(basedir) / folder / ".snaketune" / f"plan-{key}.json"


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


def export_job_environment() -> str:
    """Environment every job inherits: the package on PYTHONPATH (SNAKETUNE_PACKAGE_PARENT for
    the job client, which runs isolated from it), this Python first on PATH, and SNAKETUNE_HOME,
    the workflow's folder (the job client's path; absolute, so --directory works).

    Found from the package, not from ``workflow.basedir``: in a Snakemake ``module`` that is the
    including Snakefile's folder. Returns the workflow's folder.
    """
    from snaketune.base.paths import PACKAGE_PARENT, workflow_root

    parent = str(PACKAGE_PARENT)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (parent, os.environ.get("PYTHONPATH")) if p)
    os.environ["PATH"] = os.pathsep.join((os.path.dirname(sys.executable), os.environ.get("PATH", "")))
    os.environ["SNAKETUNE_HOME"] = str(workflow_root())
    os.environ["SNAKETUNE_PACKAGE_PARENT"] = parent
    return os.environ["SNAKETUNE_HOME"]


def set_run_settings(config: dict) -> None:
    """How trials run (timeout, error_score raise, cache folder) as one JSON value every job
    inherits: not a rule parameter, so changing it does not rerun finished trials."""
    from snaketune.evaluation.records import RunSettings
    from snaketune.runtime.protocol import ENV_SETTINGS

    settings = RunSettings(
        timeout=config.get("trial_timeout") or None,
        raise_errors=config["error_score"] == "raise",
        cache_dir=os.path.abspath(f"{config['output_dir']}/{config['study']}/.cache/trials"),
    )
    os.environ[ENV_SETTINGS] = settings.to_json()


def nested_outer_args(study: Study, o: int) -> str:
    """Outer fold ``o``: its inner plan (to pick the winner) and where its data and splits are."""
    nested, config = study.nested, study.config
    plan = nested.inner[o]
    return call_file(
        study,
        plan={"candidates": plan.candidates, "config_keys": plan.config_keys, "n_folds": plan.n_folds,
              "data_dir": plan.data_dir},
        config={k: config[k] for k in ("scoring", "refit", "error_score", "return_train_score", "estimator",
                                        "allowed_modules", "seed")},
        outer_splits=nested.outer_splits_path,
        outer_fold=o,
        trials_dir=f"{nested.out}/trials",
        outputs=[nested.outer_result_path(o)],
    )  # fmt: skip


def _wants_worker(config: dict) -> bool:
    if not config.get("worker", True):
        return False
    command = config.get("command")
    # A command with its own conda env / container must run inside the job, not the worker.
    return not (isinstance(command, dict) and (command.get("conda") or command.get("container")))


# The worker started while this process parses the workflow (prestart_worker), until onstart
# adopts or stops it.
_EARLY_WORKER: dict = {}


def prestart_worker(config: dict, workflow) -> None:
    """Start the warm worker while Snakemake parses the workflow and builds the DAG.

    Its imports (~1 s) then overlap the config checks and the DAG instead of delaying the first
    job. ``config`` is the raw config (before validation): only a plain study name and output
    folder start a worker early. Whether the run is local and real is known only at ``onstart``,
    which adopts the worker (:func:`start_worker`) or stops it; a run that never reaches onstart
    (dry run, nothing to do, a config error) ends with Snakemake, which the worker follows, and a
    worker nobody connects to exits by itself (``worker.ADOPT_SECONDS``).
    """
    from snaketune.runtime import worker

    if workflow is None or not is_main_process(workflow) or not _wants_worker(config):
        return
    out = _study_folder(config)
    if out is not None and "proc" not in _EARLY_WORKER:
        _EARLY_WORKER.update(proc=worker.start(out, f"{out}/logs/worker.log"), out=out)


def start_worker(study: Study, workflow):
    """The warm worker for a local, non-dry run when the config enables it: the one started
    during the parse when it serves this study, else a new one, kept (restarted when it dies) by
    a :class:`~snaketune.runtime.worker.Keeper`; None for other runs."""
    from snaketune.runtime import worker

    early, out = _EARLY_WORKER.pop("proc", None), _EARLY_WORKER.pop("out", None)
    local = workflow.local_exec and is_main_process(workflow) and not workflow.dryrun
    if not (local and _wants_worker(study.config)):
        worker.stop(early)
        return None
    log = f"{study.out}/logs/worker.log"
    if early is not None and out == study.out and early.poll() is None:
        if worker.wait_ready(os.environ[worker.ENV_ADDRESS], timeout=15):
            return worker.Keeper(early, study.out, log)
    worker.stop(early)
    proc = worker.start(study.out, log)
    worker.wait_ready(os.environ[worker.ENV_ADDRESS], timeout=15)
    return worker.Keeper(proc, study.out, log)


def stop_worker(proc) -> None:
    from snaketune.runtime import worker

    worker.stop(proc)


def end_of_run(worker_proc) -> None:
    """What onsuccess/onerror do before Snakemake exits: stop the worker and cut the exit time.

    Snakemake's scheduler is done by then; two things would still delay the exit (measured on
    the kNN example: 1.1 s and 0.35 s of a 6.5 s run): its re-evaluation timers, and Python's
    final garbage collection over every object of the run (the DAG, scikit-learn's modules),
    which ``gc.freeze`` skips; the memory goes back to the OS with the process anyway.
    """
    import gc

    stop_worker(worker_proc)
    cancel_scheduler_timers()
    gc.freeze()


def cancel_scheduler_timers() -> int:
    """Cancel the re-evaluation timers Snakemake's scheduler leaves behind at the end of a run.

    Each scheduling round starts a non-daemon ``threading.Timer`` of the job-rate timespan
    (``--max-jobs-per-timespan``, 1 s by default); the process waits for the last one before it
    exits, adding up to that timespan to every run.
    """
    import threading

    cancelled = 0
    for thread in threading.enumerate():
        function = getattr(thread, "function", None)
        if isinstance(thread, threading.Timer) and "_schedule_reevalutation" in getattr(function, "__qualname__", ""):
            thread.cancel()
            cancelled += 1
    return cancelled


def print_top(study: Study, n: int = 5) -> None:
    """Show the top-n table at the end of a successful run."""
    path = Path(study.out) / "leaderboard.md"
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.startswith("|")]
    print(f"\nTop {n} of study {study.config['study']!r} ({path}):")
    print("\n".join(lines[: 2 + n]))
    try:
        best = json.loads((Path(study.out) / "best.json").read_text())
    except (OSError, ValueError):
        return
    if not best.get("no_best"):  # nothing to compare with
        print_comparison(best)
    print_nested(study)
    with contextlib.suppress(OSError, ValueError):
        refit = json.loads((Path(study.out) / "refit.json").read_text())
        if refit.get("status") == "timeout":
            print(f"\nno refit model: {refit['reason']}")
    failed = best.get("n_failed", 0) + best.get("n_timeout", 0)
    if failed:
        print(f"\n{failed} of {best['n_trials']} trials failed (recorded, scored {study.config['error_score']}):")
        for item in best.get("failures", []):
            print(f"  {item['trials']} x {item['error']}")
    for item in best.get("trial_warnings", [])[:3]:
        print(f"warning in {item['trials']} trials: {item['warning']}")


def no_best(study: Study) -> str | None:
    """best.json's reason why no configuration is best (every one failed or timed out), or None."""
    try:
        return json.loads((Path(study.out) / "best.json").read_text()).get("no_best")
    except (OSError, ValueError):
        return None


def print_comparison(best: dict) -> None:
    """The comparison with the best (best.json ``comparison``): one sentence, and its warning."""
    comparison = best.get("comparison")
    if comparison:
        print(comparison["sentence"])
        if comparison.get("warning"):
            print(f"warning: {comparison['warning']}")


def print_nested(study: Study) -> None:
    """Nested CV's one-sentence answer (nested.json), when the study has ``nested``."""
    try:
        doc = json.loads((Path(study.out) / "nested.json").read_text()) if study.nested else None
    except (OSError, ValueError):
        return
    if doc:
        print(doc["sentence"])


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
    prefix = (f"{study.out}/trials/", f"{study.out}/nested/trials/")  # the study's and nested CV's
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


def call_file(study: Study, **kwargs) -> str:
    """A call's keyword arguments in the study's call folder (:func:`snaketune.strategies.jobs.call_file`)."""
    return jobs.call_file(study.out, **kwargs)


def trial_environment(study: Study) -> tuple[str, str | None]:
    """``conda:`` and ``container:`` of the trial rules: a command study's env file and image
    (else our own env, no image).

    A command study's jobs run the trial client with this Python (``SNAKETUNE_PYTHON``), so
    ``--use-conda`` / ``--sdm apptainer`` put only the user's command in its environment.
    """
    ours = "../../envs/snaketune.yaml"  # relative to workflow/rules/, as the rules' own
    if not study.command:
        return ours, None
    os.environ["SNAKETUNE_PYTHON"] = sys.executable
    conda = study.command.get("conda")
    return (os.path.abspath(conda) if conda else ours), study.command.get("container")


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


def ask_inputs(study: Study, r: int) -> dict:
    """Round ``r``'s ask job needs round ``r - 1``'s ask file, Optuna state and trial files."""
    if r == 0:
        return {}
    previous = study.strategy.layout.ask_args(r)["previous"]
    trials = [p for paths in previous["trials"] for p in paths]
    return {"ask": previous["ask"], "state": previous["state"], "trials": trials}
