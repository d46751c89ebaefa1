"""What the Snakefile needs at parse time beyond the study (:mod:`.study`): loading it, the
environment every job inherits, the warm worker's start and stop, the trials' conda env and
container.

Kept out of the rule files so it is importable and tested without Snakemake. The trial jobs are
in :mod:`.jobs`, the other steps' call arguments in :mod:`.steps`, the end-of-run summary in
:mod:`.printing`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from snaketune.config.load import ConfigError
from snaketune.strategies import jobs
from snaketune.workflow.study import Study, fail_config, read_raw_config, validate
from snaketune.workflow.study import study_folder as _study_folder


def load_study(config: dict, workflow=None, basedir: str | Path = ".") -> Study:
    """Validate the config Snakemake loaded (or ./config.yaml) and build the plan.

    Called at parse time by every Snakemake process; only the main process checks the data
    source (that reads it), cluster jobs re-parsing the workflow skip it. Any problem ends the
    process with one ``config error:`` line each and exit status 1, before a job is scheduled.
    The warm worker starts between reading the config and validating it (its imports overlap).

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
    local_default = workflow is not None and not configfiles and (Path(basedir) / "config.yaml").exists()
    try:
        config = read_raw_config(config, configfiles, basedir, main_process, local_default)
        prestart_worker(config, workflow)
        study_config, plan = validate(config, basedir, main_process)
    except ConfigError as error:
        fail_config(error)
    set_run_settings(study_config)
    return Study(study_config, plan)


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


def is_main_process(workflow) -> bool:
    """The Snakemake process the user started (not a job re-parsing the workflow)."""
    from snakemake.settings.types import ExecMode

    return workflow.exec_mode == ExecMode.DEFAULT


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
