"""The trial jobs of a study: the records the one trial rule (``workflow/rules/trials.smk``) reads.

A strategy lists its trial jobs (:meth:`Strategy.trial_jobs
<snaketune.strategies.base.Strategy.trial_jobs>`) as :class:`TrialJob` records. When every unit (a
trial, a slot, one fold of a round's configuration) is its own job, the list holds one *pattern*
job: one Snakemake rule whose wildcards name the unit and whose inputs, call, priority and group
are functions of those wildcards (a rule per trial would cost seconds of parse time at 100,000
trials). Batched, the list holds one concrete job per batch. The rule writes threads, resources,
conda and container once for all of them.

Also here, below every layer that builds a job: a call's keyword arguments as JSON
(:func:`call_args`) or as a file (:func:`call_file`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrialJob:
    """One rule of trial jobs: a pattern (wildcards in its paths) or one batch."""

    #: The rule's name (``trial``, ``slot``, ``trials_<batch>``, ...): ``--until``, job stats.
    name: str
    #: Named outputs: a path or a list of paths each.
    outputs: dict[str, str | list[str]]
    log: str
    #: The registered call ``trials``'s arguments (``params.call``): a string, or a function of
    #: the wildcards (one that also takes ``output`` is a *derived* param Snakemake does not check).
    call: Callable[..., str] | str
    #: wildcards -> named inputs (data, splits, a promotion, ask or proposal file).
    inputs: Callable[[Any], dict]
    priority: Callable[[Any], int] | int = 0
    group: Callable[[Any], str] | str = "trials"
    #: The job's threads; None: a trial's (``resources.threads``). A job that runs its trials on
    #: forks (an Optuna round on a local run) takes the run's cores.
    threads: int | None = None


@dataclass(frozen=True)
class JobSettings:
    """What the workflow decides for the strategy's jobs (it knows the run: cores, local or not)."""

    #: Named inputs every trial reads: data and splits (empty for a command study).
    data_inputs: dict
    #: Grid/random with ``trials_per_job`` > 1: batch id -> trial ids (measured for ``auto``).
    batches: dict[str, list[str]]
    #: Batch jobs run their trials on forks (``auto`` without ``job_seconds``: a local run), so
    #: a job holds as many trials as it may, and a model-based search's round is one job.
    pooled: bool = False
    #: The cores a pooled job takes for its forks (``trial_threads`` each): the run's; None when
    #: not pooled, or in a process that does not run the jobs (a batch then runs one trial at a time).
    pool_cores: int | None = None
    #: A trial's threads (``resources.threads``).
    trial_threads: int = 1

    def pool(self, n_trials: int) -> tuple[int | None, dict]:
        """A batch job's threads (None: a trial's) and its call's extra arguments."""
        if self.pool_cores is None:
            return None, {}
        threads = max(self.trial_threads, min(self.pool_cores, n_trials * self.trial_threads))
        return threads, {"trial_threads": self.trial_threads}


def pooled_batches(config: dict) -> bool:
    """Whether batch jobs run their trials on forks: ``trials_per_job: auto`` without a
    ``job_seconds`` (which the cluster profiles set: there a job is one allocation, sized by
    time). Decided from the config alone, so every process builds the same jobs: the one the
    user started and a cluster job re-parsing the workflow (Snakemake names its executor only
    after the parse, so a parse cannot tell a local run from a cluster's)."""
    return config.get("trials_per_job", "auto") == "auto" and config.get("job_seconds") is None


def fixed(inputs: dict) -> Callable[[Any], dict]:
    """Inputs that do not depend on the wildcards (a batch's)."""
    return lambda wildcards: inputs


def batch_manifest(out: str, batch: str) -> str:
    return f"{out}/batches/{batch}.json"


def call_args(**kwargs) -> str:
    """A call's keyword arguments as JSON (rule params: what the call computes)."""
    return json.dumps(kwargs, sort_keys=True, separators=(",", ":"), default=str)


def call_file(out: str, **kwargs) -> str:
    """A call's keyword arguments written once to ``<out>/.snaketune/calls/<digest>.json``;
    returns ``@<path>``.

    A file, not a rule parameter: Snakemake stores a job's params and command with every output,
    and one command-line argument is capped at 128 KiB. The name is a content hash, so the params
    check still reruns a job whose arguments change, and an existing file never needs rewriting.
    """
    from snaketune.base.jsonutil import canonical, text_digest

    # The hashed text is the file's content: one pass over a call that may list 100,000 trials.
    text = canonical(kwargs)
    name = text_digest(text, 16)  # = digest(kwargs, 16)
    return write_once(Path(out) / ".snaketune" / "calls" / f"{name}.json", lambda: text)


