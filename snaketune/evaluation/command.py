"""The trial body of a command study: run the user's training script, read its metrics.

:func:`run_command_trial` is to a command study what ``fit_and_score`` is to an estimator study,
behind the same :func:`~snaketune.evaluation.trial.execute` / ``run_trial`` path (records,
``error_score``, batching and its cache, adaptive slots and promotion, the worker). It fills the
template (every value shell-quoted, see :func:`snaketune.search.command.fill`), runs it in its
own process group with stdout and stderr to the trial's log, ``<study>/commands/<trial>/command.log``,
and reads the JSON object the command wrote to ``{output}``.

A non-zero exit, a missing or non-numeric metric, or ``trial_timeout`` (the whole process group
is killed: a shell, its ``python`` and anything they started) is a failed trial whose record
keeps the log's tail. A metric with ``greater_is_better: false`` is stored negated under
``neg_<metric>`` (scikit-learn's convention for losses) and raw in ``record.command["metrics"]``.

Adaptive searches: ``{budget}`` is the units (say epochs) to train to and ``{checkpoint}`` a
folder, ``<study>/checkpoints/<trial>``, that starts as a copy of the previous rung's folder of
the same model and fold, so a promoted model resumes instead of restarting.
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path

from snaketune.base.jsonutil import write_json_atomic
from snaketune.base.procs import THREAD_POOL_VARS, kill_group, set_parent_death_signal
from snaketune.evaluation.records import TrialSpec, TrialStatus, versions
from snaketune.search.command import fill

TAIL_LINES = 40
TAIL_CHARS = 4000


def work_dir(output: str | Path) -> Path:
    """``<study>/commands/<trial_id>``: params.json, metrics.json and command.log of one trial."""
    output = Path(output)
    return output.parent.parent / "commands" / output.stem


def checkpoint_dir(output: str | Path) -> Path:
    """``<study>/checkpoints/<trial_id>``: the model folder of an adaptive command trial."""
    output = Path(output)
    return output.parent.parent / "checkpoints" / output.stem


def cached_checkpoint(cached: str | Path) -> Path:
    """Where the trial cache keeps a checkpoint folder next to its record."""
    return Path(cached).with_suffix(".ckpt")


def copy_tree(source: str | Path | None, target: str | Path) -> None:
    """Replace ``target`` by a copy of ``source`` (a copy, not links: a command that rewrites its
    checkpoint in place must not change the previous rung's); no ``source``: an empty folder."""
    target = Path(target)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if source is not None and Path(source).is_dir():
        shutil.copytree(source, tmp)
    else:
        tmp.mkdir(parents=True)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def log_tail(path: Path) -> str:
    try:
        text = path.read_bytes()[-TAIL_CHARS * 2 :].decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-TAIL_LINES:])[-TAIL_CHARS:]


def run_shell(
    text: str, log: Path, *, timeout: float | None = None, threads: int = 1
) -> tuple[int | None, float, float]:
    """Run one filled command line; return (exit status or None on timeout, wall s, CPU s).

    The command gets its own process group (a new session), which is killed whole on timeout
    and after it exits (nothing it started in the background outlives the trial), and dies with
    this process (``PR_SET_PDEATHSIG``).
    """
    env = dict(os.environ)
    for pool in THREAD_POOL_VARS:
        env[pool] = str(threads)
    shell = shutil.which("bash") or "/bin/sh"
    log.parent.mkdir(parents=True, exist_ok=True)
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(  # noqa: S603 - the user's own template; every value is shlex-quoted
            [shell, "-c", text],
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=lambda: set_parent_death_signal(signal.SIGKILL),  # noqa: PLW1509
        )
        try:
            status: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            status = None
        finally:
            kill_group(proc.pid)
            proc.wait()
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return status, wall, cpu


def read_metrics(path: Path, metrics: list[str]) -> tuple[dict | None, str | None]:
    """The declared metrics from the command's JSON; (None, why) when any is missing or bad."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None, f"MissingMetric: the command exited 0 but wrote no metrics file ({path})"
    except (OSError, ValueError) as exc:
        return None, f"MissingMetric: the metrics file {path} is not JSON ({exc})"
    if not isinstance(doc, dict):
        return None, f"MissingMetric: the metrics file {path} holds {type(doc).__name__}, not a JSON object"
    values = {}
    for name in metrics:
        value = doc.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            found = "missing" if name not in doc else f"{value!r} is not a number"
            return None, f"MissingMetric: {name!r} {found} in {path} (keys: {', '.join(map(str, doc)) or 'none'})"
        values[name] = float(value)
    return values, None


def run_filled(text: str, work: Path, spec: dict, *, timeout=None, threads: int = 1) -> dict:
    """Run a filled command line in ``work`` and score it: the fields of a trial's outcome."""
    log, metrics_path = work / "command.log", work / "metrics.json"
    status, wall, cpu = run_shell(text, log, timeout=timeout, threads=threads)
    names = [m if s > 0 else f"neg_{m}" for m, s in zip(spec["metrics"], spec["signs"], strict=True)]
    result = {
        "status": TrialStatus.OK,
        "test_scores": {name: None for name in names},
        "fit_time": wall,
        "fit_cpu": cpu,
        "error": None,
        "traceback": None,
        "command": {"run": text, "exit_status": status, "metrics": None, "log": str(log)},
    }
    raw, problem = None, None
    if status is None:
        result["status"] = TrialStatus.TIMEOUT
        problem = f"TrialTimeout: killed after {timeout:g} s (trial_timeout)"
    elif status != 0:
        how = f"killed by signal {-status}" if status < 0 else f"exit status {status}"
        last = next((line for line in reversed(log_tail(log).splitlines()) if line.strip()), "")
        problem = f"CommandFailed: {how}" + (f": {last.strip()[:300]}" if last else "")
    else:
        raw, problem = read_metrics(metrics_path, spec["metrics"])
    if problem:
        if result["status"] is TrialStatus.OK:
            result["status"] = TrialStatus.ERROR
        result["error"] = problem
        result["traceback"] = f"last lines of {log}:\n{log_tail(log)}"
        return result
    result["command"]["metrics"] = raw
    result["test_scores"] = {
        name: sign * raw[m] if not math.isnan(raw[m]) else math.nan
        for name, m, sign in zip(names, spec["metrics"], spec["signs"], strict=True)
    }
    return result


