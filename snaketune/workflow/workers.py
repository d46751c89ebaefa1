"""The warm worker's life in one Snakemake run: started while the workflow is parsed, adopted at
``onstart`` on a local run (else stopped), restarted when it dies, stopped at the end.

The worker itself is :mod:`snaketune.runtime.worker`. In the warm engine (:mod:`snaketune.engine`)
the run's Snakemake process already has Snakemake, scikit-learn and the package imported, so the
worker is forked from it (:func:`fork_workers`), not started as a new Python: ~10 ms instead of
~1 s a run.
"""

from __future__ import annotations

import os

# The worker started while this process parses the workflow (prestart_worker), until onstart
# adopts or stops it.
_EARLY_WORKER: dict = {}
# Set by the warm engine in a run's process: start the worker by forking this process.
_FORK: dict = {"on": False}


def fork_workers() -> None:
    """Start this process's workers by forking it (the warm engine's runs): its imports are the
    worker's. Not for a plain ``snakemake``: at parse time it has not imported scikit-learn yet."""
    _FORK["on"] = True


def _wants_worker(config: dict) -> bool:
    if not config.get("worker", True):
        return False
    command = config.get("command")
    # A command with its own conda env / container must run inside the job, not the worker.
    return not (isinstance(command, dict) and (command.get("conda") or command.get("container")))


def prestart_worker(config: dict, out: str | None) -> None:
    """Start the warm worker for study folder ``out`` while Snakemake parses the workflow and
    builds the DAG.

    Its imports (~1 s) then overlap the config checks and the DAG instead of delaying the first
    job. ``config`` is the raw config (before validation); ``out`` is its ``<output_dir>/<study>``
    when both are plain and this is the main Snakemake process, else None (no early worker).
    Whether the run is local and real is known only at ``onstart``, which adopts the worker
    (:func:`start_worker`) or stops it; a run that never reaches onstart (dry run, nothing to do,
    a config error) ends with Snakemake, which the worker follows, and a worker nobody connects
    to exits by itself (``worker.ADOPT_SECONDS``).
    """
    from snaketune.runtime import worker

    if out is None or not _wants_worker(config) or "proc" in _EARLY_WORKER:
        return
    log = f"{out}/logs/worker.log"
    imports = study_imports(config)
    proc = worker.start_forked(out, log, imports) if _FORK["on"] else worker.start(out, log, imports)
    _EARLY_WORKER.update(proc=proc, out=out)


def study_imports(config: dict) -> list[str]:
    """Modules a study's jobs import beyond the worker's own: its estimator's and its pipeline
    steps' when they are scikit-learn's, and its search strategy's. Not a module of
    ``allowed_modules``: the worker imports without a time limit, and user code may hang or
    crash there (``_warm_up`` tries it in a fork with a deadline). The strategy names its own
    (``Strategy.worker_imports``). Read from the raw config: anything malformed adds nothing."""
    from snaketune.base.estimator import allowed_module
    from snaketune.strategies.registry import STRATEGIES

    estimator = config.get("estimator")
    specs = [estimator] if isinstance(estimator, dict) else []
    if specs and isinstance(specs[0].get("steps"), list):
        specs += specs[0]["steps"]
    modules = []
    for spec in specs:
        path = spec.get("class") if isinstance(spec, dict) else None
        module = path.rpartition(".")[0] if isinstance(path, str) else ""
        if module and allowed_module(module):  # scikit-learn's only: not allowed_modules
            modules.append(module)
    search = config.get("search")
    for kind in search if isinstance(search, dict) else ():
        modules += STRATEGIES[kind].worker_imports if kind in STRATEGIES else ()
    return list(dict.fromkeys(modules))


def start_worker(study, workflow):
    """The warm worker for a local, non-dry run when the config enables it: the one started
    during the parse when it serves this study, else a new one, kept (restarted when it dies) by
    a :class:`~snaketune.runtime.worker.Keeper`; None for other runs."""
    from snakemake.settings.types import ExecMode

    from snaketune.runtime import worker

    early, out = _EARLY_WORKER.pop("proc", None), _EARLY_WORKER.pop("out", None)
    local = workflow.local_exec and workflow.exec_mode == ExecMode.DEFAULT and not workflow.dryrun
    if not (local and _wants_worker(study.config)):
        worker.stop(early)
        return None
    log = f"{study.out}/logs/worker.log"
    if early is not None and out == study.out and early.poll() is None:
        if worker.wait_ready(os.environ[worker.ENV_ADDRESS], timeout=15):
            return worker.Keeper(early, study.out, log)
    worker.stop(early)
    proc = worker.start(study.out, log, study_imports(study.config))
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
