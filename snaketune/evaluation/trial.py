"""The unit of work: one parameter configuration fitted and scored on one CV fold.

:func:`fit_and_score` mirrors scikit-learn's ``_fit_and_score``: clone, set parameters, fit inside
try/except, score, return a plain dict. :func:`run_trial` adds what a trial file records
(provenance, status, warnings). Both are cheap to call many times in one process, which is what
the warm worker does.
"""

from __future__ import annotations

import json
import math
import os
import platform
import socket
import sys
import time
import traceback
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from snaketune.base.jsonutil import to_jsonable, write_json_atomic
from snaketune.base.procs import set_parent_death_signal

TRIAL_FORMAT = 1

_cache: dict = {}


def fit_and_score(
    estimator,
    X,
    y,
    *,
    train: np.ndarray,
    test: np.ndarray,
    scorers: dict,
    parameters: dict,
    return_train_score: bool = False,
) -> dict:
    """Fit a clone of ``estimator`` with ``parameters`` on ``train`` and score it on ``test``.

    Returns
    -------
    dict
        ``status`` ("ok" or "error"), ``test_scores`` and ``train_scores`` (metric -> float or
        None on error), ``fit_time``/``score_time`` (wall seconds), ``fit_cpu``/``score_cpu``
        (process CPU seconds), ``error``/``traceback`` on failure and ``warnings`` raised.
    """
    from sklearn.base import clone

    result: dict[str, Any] = {
        "status": "ok",
        "test_scores": {name: None for name in scorers},
        "train_scores": {name: None for name in scorers} if return_train_score else {},
        "fit_time": 0.0,
        "score_time": 0.0,
        "fit_cpu": 0.0,
        "score_cpu": 0.0,
        "error": None,
        "traceback": None,
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            est = clone(estimator).set_params(**parameters)
            X_train, y_train = X[train], y[train]
            est.fit(X_train, y_train)
            t1, c1 = time.perf_counter(), time.process_time()
            result["fit_time"], result["fit_cpu"] = t1 - t0, c1 - c0
            X_test, y_test = X[test], y[test]
            test_scores = {name: float(scorer(est, X_test, y_test)) for name, scorer in scorers.items()}
            if return_train_score:
                result["train_scores"] = {
                    name: float(scorer(est, X_train, y_train)) for name, scorer in scorers.items()
                }
            result["test_scores"] = test_scores
            result["score_time"] = time.perf_counter() - t1
            result["score_cpu"] = time.process_time() - c1
        except Exception as exc:  # noqa: BLE001 - a failing fit is a result, not a crash
            result["fit_time"] = time.perf_counter() - t0
            result["fit_cpu"] = time.process_time() - c0
            result["status"] = "error"
            result["error"] = f"{type(exc).__name__}: {exc}"
            result["traceback"] = traceback.format_exc()
    seen = []
    for w in caught:
        item = {"category": w.category.__name__, "message": str(w.message)}
        if item not in seen:
            seen.append(item)
    result["warnings"] = seen
    return result


def make_scorers(names):
    from sklearn.metrics import get_scorer

    return {name: get_scorer(name) for name in names}


def load_inputs(spec: dict):
    """Data, splits, estimator and scorers for a trial spec, cached per process.

    The warm worker loads them once; a forked child inherits them for free.
    """
    from snaketune.base.data import load_prepared
    from snaketune.base.estimator import build_estimator
    from snaketune.base.splits import load_splits

    # File identity in the key: a re-prepared study writes new files (new inodes), never stale data.
    key = (spec["data_dir"], spec["splits"], _identity(f"{spec['data_dir']}/meta.json"), _identity(spec["splits"]))
    if key not in _cache:
        _cache.clear()
        _cache[key] = (load_prepared(spec["data_dir"]), load_splits(spec["splits"]), {})
    data, splits, estimators = _cache[key]
    est_key = repr((spec["estimator"], spec.get("allowed_modules"), spec.get("seed")))
    if est_key not in estimators:
        estimators[est_key] = (
            build_estimator(spec["estimator"], spec.get("allowed_modules", ()), spec.get("seed")),
            make_scorers(spec["scoring"]),
        )
    estimator, scorers = estimators[est_key]
    return data, splits, estimator, scorers


def _identity(path: str) -> tuple:
    st = os.stat(path)
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def search_parameters(params: dict) -> dict:
    """JSON parameters back to sklearn values: lists become tuples."""
    from snaketune.search.space import as_candidate

    return {name: as_candidate(value) for name, value in params.items()}


def versions() -> dict:
    import sklearn

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
    }