def run_command_trial(
    spec: TrialSpec,
    output: str | Path,
    *,
    threads: int = 1,
    timeout: float | None = None,
    resume_from: str | Path | None = None,
    done: int = 0,
    history=(),
) -> dict:
    """Run one command trial; return the :class:`~snaketune.evaluation.records.TrialRecord`
    fields it decides (as ``fit_and_score`` does for an estimator).

    Parameters
    ----------
    spec : TrialSpec
        The trial, with ``spec.command`` (:func:`snaketune.search.command.command_spec`).
    output : path
        The trial file; the work and checkpoint folders are named after it.
    resume_from : path, optional
        A promoted slot: the checkpoint folder of the same model and fold one rung lower, which
        has ``done`` units; it is copied to this trial's checkpoint folder before the command runs.
    """
    work = work_dir(output)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    params = spec.params or {}
    write_json_atomic(work / "params.json", params)
    values = dict(
        params, params_json=work / "params.json", fold=spec.fold, output=work / "metrics.json", seed=spec.seed
    )
    budget = spec.budget
    if budget is not None:
        checkpoint = checkpoint_dir(output)
        copy_tree(resume_from, checkpoint)
        values.update(budget=budget.units, checkpoint=checkpoint)
    result = run_filled(fill(spec.command["run"], values), work, spec.command, timeout=timeout, threads=threads)
    result.update(score_time=0.0, score_cpu=0.0, train_scores={}, warnings=[])
    result["data_fingerprint"] = spec.command.get("inputs_digest")
    if budget is not None:
        score = result["test_scores"].get(budget.metric) if result["status"] is TrialStatus.OK else None
        result.update(
            budget=budget.units,
            resource="command",
            units_trained=budget.units - done if result["status"] is TrialStatus.OK else 0,
            history=list(history) + [{"units": budget.units, "score": score}],
        )
    return result


def refit_command(*, best: str, spec: dict, template, seed: int, budget: dict | None, outputs: list[str]) -> str:
    """Rerun the best configuration on all data (``{fold}`` = ``all``) when the study says the
    command supports it (``command.refit``); else write a refit.json that says it was skipped.

    A failing refit raises (the job fails with the log's tail), as an estimator's refit does.
    """
    summary_path = Path(outputs[0])
    best_doc = json.loads(Path(best).read_text())
    params = best_doc["params"]
    summary = {
        "params": params,
        "test_scores": {},
        "versions": versions(),
        "data_fingerprint": spec.get("inputs_digest"),
    }
    if best_doc.get("no_best"):
        summary.update(status="no_best", skipped=True, reason=best_doc["no_best"])
        write_json_atomic(summary_path, summary)
        return f"no refit: {best_doc['no_best']}"
    if template is False or template is None:
        summary.update(
            skipped=True,
            reason="command.refit is false: the command was not rerun on all data (set command.refit: true "
            "if it accepts --fold all, or give a refit template)",
        )
        write_json_atomic(summary_path, summary)
        return "refit skipped: command.refit is false"
    run = spec["run"] if template is True else template
    work = summary_path.parent / "refit"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    write_json_atomic(work / "params.json", params)
    values = dict(params, params_json=work / "params.json", fold="all", output=work / "metrics.json", seed=seed)
    if budget is not None:
        (work / "checkpoint").mkdir()
        values.update(budget=best_doc.get("n_resources", budget["units"]), checkpoint=work / "checkpoint")
    result = run_filled(fill(run, values), work, spec)
    if result["status"] is not TrialStatus.OK:
        raise RuntimeError(f"refit of the best configuration failed: {result['error']}\n{result['traceback']}")
    summary.update(
        skipped=False,
        fit_time=result["fit_time"],
        test_scores=result["test_scores"],
        metrics=result["command"]["metrics"],
        command=result["command"]["run"],
        output_dir=str(work),
    )
    if budget is not None:
        summary.update(resource="command", n_resources=values["budget"])
    write_json_atomic(summary_path, summary)
    return f"refit the best configuration on all data -> {work}"
