"""Trials run in the calling process while the warm engine starts (issue #27).

A search's first ``fit`` waits ~2 s for its new engine to import Snakemake: one core busy with
that, the other idle, while the fit's own process has scikit-learn and the estimator loaded. It
runs the first missing trials meanwhile, with the trial core
(:func:`~snaketune.evaluation.trial.execute`, as a job does) into their own content-addressed
files; the run then finds them done, as a resumed run does. The data is prepared again by the
prepare job's own function into a private folder: the same bytes, so the same fingerprint in the
records. None of the run's outputs is written here, only trial files, which the run reads.

Only while the engine starts, only short trials on small data, and never under a
``trial_timeout`` (the run isolates each trial in a fork with a time limit) or
``error_score="raise"`` (the run stops the study): what runs here runs as scikit-learn's
``n_jobs=1`` would, in the user's process.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

# A trial measured longer than this would hold the run's start back by as much: leave it to the run.
MAX_TRIAL_SECONDS = 0.25
# The data is prepared a second time (memory, disk) for this: worth it for small data only.
MAX_DATA_BYTES = 64 * 2**20


def eligible(config: dict, data_bytes: int) -> bool:
    """Whether trials of this (validated) config may run here: small data, no time limit, failures
    recorded (not raised), and a search's stored folds (the data needs no split job)."""
    return (
        data_bytes <= MAX_DATA_BYTES
        and config.get("trial_timeout") is None
        and config.get("error_score") != "raise"
        and config["cv"]["kind"] == "folds"
    )


def run_trials(config: dict, plan, prepare_args: dict, workdir: Path, trial_ids: list[str]) -> Iterator:
    """Run ``trial_ids`` of ``plan`` in order, each into its file under ``workdir``, yielding each
    :class:`~snaketune.evaluation.records.TrialRecord`; the caller stops when it will (close the
    generator: the private data folder goes then). Paths in the spec are made absolute: this process
    does not run in ``workdir``."""
    from threadpoolctl import threadpool_limits

    from snaketune.base.data import prepare
    from snaketune.evaluation.records import RunSettings, TrialSpec
    from snaketune.evaluation.trial import execute

    private = workdir / plan.out / ".snaketune" / "local"
    data_dir = private / plan.data_key
    threads = int(config["resources"]["threads"])
    try:
        prepare(config["data"], workdir, data_dir, **prepare_args)
        where = {"data_dir": str(data_dir), "splits": str(workdir / config["cv"]["file"])}
        # A trial job's threads, set once: threadpoolctl inspects every loaded library each time.
        with threadpool_limits(threads):
            for trial_id in trial_ids:
                spec = dict(plan.spec(trial_id), **where)
                if "pickle" in spec["estimator"]:
                    spec["estimator"] = dict(spec["estimator"], pickle=str(workdir / spec["estimator"]["pickle"]))
                if spec.get("scorers"):  # the search's stored callable scorers, likewise
                    spec["scorers"] = {name: str(workdir / path) for name, path in spec["scorers"].items()}
                output = str(workdir / plan.trial_path(trial_id))
                yield execute(TrialSpec.from_dict(spec), output, RunSettings(threads=threads))
    finally:
        shutil.rmtree(private, ignore_errors=True)