def write_once(path: Path, content: Callable[[], str]) -> str:
    """Write the JSON text ``content()`` to ``path`` unless it exists; returns ``@<path>``.

    For call files whose name already fixes their content (a content hash, or a hash of what
    determines the content): an existing file is never rebuilt or rewritten.
    """
    from snaketune.base.jsonutil import write_bytes_atomic

    if not path.exists():
        write_bytes_atomic(path, content().encode())
    return f"@{path}"


def trial_call(plan, trial_id: str) -> str:
    """One trial of a plan of candidates (:class:`~snaketune.search.plan.Plan`)."""
    return call_args(specs=[plan.spec(trial_id)], outputs=[plan.trial_path(trial_id)])


def batch_call(plan, batch: str, trial_ids: list[str], **extra) -> str:
    """A batch's trials and its manifest, in a file (see :func:`call_file`).

    The rule passes this as a *derived* param (a function of ``output``), which Snakemake's params
    check leaves out: a batch that loses members (an edit reverted) is not rerun for nothing. A
    batch with a member that has no trial file yet (a new configuration) reruns because the
    workflow deletes its manifest at parse time (``release_broken_batches``); trial files are
    named by their content, so a member with a file has nothing to compute.
    """
    return trials_call(plan, trial_ids, batch_manifest(plan.out, batch), **extra)


def trials_call(plan, trial_ids: list[str], manifest: str | None = None, out: str | None = None, **extra) -> str:
    """Several trials of one plan (and a batch's ``manifest``), in a file of ``out`` (the study's
    folder; default the plan's) named without building it. ``extra``: more arguments of the call
    (``trial_threads``: run the trials on forks).

    Named by what fixes the file's content: a trial id names its parameters by content hash, the
    rest is the plan's spec base. Hashing every batch's full specs (100,000 trials) was most of a
    rerun's parse (issue 28).
    """
    from snaketune.base.jsonutil import canonical, text_digest, to_jsonable

    key = {"base": to_jsonable(plan.trial_spec_base), "out": plan.out, "trials": trial_ids}
    if manifest is not None:
        key["manifest"] = manifest
    key.update(extra)
    # digest(key, 16) without to_jsonable's walk over the ids (plain strings): 512 batches a parse.
    text = json.dumps(key, sort_keys=True, separators=(",", ":"))
    path = Path(out or plan.out) / ".snaketune" / "calls" / f"batch-{text_digest(text, 16)}.json"

    def content() -> str:
        call = {"specs": [plan.spec(t) for t in trial_ids], "outputs": [plan.trial_path(t) for t in trial_ids]}
        call.update(extra)
        return canonical(dict(call, manifest=manifest) if manifest is not None else call)

    return write_once(path, content)


def per_trial_job(name: str, trials: str, logs: str, plan_of: Callable[[str], Any], inputs) -> TrialJob:
    """One job a trial of a plan of candidates, ``<trials>/{trial}.json``; ``plan_of(trial id)``
    is the trial's plan (:class:`~snaketune.search.plan.Plan`)."""
    return TrialJob(
        name=name,
        outputs={"trial": f"{trials}/{{trial}}.json"},
        log=f"{logs}/{{trial}}.log",
        # The whole trial definition: what the content hash in the file name stands for.
        call=lambda wc: trial_call(plan_of(wc.trial), wc.trial),
        inputs=inputs,
    )


def candidate_jobs(plan, settings: JobSettings) -> list[TrialJob]:
    """Grid and random search: one job a trial (``trial``), or one a batch (``trials_<batch>``)
    whose output is the batch's manifest (Snakemake tracks 64 batches, not 10,000 trial files)."""
    out, data = plan.out, settings.data_inputs
    if not settings.batches:
        return [per_trial_job("trial", f"{out}/trials", f"{out}/logs/trials", lambda trial: plan, fixed(data))]
    jobs = []
    for batch, ids in settings.batches.items():
        threads, extra = settings.pool(len(ids))
        jobs.append(
            TrialJob(
                name=f"trials_{batch}",
                outputs={"manifest": batch_manifest(out, batch)},
                log=f"{out}/logs/batches/{batch}.log",
                call=lambda wc, output, batch=batch, ids=ids, extra=extra: batch_call(plan, batch, ids, **extra),
                inputs=fixed(data),
                threads=threads,
            )
        )
    return jobs