def thread_parameters(estimator, spec: dict) -> dict:
    """``n_jobs`` for every (nested) estimator that has one and the config leaves open.

    The value is the job's ``threads`` (env SNAKETUNE_THREADS, 1 by default), never -1: nothing
    enforces CPU limits on a node without cgroups. It travels outside the trial spec, so a
    different thread count does not rename trials.
    """
    threads = int(os.environ.get("SNAKETUNE_THREADS") or 1)
    fixed = set(spec["estimator"].get("params", {}))
    for step in spec["estimator"].get("steps", []):
        fixed |= {f"{step['name']}__{name}" for name in step.get("params", {})}
    return {
        name: threads
        for name in estimator.get_params(deep=True)
        if (name == "n_jobs" or name.endswith("__n_jobs")) and name not in fixed and name not in spec["params"]
    }


def run_trial(spec: dict) -> dict:
    """Run one trial described by ``spec`` and return its record (not yet written).

    ``spec`` keys: ``trial_id``, ``config_key``, ``fold``, ``params``, ``estimator``,
    ``allowed_modules``, ``seed``, ``scoring``, ``return_train_score``, ``data_dir``, ``splits``.
    """
    start = datetime.now(UTC)
    data, splits, estimator, scorers = load_inputs(spec)
    train, test = splits[spec["fold"]]
    result = fit_and_score(
        estimator,
        data["X"],
        data["y"],
        train=train,
        test=test,
        scorers=scorers,
        parameters={**thread_parameters(estimator, spec), **search_parameters(spec["params"])},
        return_train_score=spec.get("return_train_score", False),
    )
    record = base_record(spec, start)
    record.update(result)
    record.update(n_train=int(len(train)), n_test=int(len(test)), data_fingerprint=data["meta"]["fingerprint"])
    record["end"] = datetime.now(UTC).isoformat()
    return record


