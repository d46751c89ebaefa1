"""The trial jobs of a run: how many trials a job holds here, and every trial job the one trial
rule (``workflow/rules/trials.smk``) defines: the strategy's, then nested CV's inner trials.

The strategy lays out its own jobs (:meth:`~snaketune.strategies.base.Strategy.trial_jobs`); what
depends on the run (cores, a local or cluster run, the main process or a job re-parsing the
workflow, a measured ``trials_per_job: auto``) is decided here and handed over as
:class:`~snaketune.strategies.jobs.JobSettings`.
"""

from __future__ import annotations

from pathlib import Path

from snaketune.strategies.jobs import JobSettings, TrialJob, fixed, per_trial_job, pooled_batches, trials_call
from snaketune.workflow.study import Study
from snaketune.workflow.support import is_main_process, listing


def trial_jobs(study: Study, workflow, data_inputs: dict) -> list[TrialJob]:
    """Every trial job of the study: its strategy's, then nested CV's inner trials."""
    settings = JobSettings(
        data_inputs,
        study.batches,
        pooled=pooled_batches(study.config),
        pool_cores=pool_cores(study, workflow),
        trial_threads=int(study.config["resources"]["threads"]),
    )
    jobs = study.strategy.trial_jobs(settings)
    if study.nested is not None:
        jobs += nested_jobs(study, data_inputs["data"], settings)
    return jobs


def pool_cores(study: Study, workflow) -> int | None:
    """The cores a pooled batch job takes for its forks: the run's (:func:`local_cores`); None
    when batches are not pooled, and in a process that does not run the jobs."""
    return local_cores(workflow) if pooled_batches(study.config) else None


def nested_jobs(study: Study, data, settings: JobSettings) -> list[TrialJob]:
    """Nested CV's inner trials (``nested/trials/``): one job a trial, or batches per outer fold
    with the study's trials per job (``auto``: as measured for the study's own trials)."""
    nested, out = study.nested, study.out
    if not study.batches:
        inputs = lambda wc: {"data": data, "splits": nested.plan_of(wc.trial).splits_path}  # noqa: E731
        return [
            per_trial_job("nested_trial", f"{nested.out}/trials", f"{out}/logs/nested/trials", nested.plan_of, inputs)
        ]
    jobs = []
    for o, batch, ids in nested_batches(study):
        plan = nested.inner[o]
        outputs = [plan.trial_path(t) for t in ids]
        threads, extra = settings.pool(len(ids))
        jobs.append(
            TrialJob(
                name=f"nested_trials_{o}_{batch}",
                outputs={"trials": outputs},
                log=f"{out}/logs/nested/batches/{o}_{batch}.log",
                # Named from the trial ids, not by hashing every spec at every parse (issue 28). A
                # derived param (a function of output), as a batch's of the study's own trials: a
                # changed trial has a new name, so a missing output, which reruns the batch.
                call=lambda wc, output, plan=plan, ids=ids, extra=extra: trials_call(plan, ids, out=out, **extra),
                inputs=fixed({"data": data, "splits": plan.splits_path}),
                threads=threads,
            )
        )
    return jobs


def batches(study: Study, workflow=None) -> dict[str, list[str]]:
    """Batches of trials for ``trials_per_job`` (``auto`` measured in the main process only)."""
    from snaketune.runtime.batching import make_batches, resolve_trials_per_job

    if not study.strategy.batched:
        return {}
    if study.command and study.config.get("trials_per_job", 1) == "auto":
        return {}  # nothing to measure without running the user's command: one trial a job
    main_process, cores = True, 1
    if workflow is not None:
        main_process = is_main_process(workflow)
        try:
            cores = workflow.cores or 1
        except Exception:  # noqa: BLE001 - `--report` and `--lint` run without --cores
            cores = 1
    study.pooled = pooled_batches(study.config)
    per_job = resolve_trials_per_job(study.config, study.plan, Path("."), cores, main_process, study.pooled)
    return make_batches(study.plan.config_keys, study.plan.n_folds, per_job)


def nested_batches(study: Study) -> list[tuple[int, str, list[str]]]:
    """(outer fold, batch id, trial ids) with the study's trials per job (``auto``: as measured
    for the study's own trials)."""
    from snaketune.runtime.batching import make_batches, resolve_trials_per_job

    per_job = resolve_trials_per_job(study.config, study.plan, Path("."), 1, measure=False, pooled=study.pooled)
    return [
        (o, batch, ids)
        for o, plan in enumerate(study.nested.inner)
        for batch, ids in make_batches(plan.config_keys, plan.n_folds, per_job).items()
    ]


def release_broken_batches(study: Study) -> int:
    """Delete the manifest of every batch with a member that has no trial file, so Snakemake
    reruns it.

    Snakemake tracks a batch by its manifest alone; a trial file deleted by hand (or found
    corrupt and deleted, as the aggregation error says) must still rerun, and so must a
    configuration new to the batch (its params are not checked: see
    :func:`~snaketune.strategies.jobs.batch_call`). The batch's remaining trial files are kept as
    they are (a batch skips trials whose file is a complete record).
    Returns the number of manifests removed.
    """
    # One listing of each folder, not a stat a trial file (100,000 at issue 28's scale). Both
    # folders hold <id>.json (Plan.trial_path, strategies.jobs.batch_manifest).
    manifests = listing(Path(study.batch_manifest("-")).parent)
    if not manifests:
        return 0
    trials = listing(Path(study.plan.trial_path("-")).parent)
    removed = 0
    for batch, trial_ids in study.batches.items():
        if f"{batch}.json" in manifests and not all(f"{t}.json" in trials for t in trial_ids):
            Path(study.batch_manifest(batch)).unlink(missing_ok=True)
            removed += 1
    return removed


def local_cores(workflow) -> int | None:
    """The run's cores (1 when Snakemake gives none: ``--report``, ``--lint``), or None in a
    process that does not run the jobs (a cluster job re-parsing the workflow). The jobs' threads
    only: what jobs exist never depends on it (:func:`pooled_batches`), and Snakemake does not
    rerun a job for its threads, so a resume with another ``--cores`` or a dry run (which
    Snakemake gives one core) finds the same jobs."""
    if workflow is None or not is_main_process(workflow):
        return None
    try:
        return max(1, int(workflow.cores or 1))
    except Exception:  # noqa: BLE001 - `--report` and `--lint` run without --cores
        return 1


def round_groups(workflow, n_rounds: int) -> None:
    """Let group ``trials-r<round>`` (the trials of one round of a model-based search) take the
    settings of group ``trials``, so ``--group-components trials=N`` packs them as it packs any
    search's trials, but only within a round: packing two rounds together would make the group
    depend on itself through the ask job between them, which Snakemake refuses. Uses the mapping
    Snakemake itself keeps from a wildcard group's instances to the group's template."""
    for r in range(n_rounds):
        workflow.parent_groupids[f"trials-r{r}"] = "trials"


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
