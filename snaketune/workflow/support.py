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
from snaketune.workflow.study import Study, fail_config, read_raw_config, validate
from snaketune.workflow.study import study_folder as _study_folder
from snaketune.workflow.workers import (  # noqa: F401 - the rules call the lifecycle as ws.*
    cancel_scheduler_timers,
    end_of_run,
    prestart_worker,
    start_worker,
    stop_worker,
)


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
        prestart_worker(config, _study_folder(config) if workflow is not None and main_process else None)
        study_config, plan = validate(config, basedir, main_process)
    except ConfigError as error:
        fail_config(error)
    set_run_settings(study_config)
    return Study(study_config, plan)


def skip_disabled_checksums() -> None:
    """Make Snakemake's ``--max-checksum-file-size 0`` (profiles/default) cost nothing.

    For every output of a finished job Snakemake asks every input's checksum (the metadata's
    ``input_checksums``); at size limit 0 each answer is None, but only after four ``stat`` calls
    (exists, isdir, size, fifo). An Optuna round job has 36 inputs and 32 outputs: 1,152 answers,
    ~40 ms of the hand-over to the next round on Snakemake's main loop, and the aggregate job
    300 inputs. With limit 0 the answer is known without touching the file. Snakemake 9.x's
    ``_IOFile.checksum`` (pinned); any other limit, or ``force``, goes to Snakemake as before.
    """
    from snakemake.io import _IOFile

    original = _IOFile.checksum
    if getattr(original, "snaketune", False):
        return

    async def checksum(self, threshold=None, force=False, algorithm=None):
        if threshold == 0 and not force:
            return None
        return await original(self, threshold, force, algorithm)

    checksum.snaketune = True
    _IOFile.checksum = checksum


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


def is_main_process(workflow) -> bool:
    """The Snakemake process the user started (not a job re-parsing the workflow)."""
    from snakemake.settings.types import ExecMode

    return workflow.exec_mode == ExecMode.DEFAULT


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


def existing(paths: list[str]) -> list[str]:
    """Those of ``paths`` that exist, in order, from one listing of each folder: a ``stat`` a
    path took ~0.5 s of every run's start at 100,000 trial files (issue 28)."""
    listings: dict[str, set[str]] = {}
    found = []
    for path in paths:
        folder, _, name = path.rpartition("/")
        names = listings.get(folder)
        if names is None:
            names = listings[folder] = listing(folder or ".")
        if name in names:
            found.append(path)
    return found


def listing(folder: str | Path) -> set[str]:
    """The names in ``folder`` (empty when there is none)."""
    try:
        return set(os.listdir(folder))
    except OSError:
        return set()
