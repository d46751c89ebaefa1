"""Several trials per Snakemake job, for trials so small that the job itself dominates.

Each trial keeps its own content-addressed JSON file; a batch is just the set of trials one job
writes. Batches are formed by hashing a configuration's key into one of a power-of-two number of
buckets, so adding a configuration changes one batch, not all of them; all folds of a
configuration share a batch. The trade-off: Snakemake reruns a batch as a whole, so finished trials
of a rerun batch are restored from ``<study>/.cache/trials`` (hard links, ok records only) instead
of being recomputed.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

# Per-job cost of Snakemake plus the trial client on this kind of machine: ~50 ms wall and
# ~100 ms CPU (Snakemake's bookkeeping, the client's Python, the worker's forks), measured with
# 60 RandomForest trials of ~0.8 s: one a job 28.6 s, three a job 26.5 s.
JOB_COST_SECONDS = 0.05
# Local jobs last between these (see job_seconds); a cluster job costs seconds (submission, a new
# Snakemake in the job, status polls): the SLURM profile sets job_seconds to minutes.
MIN_JOB_SECONDS, MAX_JOB_SECONDS = 0.2, 5.0


def job_seconds(trial_seconds: float, n_trials: int, cores: int) -> float:
    """The local job length that loses least: ``n`` jobs cost ``n * JOB_COST_SECONDS / cores`` of
    wall time, and the last jobs leave cores idle for about half a job; their sum is smallest at
    ``sqrt(2 * work * JOB_COST_SECONDS / cores)`` (SVC/digits, 300 trials of 0.13 s: 1.4 s;
    RandomForest, 195 of 0.8 s: 2.8 s)."""
    work = max(trial_seconds, 1e-3) * n_trials
    best = math.sqrt(2 * work * JOB_COST_SECONDS / max(1, cores))
    return min(MAX_JOB_SECONDS, max(MIN_JOB_SECONDS, best))


# Jobs last job_seconds; this cap only bounds a batch of very short trials (its call file, the
# trials a kill interrupts). It was 256: 100,000 trials of ~3 ms made 512 jobs, and each job costs
# Snakemake ~0.1 CPU-s, more as the run goes on (its scheduler wakes once a second for every job
# finished so far and walks the ready jobs each time): 10,000 such trials in 500 jobs took 47
# CPU-s of Snakemake, in 64 jobs 5.5 (issue 28).
MAX_TRIALS_PER_JOB = 2048


def n_buckets(n_trials: int, trials_per_job: int) -> int:
    """Power of two >= n_trials / trials_per_job (stable while the study grows a little)."""
    want = max(1, math.ceil(n_trials / trials_per_job))
    return 1 << (want - 1).bit_length()


def make_batches(config_keys: list[str], n_folds: int, trials_per_job: int) -> dict[str, list[str]]:
    """Map batch id -> trial ids, for ``trials_per_job`` trials per job on average.

    Returns an empty dict when ``trials_per_job`` is 1 (one job per trial).
    """
    if trials_per_job <= 1:
        return {}
    unique = list(dict.fromkeys(config_keys))
    buckets = n_buckets(len(unique) * n_folds, trials_per_job)
    batches: dict[str, list[str]] = {}
    for key in unique:
        bucket = int(key[:8], 16) % buckets
        batch = f"b{buckets}x{bucket:0{len(str(buckets))}d}"
        batches.setdefault(batch, []).extend(f"{key}_{fold}" for fold in range(n_folds))
    return dict(sorted(batches.items()))


def choose_trials_per_job(
    trial_seconds: float, n_trials: int, cores: int, target_seconds: float | None = None, pooled: bool = False
) -> int:
    """Trials per job so a job lasts about ``target_seconds`` (default :func:`job_seconds`),
    keeping >= 4 jobs per core (so the last jobs do not leave cores idle; on a cluster ``cores``
    is one job's width).

    ``pooled``: a job takes the ``cores`` and runs its trials on forks, each taking the next
    trial when free (a local run): it keeps every core busy to its last trial, while each
    hand-over between jobs idles them all, so a job takes as many trials as it may
    (``MAX_TRIALS_PER_JOB``): a study of up to that many trials is one job. (SVC/digits, 150
    trials of ~90 ms on 2 cores: 22 jobs of one trial at a time left 1.6 of 11.7 core-seconds
    idle; an edit's 25 new trials in 4 pooled jobs lost 0.06 s at each job's start.)"""
    if pooled:
        return MAX_TRIALS_PER_JOB
    if trial_seconds <= 0:
        trial_seconds = 1e-3
    if math.isinf(trial_seconds):
        return 1
    if target_seconds is None:
        target_seconds = job_seconds(trial_seconds, n_trials, cores)
    by_time = math.ceil(target_seconds / trial_seconds)
    by_balance = max(1, n_trials // (4 * max(1, cores)))
    return int(max(1, min(by_time, by_balance, MAX_TRIALS_PER_JOB)))


def measure_trial_seconds(config: dict, basedir: Path, candidates: list[dict], repeats: int = 3) -> float:
    """Median wall time of fit+score for the first candidates on the first CV split.

    Runs in this process on data loaded from the source (see :func:`time_fits`).
    """
    from snaketune.base.data import load_dataset
    from snaketune.base.estimator import build_estimator
    from snaketune.base.splits import compute_splits

    source = load_dataset(config["data"], basedir)
    X, y = source.X, source.y
    from sklearn.base import is_classifier

    estimator = build_estimator(config["estimator"], config["allowed_modules"], config["seed"])
    splits = compute_splits(config["cv"], y, bool(is_classifier(estimator)), source.groups)
    return time_fits(estimator, X, y, splits[0], config["scoring"], candidates[:repeats], config.get("scorers"))


def time_fits(estimator, X, y, split, scoring, candidates: list[dict], stored: dict | None = None) -> float:
    """Median wall time of a trial's fit+score (:func:`~snaketune.evaluation.trial.fit_and_score`)
    of each of ``candidates`` on ``split`` (``stored``: the config's ``scorers``); a fit slower than
    a second ends the measurement early (such trials are never batched)."""
    import numpy as np

    from snaketune.base.jsonutil import to_jsonable
    from snaketune.evaluation.trial import fit_and_score, make_scorers, search_parameters

    train, test = split
    scorers = make_scorers(scoring, stored)
    times = []
    for params in candidates:
        t0 = time.perf_counter()
        fit_and_score(
            estimator, X, y, train=train, test=test, scorers=scorers, parameters=search_parameters(to_jsonable(params))
        )
        times.append(time.perf_counter() - t0)
        if times[-1] > 1.0:
            break
    return float(np.median(times))


def resolve_trials_per_job(config: dict, plan, basedir: Path, cores: int, measure: bool, pooled: bool = False) -> int:
    """The configured trials per job; for ``auto`` (the default), from a trial time measured once.

    The measurement is remembered in ``<study>/.snaketune/trials_per_job.json``, keyed by what
    sets a trial's cost (estimator, data, CV; not the grid, so growing it keeps the batches). Only
    the process the user started (``measure``) measures and chooses; every other process (cluster
    jobs re-parsing the workflow) reads the saved choice, so all agree on the batches. Jobs aim at
    ``job_seconds`` from the config (the SLURM profile sets minutes), else :func:`job_seconds`.

    A saved choice is kept unless this run has more cores than the one that chose it: a dry run
    or ``--report`` (Snakemake gives them one core, and a parse cannot tell them from a real
    run) then shows the batches the last real run chose, instead of showing every batch as new
    and making the next run regroup; a run with fewer cores keeps batches that suit more.
    ``pooled``: the jobs run their trials on forks (a local run): as many a job as it may hold
    (:func:`choose_trials_per_job`), with nothing to measure or remember.
    """
    setting = config.get("trials_per_job", "auto")
    if setting != "auto":
        return int(setting)
    if pooled:
        return choose_trials_per_job(1.0, len(plan.trial_ids), cores, pooled=True)
    from snaketune.base.jsonutil import write_json_atomic

    memo, key = memo_path(plan, basedir), cost_key(config, plan)
    saved = read_memo(plan, key, basedir)
    if not measure or (saved and cores <= saved.get("cores", 1)):
        return int(saved.get("trials_per_job", 1))
    if not plan.config_keys:
        return 1
    seconds = saved.get("trial_seconds")
    if seconds is None:
        seconds = measure_isolated(config, basedir, plan.candidates)
    target = config.get("job_seconds") or job_seconds(seconds, len(plan.trial_ids), cores)
    chosen = choose_trials_per_job(seconds, len(plan.trial_ids), cores, target)
    record = {"key": key, "trial_seconds": seconds, "target_seconds": target, "trials_per_job": chosen, "cores": cores}
    if record != saved:
        write_json_atomic(memo, record)
    return chosen


def memo_path(plan, basedir: Path = Path(".")) -> Path:
    """Where the measurement and choice live (``plan.out`` is relative to the run's folder, ``basedir``)."""
    return Path(basedir) / plan.out / ".snaketune" / "trials_per_job.json"


def cost_key(config: dict, plan) -> str:
    """What sets a trial's cost: estimator, data, CV (not the grid, so growing it keeps the batches)."""
    from snaketune.base.jsonutil import digest

    return digest({"estimator": config["estimator"], "data": plan.data_key, "cv": plan.cv_key})


def read_memo(plan, key: str, basedir: Path = Path(".")) -> dict:
    """The saved measurement and choice for ``key``, or an empty dict."""
    try:
        saved = json.loads(memo_path(plan, basedir).read_text())
    except (OSError, ValueError):
        return {}
    return saved if isinstance(saved, dict) and saved.get("key") == key else {}


def wants_measurement(config: dict, plan, basedir: Path = Path(".")) -> bool:
    """Whether the next run would measure a trial's time (``auto``, nothing saved for this cost)."""
    if config.get("trials_per_job", "auto") != "auto" or not plan.config_keys:
        return False
    return "trial_seconds" not in read_memo(plan, cost_key(config, plan), basedir)


def remember_trial_seconds(config: dict, plan, seconds: float, basedir: Path = Path(".")) -> None:
    """Save a trial time measured before the run (a search's ``fit`` measures in its own process,
    while the engine starts), so the run chooses its batches from it without measuring again.
    ``cores`` 0: no choice made yet, so any run chooses."""
    from snaketune.base.jsonutil import write_json_atomic

    record = {"key": cost_key(config, plan), "trial_seconds": float(seconds), "cores": 0}
    write_json_atomic(memo_path(plan, basedir), record)


# Fits slower than a second end the measurement, so 10 s means something hangs or is slow:
# either way one trial a job is the right answer.
MEASURE_TIMEOUT = 10.0


def measure_isolated(config: dict, basedir: Path, candidates: list[dict]) -> float:
    """:func:`measure_trial_seconds` in a forked child with a time limit.

    The fits are user code: a hanging or crashing one must not take the Snakemake process with
    it. A fork (not a new Python) because the parse has usually imported scikit-learn already, so
    the measurement costs the fits alone. A measurement that fails or runs out of time counts as
    a slow trial (one a job).
    """
    # Import here what the child needs, so the child takes no import lock (another thread of
    # this process may hold one at the fork).
    import sklearn.datasets  # noqa: F401

    import snaketune.base.data  # noqa: F401
    import snaketune.base.splits  # noqa: F401
    import snaketune.evaluation.trial  # noqa: F401
    from snaketune.base.procs import call_in_fork

    seconds = call_in_fork(lambda: measure_trial_seconds(config, basedir, candidates), MEASURE_TIMEOUT)
    return math.inf if seconds is None else float(seconds)