def base_record(spec: dict, start: datetime) -> dict:
    """The fields every trial record has, whatever its outcome."""
    return {
        "format": TRIAL_FORMAT,
        "trial_id": spec["trial_id"],
        "config_key": spec["config_key"],
        "fold": spec["fold"],
        "params": spec["params"],
        "seed": spec.get("seed"),
        "versions": versions(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "start": start.isoformat(),
    }


def timeout_record(spec: dict, start: datetime, timeout: float) -> dict:
    """Record of a trial killed after ``timeout`` seconds."""
    record = base_record(spec, start)
    record.update(
        status="timeout",
        test_scores={name: None for name in spec["scoring"]},
        train_scores={name: None for name in spec["scoring"]} if spec.get("return_train_score") else {},
        fit_time=float(timeout),
        score_time=0.0,
        fit_cpu=0.0,
        score_cpu=0.0,
        error=f"TrialTimeout: killed after {timeout:g} s (trial_timeout)",
        traceback=None,
        warnings=[],
        end=datetime.now(UTC).isoformat(),
    )
    return record


def error_value(error_score) -> float:
    """Score given to a failed or timed-out fold."""
    if error_score in ("nan", "raise") or error_score is None:
        return math.nan
    return float(error_score)


class TrialFailed(RuntimeError):
    """Raised for ``error_score: raise``: names the configuration, the fold and the exception."""

    @classmethod
    def from_record(cls, spec: dict, record: dict) -> TrialFailed:
        return cls(
            f"trial {spec['trial_id']} failed (error_score: raise): configuration {spec['params']}, "
            f"fold {spec['fold']}: {record['error']}\n{record.get('traceback') or ''}"
        )


def execute(
    spec: dict,
    output: str,
    *,
    timeout: float | None = None,
    raise_errors: bool = False,
    cache_dir: str | None = None,
) -> dict:
    """Run a trial and write its JSON atomically; return the record.

    With a ``timeout`` the trial runs in a forked child (see :func:`run_isolated`). With
    ``raise_errors`` a failed trial is not written; :class:`TrialFailed` is raised instead, so
    Snakemake stops the study and keeps the trial's log. With ``cache_dir`` (batched jobs), a
    finished ok record found there is restored by hard link instead of being recomputed.
    """
    cached = Path(cache_dir) / f"{spec['trial_id']}.json" if cache_dir else None
    if cached is not None and cached.exists() and _link_atomic(cached, Path(output)):
        return json.loads(Path(output).read_text())
    record = run_isolated(spec, timeout=timeout) if timeout else run_trial(spec)
    if raise_errors and record["status"] != "ok":
        raise TrialFailed.from_record(spec, record)
    write_json_atomic(output, record)
    if cached is not None and record["status"] == "ok":
        _link_atomic(Path(output), cached)
    return record


def _link_atomic(source: Path, target: Path) -> bool:
    """Hard-link ``source`` to ``target`` through a temporary name; False if that fails."""
    tmp = target.with_name(f".{target.name}.link")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        os.link(source, tmp)
        os.replace(tmp, target)
    except OSError:
        return False
    return True


def execute_many(specs: list[dict], outputs: list[str]) -> tuple[int, str]:
    """Run a job's trials in order; return (exit status, log text).

    Settings that do not change results come from the environment (see
    ``workflow_support.set_trial_environment``): SNAKETUNE_TRIAL_TIMEOUT, SNAKETUNE_ERROR_SCORE,
    SNAKETUNE_CACHE (batched jobs only).
    """
    env = os.environ
    timeout = float(env.get("SNAKETUNE_TRIAL_TIMEOUT") or 0) or None
    raise_errors = env.get("SNAKETUNE_ERROR_SCORE") == "raise"
    cache_dir = env.get("SNAKETUNE_CACHE") if len(specs) > 1 else None
    lines = []
    for spec, output in zip(specs, outputs, strict=True):
        try:
            record = execute(spec, output, timeout=timeout, raise_errors=raise_errors, cache_dir=cache_dir)
        except TrialFailed as exc:
            lines.append(str(exc))
            return 1, "\n".join(lines) + "\n"
        lines.append(f"trial {spec['trial_id']}: {record['status']} in {record['fit_time']:.3f} s")
    return 0, "\n".join(lines) + "\n"


def run_isolated(spec: dict, *, timeout: float) -> dict:
    """Run the trial in a forked child and return its record.

    A fork (not a thread or an alarm) because a fit stuck in C code can only be stopped by a
    signal. After ``timeout`` seconds the child is killed and a ``timeout`` record returned. A
    child that dies without a record (killed, segfault) raises RuntimeError: the job fails and a
    rerun retries the trial.
    """
    import select
    import signal

    # Imports, data and estimator are loaded before the fork: the time limit is the trial's own.
    load_inputs(spec)
    start = datetime.now(UTC)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        status = 0
        try:
            set_parent_death_signal(signal.SIGKILL)
            payload = json.dumps(to_jsonable(run_trial(spec))).encode()
            with os.fdopen(write_fd, "wb") as fh:
                fh.write(payload)
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
            status = 1
        finally:
            os._exit(status)
    os.close(write_fd)
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill(pid)
                return timeout_record(spec, start, timeout)
            ready, _, _ = select.select([read_fd], [], [], remaining)
            if ready:
                chunk = os.read(read_fd, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    if not chunks or status != 0:
        how = (
            f"signal {os.WTERMSIG(status)}"
            if os.WIFSIGNALED(status)
            else f"exit status {os.waitstatus_to_exitcode(status)}"
        )
        raise RuntimeError(f"trial {spec['trial_id']} process died ({how}) before writing a result")
    return json.loads(b"".join(chunks))


def _kill(pid: int) -> None:
    import signal

    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


def main(argv=None) -> int:
    """``python -m snaketune.trial SPEC_JSON OUTPUT...``: run a job's trials in this process.

    SPEC_JSON is one trial spec or a list of them (a batch), or ``@FILE`` holding that JSON; one
    OUTPUT per spec.
    """
    argv = sys.argv[1:] if argv is None else argv
    specs = json.loads(Path(argv[0][1:]).read_text() if argv[0].startswith("@") else argv[0])
    specs = specs if isinstance(specs, list) else [specs]
    status, log = execute_many(specs, argv[1:])
    sys.stderr.write(log)
    return status


if __name__ == "__main__":
    sys.exit(main())
