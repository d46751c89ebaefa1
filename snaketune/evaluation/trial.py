"""The unit of work of every search: one candidate on one CV fold, optionally on a budget.

:func:`fit_and_score` mirrors scikit-learn's ``_fit_and_score`` (clone, set parameters, fit
inside try/except, score, return a plain dict) and as it knows nothing of budgets: a budgeted trial
(:class:`~snaketune.evaluation.budget.Budget`) hands it a
:class:`~snaketune.evaluation.budget.BudgetedTraining` that trains ``units`` of a resource instead
of one ``fit``, continuing from a saved state. Grid,
random, Hyperband and successive-halving trials all run through :func:`execute`, so they share
content-addressed files, isolation and ``trial_timeout``, ``error_score``, threads, the batch
cache and ``return_train_score``. What a trial leaves is one :class:`TrialRecord`, read back
everywhere with :func:`read_record`.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from snaketune.base.data import take_rows
from snaketune.base.estimator import build_scorers, fixed_params
from snaketune.base.jsonutil import BackgroundWrites, to_jsonable, write_bytes_atomic, write_json_atomic
from snaketune.base.memo import memo_on_files
from snaketune.base.procs import fork_with_deadline, use_threads
from snaketune.evaluation import rounds
from snaketune.evaluation.budget import BudgetedTraining
from snaketune.evaluation.command import cached_checkpoint, checkpoint_dir, copy_tree, run_command_trial
from snaketune.evaluation.records import (
    CorruptTrialError,
    RunSettings,
    TrialRecord,
    TrialSpec,
    TrialStatus,
    read_record,
    state_path,
    versions,
)

# ----------------------------------------------------------------------------------------------
# Fit and score


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
    fit: Callable | None = None,
) -> dict:
    """Fit a clone of ``estimator`` with ``parameters`` on ``train`` and score it on ``test``.

    ``fit(model, X, y, train, score) -> (model, fields)``, when given, trains instead of
    ``model.fit`` (an adaptive search's budget: :class:`~snaketune.evaluation.budget.BudgetedTraining`);
    ``score(model)`` is the first scorer on ``test``, and ``fields`` join the result.

    Returns
    -------
    dict
        ``status`` (:class:`TrialStatus`), ``test_scores`` and ``train_scores`` (metric -> float
        or None on error), ``fit_time``/``score_time`` (wall seconds), ``fit_cpu``/``score_cpu``
        (process CPU seconds), ``error``/``traceback`` on failure and ``warnings`` raised; and the
        fields ``fit`` returned.
    """
    from sklearn.base import clone
    from sklearn.metrics import check_scoring

    result: dict[str, Any] = {
        "status": TrialStatus.OK,
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
            X_test, y_test = take_rows(X, test), _rows(y, test)
            est = clone(estimator).set_params(**parameters)
            if fit is None:
                est.fit(take_rows(X, train), _rows(y, train))
            else:
                first = next(iter(scorers.values()))
                est, fields = fit(est, X, y, train, lambda m: float(first(m, X_test, y_test)))
                result.update(fields)
            t1, c1 = time.perf_counter(), time.process_time()
            result["fit_time"], result["fit_cpu"] = t1 - t0, c1 - c0
            # One multi-metric scorer: predictions are computed once for all metrics.
            score = check_scoring(est, scoring=scorers)
            result["test_scores"] = {name: float(v) for name, v in score(est, X_test, y_test).items()}
            if return_train_score:
                train_scores = score(est, take_rows(X, train), _rows(y, train))
                result["train_scores"] = {name: float(v) for name, v in train_scores.items()}
            result["score_time"] = time.perf_counter() - t1
            result["score_cpu"] = time.process_time() - c1
        except Exception as exc:  # noqa: BLE001 - a failing fit is a result, not a crash
            result["fit_time"] = time.perf_counter() - t0
            result["fit_cpu"] = time.process_time() - c0
            result["status"] = TrialStatus.ERROR
            result["error"] = f"{type(exc).__name__}: {exc}"
            result["traceback"] = traceback.format_exc()
    seen = []
    for w in caught:
        item = {"category": w.category.__name__, "message": str(w.message)[:500]}
        if item not in seen:
            seen.append(item)
    result["warnings"] = seen[:20]
    return result


def _rows(y, rows):
    """The target's rows; ``None`` for an unsupervised search's (as scikit-learn passes ``y=None`` on)."""
    return None if y is None else y[rows]


def make_scorers(names, stored: dict | None = None) -> dict:
    """The trial's scorers by name: scikit-learn's, the estimator's own ``score`` (``"score"``), or
    a search's stored callables (``stored``: name -> pickle path, the spec's ``scorers``)."""
    return build_scorers(names, stored)


def load_inputs(spec: TrialSpec):
    """Data, splits, estimator and scorers of a trial, cached per process.

    A forked process inherits what its parent loaded, for free.
    """
    from snaketune.base.estimator import build_estimator

    data, splits, estimators = _prepared(f"{spec.data_dir}/meta.json", spec.splits)
    est_key = repr((spec.estimator, spec.allowed_modules, spec.seed, spec.scoring, spec.scorers))
    if est_key not in estimators:
        estimators[est_key] = (
            build_estimator(spec.estimator, spec.allowed_modules, spec.seed),
            make_scorers(spec.scoring, spec.scorers),
        )
    estimator, scorers = estimators[est_key]
    return data, splits, estimator, scorers


# File identity in the key: a re-prepared study writes new files (new inodes), never stale data.
# One study's data at a time; its estimators and scorers are kept with it.
@memo_on_files(maxsize=1)
def _prepared(meta: str, splits: str) -> tuple[dict, list, dict]:
    from snaketune.base.data import load_prepared
    from snaketune.base.splits import load_splits

    return load_prepared(os.path.dirname(meta)), load_splits(splits), {}


def search_parameters(params: dict) -> dict:
    """JSON parameters back to sklearn values: lists become tuples."""
    from snaketune.search.space import as_candidate

    return {name: as_candidate(value) for name, value in params.items()}


def thread_parameters(estimator, spec: TrialSpec, threads: int) -> dict:
    """``n_jobs`` for every (nested) estimator that has one and the config leaves open.

    The value is the job's ``threads``, never -1: nothing enforces CPU limits on a node without
    cgroups. It is not part of the trial's name, so a different thread count renames nothing. With
    one thread nothing is set: scikit-learn's default (``None``) is one thread already, and some
    estimators warn about an explicit ``n_jobs`` (``LogisticRegression``'s FutureWarning).
    """
    if threads <= 1:
        return {}
    fixed = {name for _, name, _ in fixed_params(spec.estimator)}
    searched = set(spec.params or {})
    params = estimator.get_params(deep=True)
    # Not a ColumnTransformer's n_jobs: that is a process pool (one process per column group),
    # which costs more than it saves on one fold.
    fixed |= {f"{name}__n_jobs" for name, value in params.items() if type(value).__name__ == "ColumnTransformer"}
    return {
        name: threads
        for name in params
        if (name == "n_jobs" or name.endswith("__n_jobs"))
        and name not in fixed
        and name not in searched
        and not deprecated_parameter(params.get(name.rpartition("__")[0], estimator), "n_jobs")
    }


def deprecated_parameter(estimator, name: str) -> bool:
    """Whether ``estimator``'s docstring marks parameter ``name`` deprecated (numpydoc
    ``.. deprecated::`` in its entry), as LogisticRegression's ``n_jobs`` since 1.8: setting it
    only makes every fit warn."""
    import re

    doc = type(estimator).__doc__ or ""
    entry = re.search(rf"^\s*{re.escape(name)} : .*?(?=^\s*\w+ : |^\s*[A-Z]\w+\n\s*-{{3,}}|\Z)", doc, re.M | re.S)
    return bool(entry and ".. deprecated::" in entry.group(0))


# ----------------------------------------------------------------------------------------------
# One trial, start to end


def run_trial(
    spec: TrialSpec, output: str | Path, threads: int = 1, cache_dir: str | None = None, timeout: float | None = None
) -> TrialRecord:
    """Run one trial and return its record (written by the caller).

    A budgeted trial writes its model state to :func:`state_path` itself (so a forked trial's
    state survives it), and keeps a content-addressed copy of record and state in ``cache_dir``
    (``<config_key>_<fold>_u<units>``): a slot that Snakemake reruns (a rerun promotion, a
    resumed run) finds the model already trained that far instead of training it again.
    A command study's trial (``spec.command``) runs its command instead of a fit, killed after
    ``timeout`` seconds; its checkpoint folder is cached and restored with the record.
    """
    from snaketune.evaluation.slots import copy_atomic, relabel, resolve_slot

    start = datetime.now(UTC)
    previous = None
    if spec.slot is not None and spec.slot.promotion:
        resolved = resolve_slot(spec, output)
        if isinstance(resolved, TrialRecord):  # carried: nothing to train
            return replace(resolved, start=start.isoformat(), end=datetime.now(UTC).isoformat())
        spec, previous = resolved
    cached = None
    if spec.budget is not None and cache_dir:
        cached = Path(cache_dir) / f"{spec.config_key}_{spec.fold}_u{spec.budget.units}.json"
        if cached.exists() and state_path(cached).exists():
            copy_atomic(state_path(cached), state_path(output))
            if spec.command is not None:
                copy_tree(cached_checkpoint(cached), checkpoint_dir(output))
            record = relabel(read_record_unchecked(cached), spec, reused=True)
            return replace(record, start=start.isoformat(), end=datetime.now(UTC).isoformat())
    if spec.command is not None:
        resume_from, done, history = previous or (None, 0, [])
        result = run_command_trial(
            spec, output, threads=threads, timeout=timeout, resume_from=resume_from, done=done, history=history
        )
        record = TrialRecord(**base_fields(spec, start), **result)
        record.end = datetime.now(UTC).isoformat()
        return _keep_state(spec, output, record, None, cached)
    data, splits, estimator, scorers = load_inputs(spec)
    train_rows, test_rows = splits[spec.fold]
    training = None
    if spec.budget is not None:
        state, done, history = previous or (None, 0, [])
        training = BudgetedTraining(spec.budget, [spec.seed, spec.fold], state, done, history)
    result = fit_and_score(
        estimator,
        data["X"],
        data["y"] if data["meta"].get("supervised", True) else None,
        train=train_rows,
        test=test_rows,
        scorers=_refit_first(scorers, spec),
        parameters={**thread_parameters(estimator, spec, threads), **search_parameters(spec.params)},
        return_train_score=spec.return_train_score,
        fit=training,
    )
    # A failed trial leaves no model (its slot's state is None).
    model = training.model if training is not None and result["status"] is TrialStatus.OK else None
    record = TrialRecord(
        **base_fields(spec, start),
        **result,
        n_train=int(len(train_rows)),
        n_test=int(len(test_rows)),
        data_fingerprint=data["meta"]["fingerprint"],
    )
    record.end = datetime.now(UTC).isoformat()
    return _keep_state(spec, output, record, model, cached)


def _keep_state(spec: TrialSpec, output, record: TrialRecord, model, cached: Path | None) -> TrialRecord:
    """A budgeted trial's model state next to its record, and both (and a command's checkpoint
    folder) in the trial cache."""
    from snaketune.evaluation.slots import copy_atomic

    if spec.budget is not None:
        # The state is written before the record, so a record on disk always has its state.
        keep = model if spec.budget.resource == "partial_fit" else None
        write_bytes_atomic(state_path(output), pickle.dumps(keep, protocol=pickle.HIGHEST_PROTOCOL))
        if cached is not None and record.ok and not cached.exists():
            cached.parent.mkdir(parents=True, exist_ok=True)
            if spec.command is not None:
                copy_tree(checkpoint_dir(output), cached_checkpoint(cached))
            copy_atomic(state_path(output), state_path(cached))
            write_json_atomic(cached, record.to_dict())
    return record


def read_record_unchecked(path) -> TrialRecord:
    """A cached record, whose file name is its cache key rather than its trial id."""
    return TrialRecord.from_dict(json.loads(Path(path).read_text()))


def _refit_first(scorers: dict, spec: TrialSpec) -> dict:
    """Scorers in the order the budget's score history needs (the refit metric first)."""
    metric = spec.budget.metric if spec.budget else None
    return {metric: scorers[metric], **scorers} if metric else scorers


