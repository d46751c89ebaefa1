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
import os
import time
from pathlib import Path

# Per-job cost of Snakemake plus the trial client on this kind of machine: ~40 ms wall, ~50 ms
# CPU (FIELD-NOTES). A job of TARGET_JOB_SECONDS keeps that overhead near 10 %.
TARGET_JOB_SECONDS = 0.5
MAX_TRIALS_PER_JOB = 256


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


def choose_trials_per_job(trial_seconds: float, n_trials: int, cores: int) -> int:
    """Trials per job so a job lasts about TARGET_JOB_SECONDS, keeping >= 4 jobs per core."""
    if trial_seconds <= 0:
        trial_seconds = 1e-3
    if math.isinf(trial_seconds):
        return 1
    by_time = math.ceil(TARGET_JOB_SECONDS / trial_seconds)
    by_balance = max(1, n_trials // (4 * max(1, cores)))
    return int(max(1, min(by_time, by_balance, MAX_TRIALS_PER_JOB)))


def measure_trial_seconds(config: dict, basedir: Path, candidates: list[dict], repeats: int = 3) -> float:
    """Median wall time of fit+score for the first candidates on the first CV split.

    Runs in this process on data loaded from the source; a fit slower than a second ends the
    measurement early (such trials are never batched).
    """
    import numpy as np

    from snaketune.base.data import is_classification, load_dataset
    from snaketune.base.estimator import build_estimator
    from snaketune.base.jsonutil import to_jsonable
    from snaketune.base.splits import compute_splits
    from snaketune.evaluation.trial import fit_and_score, make_scorers, search_parameters

    source = load_dataset(config["data"], basedir)
    X, y = source.X, source.y
    from sklearn.base import is_classifier

    estimator = build_estimator(config["estimator"], config["allowed_modules"], config["seed"])
    splits = compute_splits(config["cv"], y, bool(is_classifier(estimator)) and is_classification(y), source.groups)
    train, test = splits[0]
    scorers = make_scorers(config["scoring"])
    times = []
    for params in candidates[:repeats]:
        t0 = time.perf_counter()
        fit_and_score(
            estimator, X, y, train=train, test=test, scorers=scorers, parameters=search_parameters(to_jsonable(params))
        )
        times.append(time.perf_counter() - t0)
        if times[-1] > 1.0:
            break
    return float(np.median(times))


def resolve_trials_per_job(config: dict, plan, basedir: Path, cores: int, measure: bool) -> int:
    """The configured trials per job; for ``auto``, measured once and remembered in
    ``<study>/.snaketune/trials_per_job.json`` so every later run (and cluster job) agrees."""
    setting = config.get("trials_per_job", 1)
    if setting != "auto":
        return int(setting)
    from snaketune.base.jsonutil import digest

    memo = Path(plan.out) / ".snaketune" / "trials_per_job.json"
    # Keyed by what sets a trial's cost class, not by the grid: growing the grid keeps batches.
    key = digest({"estimator": config["estimator"], "data": plan.data_key, "cv": plan.cv_key})
    if memo.exists():
        saved = json.loads(memo.read_text())
        if saved.get("key") == key:
            return int(saved["trials_per_job"])
    if not measure or not plan.config_keys:
        return 1
    seconds = measure_in_subprocess(config, basedir, plan.candidates)
    chosen = choose_trials_per_job(seconds, len(plan.trial_ids), cores)
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": key, "trial_seconds": seconds, "trials_per_job": chosen}))
    os.replace(tmp, memo)
    return chosen


MEASURE_TIMEOUT = 30.0


def measure_in_subprocess(config: dict, basedir: Path, candidates: list[dict]) -> float:
    """:func:`measure_trial_seconds` in a new Python with a time limit.

    The fits are user code: a hanging or crashing one must not take the Snakemake process with
    it. A measurement that fails or runs out of time counts as a slow trial (one per job).
    """
    import subprocess
    import sys

    from snaketune.base.jsonutil import to_jsonable

    payload = json.dumps(to_jsonable({"config": config, "basedir": str(basedir), "candidates": candidates[:3]}))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "snaketune.runtime.batching"],
            input=payload,
            capture_output=True,
            text=True,
            timeout=MEASURE_TIMEOUT,
            env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])),
        )
        return float(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else math.inf
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        return math.inf


if __name__ == "__main__":
    import sys

    from snaketune.search.space import as_candidate

    args = json.loads(sys.stdin.read())
    found = [{k: as_candidate(v) for k, v in c.items()} for c in args["candidates"]]
    print(measure_trial_seconds(args["config"], Path(args["basedir"]), found))