def base_fields(spec: TrialSpec, start: datetime) -> dict:
    """The fields every trial record has, whatever its outcome."""
    slot = spec.slot
    return {
        "trial_id": spec.trial_id,
        "config_key": spec.config_key,
        "fold": spec.fold,
        "params": spec.params,
        "seed": spec.seed,
        "versions": versions(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "start": start.isoformat(),
        "model_id": slot.model_id if slot else None,
        "bracket": slot.bracket if slot else None,
        "rung": slot.rung if slot else None,
        "slot": slot.slot if slot else None,
        "round": spec.ask.round if spec.ask else None,
        "number": spec.ask.number if spec.ask else None,
    }


def timeout_record(spec: TrialSpec, start: datetime, timeout: float) -> TrialRecord:
    """Record of a trial killed after ``timeout`` seconds."""
    return TrialRecord(
        **base_fields(spec, start),
        status=TrialStatus.TIMEOUT,
        test_scores={name: None for name in spec.scoring},
        train_scores={name: None for name in spec.scoring} if spec.return_train_score else {},
        fit_time=float(timeout),
        score_time=0.0,
        error=f"TrialTimeout: killed after {timeout:g} s (trial_timeout)",
        end=datetime.now(UTC).isoformat(),
        budget=spec.budget.units if spec.budget else None,
        resource=spec.budget.resource if spec.budget else None,
    )


class TrialFailed(RuntimeError):
    """Raised for ``error_score: raise``: names the configuration, the fold and the exception."""

    @classmethod
    def from_record(cls, record: TrialRecord) -> TrialFailed:
        return cls(
            f"trial {record.trial_id} failed (error_score: raise): configuration {record.params}, "
            f"fold {record.fold}: {record.error}\n{record.traceback or ''}"
        )


def execute(
    spec: TrialSpec,
    output: str,
    settings: RunSettings | None = None,
    batched: bool = False,
    writes: BackgroundWrites | None = None,
) -> TrialRecord:
    """Run a trial and write its record atomically; return the record.

    With ``settings.timeout`` the trial runs in a forked child (see :func:`run_isolated`). With
    ``settings.raise_errors`` a failed trial is not written; :class:`TrialFailed` is raised
    instead, so Snakemake stops the study and keeps the trial's log. With ``settings.cache_dir``
    (batched jobs), a finished ok record found there is restored by hard link instead of being
    recomputed. With ``writes``, a batch's ok record is written by that background thread (the
    caller closes it before the batch counts as done).
    """
    settings = settings or RunSettings()
    kept = None
    if spec.ask is not None:
        # A model-based search's trial: its configuration is in its round's ask file, its result
        # also kept under the configuration's name (a rerun that asks it again finds it there).
        spec = rounds.with_asked(spec)
        kept = rounds.cache_path(settings.cache_dir, spec)
        found = rounds.restore(kept, spec)
        if found is not None:
            write_json_atomic(output, found.to_dict())
            return found
    batch_cache = settings.cache_dir if batched and spec.ask is None else None
    cached = Path(batch_cache) / f"{spec.trial_id}.json" if batch_cache and not spec.budget else None
    if cached is not None and cached.exists() and _link_atomic(cached, Path(output)):
        return read_record(output)
    if spec.command is not None:
        # A command is its own process group, killed on time by the runner: no fork needed.
        record = run_trial(spec, output, settings.threads, settings.cache_dir, timeout=settings.timeout)
    elif settings.timeout:
        record = run_isolated(
            spec, output, timeout=settings.timeout, threads=settings.threads, cache_dir=settings.cache_dir
        )
    else:
        record = run_trial(spec, output, settings.threads, settings.cache_dir)
    if spec.budget is not None and record.status is TrialStatus.TIMEOUT:
        # A timed-out budgeted trial leaves no model: its slot still needs a state file.
        write_bytes_atomic(state_path(output), pickle.dumps(None))
    if settings.raise_errors and not record.ok:
        raise TrialFailed.from_record(record)
    if cached is not None and record.ok:
        step = partial(_store_batched, cached, Path(output), record.to_dict())
    elif kept is not None and record.ok:
        # Kept under its configuration's name first, as a batch caches first (see _store_batched).
        step = partial(_store_asked, kept, record, output)
    else:
        write_json_atomic(output, record.to_dict())
        return record
    if writes is None:
        step()
    else:
        writes.submit(step)
    return record


def _store_asked(kept: Path, record: TrialRecord, output: str) -> None:
    rounds.keep(kept, record)
    write_json_atomic(output, record.to_dict())


def _store_batched(cached: Path, output: Path, data: dict) -> None:
    """A batched trial's record: in the batch cache, then hard-linked to its output.

    Cache first, then link: a kill between the two leaves the finished trial in the cache, where
    a rerun of the batch finds it, instead of only in an output Snakemake may remove.
    """
    write_json_atomic(cached, data)
    if not _link_atomic(cached, output):
        write_json_atomic(output, data)


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


def execute_many(
    specs: list[dict],
    outputs: list[str],
    settings: RunSettings | None = None,
    keep_existing: bool = False,
    parallel: int = 1,
) -> tuple[int, str]:
    """Run a job's trials in order, or on ``parallel`` forks (:func:`execute_forked`); return
    (exit status, log text).

    With ``keep_existing`` a trial whose file already holds a complete record is not run again:
    its name is a content hash, so that record is its result (a corrupt file is recomputed).
    """
    settings = settings or RunSettings()
    if parallel > 1 and len(specs) > 1 and threading.active_count() == 1:
        return execute_forked(specs, outputs, settings, keep_existing, parallel)
    batched = len(specs) > 1
    # A batch writes its records in the background while it computes the next trials (not under
    # trial_timeout, which forks every trial: no fork while that thread may hold a lock). Every
    # write has ended, or failed the job, before this returns, so before the batch's manifest.
    writes = BackgroundWrites() if batched and not settings.timeout else None
    try:
        return _execute_each(specs, outputs, settings, keep_existing, batched, writes)
    finally:
        if writes is not None:
            writes.close()


def _execute_each(
    specs: list[dict],
    outputs: list[str],
    settings: RunSettings,
    keep_existing: bool,
    batched: bool,
    writes: BackgroundWrites | None,
) -> tuple[int, str]:
    lines = []
    for data, output in zip(specs, outputs, strict=True):
        spec = TrialSpec.from_dict(data)
        if keep_existing and os.path.exists(output):
            try:
                record = read_record(output)
            except CorruptTrialError:
                pass
            else:
                lines.append(f"trial {spec.trial_id}: {record.status.value}, kept")
                continue
        try:
            record = execute(spec, output, settings, batched=batched, writes=writes)
        except TrialFailed as exc:
            lines.append(str(exc))
            return 1, "\n".join(lines) + "\n"
        extra = f", {record.budget} {record.resource}" if record.budget is not None else ""
        if record.command:  # a command study: where its stdout/stderr went
            extra += f", log {record.command['log']}"
        lines.append(f"trial {spec.trial_id}: {record.status.value} in {record.fit_time:.3f} s{extra}")
    return 0, "\n".join(lines) + "\n"


def execute_forked(
    specs: list[dict], outputs: list[str], settings: RunSettings, keep_existing: bool, parallel: int
) -> tuple[int, str]:
    """A job's trials on ``parallel`` forked children that each take the next trial when free
    (:func:`~snaketune.base.procs.fork_pool`), each trial run as in a batch (every record
    written atomically, by the child's background writer while it computes the next trial),
    with ``settings.threads`` threads.

    Data, splits and estimator are loaded once, before the forks. A failed trial
    (``error_score: raise``) or a child that dies (``kill -9``) fails the job once the other
    children end the trial they hold; every trial whose record was written keeps its file and
    trial-cache entry (a child killed loses the trial it held and records still queued in its
    writer: at most a few, computed again by the rerun).
    The log lists the trials in the job's order, then one line per child.
    """
    from snaketune.base.procs import fork_pool

    first = TrialSpec.from_dict(specs[0])
    if first.command is None:
        try:
            load_inputs(first)  # inherited by every child, for free
        except Exception:  # noqa: BLE001 - each trial meets (and records) the same error itself
            pass

    # A trial's threads, set here once and inherited: threadpoolctl in a fresh fork takes 15-20 ms
    # (its copy-on-write page faults), on the round's critical path.
    use_threads(settings.threads)

    def child(next_item: Callable[[], int | None]) -> tuple[int, bytes]:
        # Created here, after the fork: no thread may exist in the parent when it forks.
        writes = BackgroundWrites() if not settings.timeout else None
        status, done = 0, []
        try:
            while status == 0 and (i := next_item()) is not None:
                status, text = _execute_each([specs[i]], [outputs[i]], settings, keep_existing, True, writes)
                done.append((i, text))
            if writes is not None:
                writes.close()
        except BaseException:  # noqa: BLE001 - the job fails with the traceback in its log
            status = 1
            done.append((len(specs), traceback.format_exc()))
        return status, json.dumps(done).encode()

    # A configuration's folds cost about the same: once one has run, the rest go longest first.
    keys = [(s.get("ask") or {}).get("index", s.get("config_key")) for s in specs]
    children = fork_pool(len(specs), parallel, child, keys=keys)
    done, footer, status = [], [], 0
    for c in children:
        mine = json.loads(c.output) if c.output else []
        done += mine
        footer.append(f"trial process {c.pid}: {len(mine)} trial(s), {c.how()}")
        if not c.ok:
            status = 1
            if not c.output:
                footer[-1] += "; its log is lost, and the trial it held has no record (a rerun computes it)"
    lines = [text for _, text in sorted(done, key=lambda item: item[0])] + [line + "\n" for line in footer]
    return status, "".join(lines)


def write_manifest(path: str, outputs: list[str]) -> None:
    """A batch's manifest: its trial files, written once all of them exist."""
    write_json_atomic(path, {"trials": [Path(o).name for o in outputs]})


def run_isolated(
    spec: TrialSpec, output: str, *, timeout: float, threads: int = 1, cache_dir: str | None = None
) -> TrialRecord:
    """Run the trial in a forked child (:func:`~snaketune.base.procs.fork_with_deadline`) and
    return its record.

    After ``timeout`` seconds the child is killed and a ``timeout`` record returned. A child that
    dies without a record (killed, segfault, ``sys.exit`` in user code) raises RuntimeError: the
    job fails and a rerun retries the trial.
    """
    from snaketune.evaluation.slots import with_candidate

    if spec.slot is not None and spec.slot.promotion:
        spec = with_candidate(spec)[0]  # a timeout record names its candidate too
    # Imports, data and estimator are loaded before the fork: the time limit is the trial's own.
    load_inputs(spec)
    start = datetime.now(UTC)
    forked = fork_with_deadline(
        lambda: json.dumps(to_jsonable(run_trial(spec, output, threads, cache_dir).to_dict())).encode(), timeout
    )
    if forked.timed_out:
        return timeout_record(spec, start, timeout)
    if not forked.output or not forked.ok:
        raise RuntimeError(f"trial {spec.trial_id} process died ({forked.how()}) before writing a result")
    return TrialRecord.from_dict(json.loads(forked.output))
