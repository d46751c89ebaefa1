"""Trial files -> ``leaderboard.csv`` (``cv_results_`` columns), ``leaderboard.md`` and ``best.json``,
for every kind of search.

The study's strategy (:mod:`snaketune.strategies`) says which trials make a row, which columns it
adds (Hyperband's ``iter``/``n_resources``, as ``HalvingRandomSearchCV.cv_results_``), which rows
the best is chosen from, and which result files it adds (history.csv, Optuna's journal); ranks
are over every row.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from snaketune.base.jsonutil import to_jsonable, write_json_atomic
from snaketune.evaluation.records import TrialStatus
from snaketune.results.aggregate import best_index, cv_results, to_frame, top_table
from snaketune.results.metrics import metric, titled
from snaketune.results.summary import column, read_trials
from snaketune.search.space import as_candidate
from snaketune.strategies.registry import strategy_of_plan


def write_leaderboard(*, plan: dict, config: dict, outputs: list[str]) -> str:
    """Aggregate a study's trial files; ``outputs`` are leaderboard.csv, leaderboard.md,
    best.json (and history.csv for adaptive searches). Returns the top-5 table as log text."""
    scoring, refit = config["scoring"], config["refit"]
    out = Path(outputs[0]).parent
    strategy = strategy_of_plan(plan)  # its rows, extra columns, which rows the best comes from
    trial_ids = strategy.row_trial_ids(plan)
    # Through the summary of the trial files (results/summary.py): only changed trials are read.
    records = read_trials(out, (t for ids in trial_ids for t in ids)).records
    firsts = [ids[0] for ids in trial_ids]
    candidates = [{k: as_candidate(v) for k, v in p.items()} for p in column(records, "params", firsts)]
    extra = strategy.extra_columns(plan, records, trial_ids)
    results = cv_results(
        candidates,
        column(records, "config_key", firsts),
        records,
        n_folds=len(trial_ids[0]),
        scoring=scoring,
        error_score=config["error_score"],
        return_train_score=config["return_train_score"],
        trial_ids=trial_ids,
        extra=extra,
    )
    frame = to_frame(results)
    add_completion(frame, records, trial_ids)
    add_warning_counts(frame, records, trial_ids)
    eligible = strategy.eligible(results)
    if eligible is None:
        best = best_index(results, refit)
    else:
        final = np.flatnonzero(eligible)
        means = results[f"mean_test_{refit}"][final]
        best = int(final[0] if np.isnan(means).all() else final[np.nanargmax(means)])
    comparison = add_comparison(frame, results, records, trial_ids, best, config, plan.get("classifier"))
    shown = frame if eligible is None else frame[eligible]
    frame.to_csv(outputs[0], index=False)
    top_n = config["report"]["top_n"]
    by_value = {s.value: s for s in TrialStatus}  # a lookup, not an Enum call, for each of 100,000 trials
    statuses = [by_value[s] for s in column(records, "status", records)]
    no_best = no_best_reason(results[f"mean_test_{refit}"][best], statuses)
    alpha = None if no_best else comparison.alpha  # no "vs best" column without a best
    table = top_table(shown, refit, scoring, n=top_n, alpha=alpha)
    kind = strategy.selection_note
    summary = {
        "index": best,
        "params": to_jsonable(candidates[best]),
        "config_key": str(results["config_key"][best]),
        "refit": refit,
        "mean_test_score": results[f"mean_test_{refit}"][best],
        "std_test_score": results[f"std_test_{refit}"][best],
        "scores": {m: results[f"mean_test_{m}"][best] for m in scoring},
        "n_candidates": len(candidates),
        "n_trials": len(records),
        "n_failed": statuses.count(TrialStatus.ERROR),
        "n_timeout": statuses.count(TrialStatus.TIMEOUT),
        "data_fingerprint": records[firsts[0]].data_fingerprint,
        "versions": records[firsts[0]].versions,
    }
    # The best's training rows per fold: the refit's time limit scales with all rows over these.
    fold_rows = [records[t].n_train for t in trial_ids[best] if t in records and records[t].n_train]
    summary["fold_n_train"] = float(np.mean(fold_rows)) if fold_rows else None
    summary.update(explain(records[t] for t in noted_trials(records)))
    summary["comparison"] = comparison.to_dict()
    by = titled(refit)  # losses as losses, short names (results/metrics.py); the csv keeps neg_*
    heading = f"top {top_n} by {metric(refit).label}{kind}" + ("; lower is better" if metric(refit).is_loss else "")
    heading = f"# Leaderboard ({heading})\n\n"
    if no_best:
        # Nothing to refit or compare with: best.json names no configuration (refit.py skips).
        summary.update(no_best=no_best, index=None, params=None, config_key=None)
        heading += f"**No best configuration**: {no_best}. Why, below.\n\n"
    markdown = f"{heading}{table}\n" + ("" if no_best else comparison_text(comparison))
    Path(outputs[1]).write_text(markdown + failures_markdown(summary, config["error_score"]))
    summary.update(strategy.best_summary(plan, records, trial_ids, results, best))
    for role, path in zip(strategy.side_outputs, outputs[3:], strict=True):
        SIDE_WRITERS[role](plan=plan, config=config, records=records, path=path)
    write_json_atomic(outputs[2], summary)
    top = top_table(shown, refit, scoring, n=5, alpha=alpha)
    best_shown = metric(refit).shown(summary["mean_test_score"])  # a loss positive
    best_line = json.dumps(
        {"best": summary["params"], metric(refit).label: best_shown}, default=str, ensure_ascii=False
    )
    if no_best:
        best_line = f"no best configuration: {no_best}"
    return f"Top 5 by {by}:\n{top}{best_line}\n{comparison_text(comparison)}"


def no_best_reason(best_score: float, statuses: list) -> str | None:
    """Why no configuration can be called best (None when one can): none has a finite mean score
    on the refit metric, or no trial finished at all (scikit-learn's "All the N fits failed",
    whatever ``error_score`` filled in)."""
    if np.isfinite(best_score) and TrialStatus.OK in statuses:
        return None
    failed, timed_out = statuses.count(TrialStatus.ERROR), statuses.count(TrialStatus.TIMEOUT)
    what = "finished" if TrialStatus.OK not in statuses else "finished every fold"
    return f"no configuration {what}: {timed_out} trials timed out, {failed} failed; see leaderboard.md"


def add_comparison(frame, results: dict, records: dict, trial_ids, best: int, config: dict, classifier=None):
    """Add ``p_vs_best``, ``prob_best_better`` and ``prob_equivalent`` (see
    :mod:`snaketune.results.compare`) to ``frame``; return the :class:`~snaketune.results.compare.Summary`.

    Paired on the refit metric's fold scores; ``n_train``/``n_test`` are the best row's fold
    sizes (read from the splits by its trials). Adaptive searches compare among the rows the best
    is chosen from: the final rung of every bracket (all trained on the same budget).
    """
    from snaketune.results.compare import compare_with_best, default_rope, summarize

    refit = config["refit"]
    report = config.get("report", {})
    alpha, rope, rope_note = report.get("alpha", 0.05), report.get("rope"), None
    k = len(trial_ids[0])
    scores = np.column_stack([results[f"split{j}_test_{refit}"] for j in range(k)])
    if rope is None:  # scaled to the metric (compare.default_rope), and said so
        rope, rope_note = default_rope(refit, float(results[f"mean_test_{refit}"][best]))
    best_records = [records[t] for t in trial_ids[best]]
    n_train = float(np.mean([r.n_train or 0 for r in best_records]))
    n_test = float(np.mean([r.n_test or 0 for r in best_records]))
    rows = np.asarray(results["final_rung"], dtype=bool) if "final_rung" in results else None
    if n_train > 0 and n_test > 0:
        columns = compare_with_best(scores, best, n_train=n_train, n_test=n_test, rope=rope, rows=rows)
    else:  # the best's trials never saw their split (timed out): nothing to compare with
        columns = {name: np.full(len(scores), np.nan) for name in ("p_vs_best", "prob_best_better", "prob_equivalent")}
    for name, values in columns.items():
        frame[name] = values
    summary = summarize(
        columns["p_vs_best"],
        metric=refit,
        n_folds=k,
        n_train=n_train,
        n_test=n_test,
        alpha=alpha,
        rope=rope,
        cv=config.get("cv"),  # a command study has none
        classifier=classifier,
        rope_note=rope_note,
    )
    if rows is not None:
        from dataclasses import replace

        summary = replace(summary, note="compared among the final rung of every bracket (same budget)")
    return summary


def comparison_text(summary) -> str:
    """The comparison sentence (and its warning) under a leaderboard table."""
    text = f"{summary.sentence}\n"
    if summary.note:
        text += f"({summary.note})\n"
    if summary.warning:
        text += f"warning: {summary.warning}\n"
    return text


def explain(records) -> dict:
    """Why trials failed and what they warned about, most frequent first (as GridSearchCV's
    "n fits failed with the following error", grouped by the error's first line).

    Each distinct error keeps its count of trials and of configurations, one example
    configuration (its parameters, ``config_key`` and trial) and that trial's traceback; each
    distinct warning its counts and an example configuration.
    """
    records = sorted(records, key=lambda r: r.trial_id)
    failures: dict[str, dict] = {}
    for r in records:
        if r.ok:
            continue
        text = (r.error or r.status.value).splitlines()[0][:300]
        item = failures.setdefault(text, _group("error", text, r))
        item["trials"] += 1
        item["keys"].add(r.config_key)
        if not item["traceback"] and r.traceback:
            item["traceback"] = r.traceback[-MAX_TRACEBACK:]
    warned: dict[str, dict] = {}
    for r in records:
        for w in r.warnings:
            text = f"{w['category']}: {w['message'].splitlines()[0][:300]}"
            item = warned.setdefault(text, _group("warning", text, r))
            item["trials"] += 1
            item["keys"].add(r.config_key)
    for item in warned.values():
        del item["traceback"]
    return {"failures": _most_common(failures), "trial_warnings": _most_common(warned)}


def noted_trials(records) -> list[str]:
    """The trials :func:`explain` has something to say about: not ok, or warned (the others add
    nothing to it: at 100,000 trials, no record object is built for them)."""
    ids = list(records)
    statuses = column(records, "status", ids)
    warned = column(records, "warnings", ids)
    return [t for t, s, w in zip(ids, statuses, warned, strict=True) if s != TrialStatus.OK.value or w]


MAX_TRACEBACK = 6000  # characters of one example traceback kept in best.json (its tail)


def _group(kind: str, text: str, example) -> dict:
    return {
        kind: text,
        "trials": 0,
        "keys": set(),
        "example": {"params": to_jsonable(example.params), "config_key": example.config_key},
        "example_trial": example.trial_id,
        "traceback": None,
    }


def _most_common(groups: dict, n: int = 10) -> list[dict]:
    items = sorted(groups.values(), key=lambda g: -g["trials"])[:n]
    for item in items:
        item["configurations"] = len(item.pop("keys"))
    return items


def add_warning_counts(frame, records: dict, trial_ids: list[list[str]]) -> None:
    """Add ``n_warnings`` to ``frame``: how many of a row's folds raised at least one warning
    (as ``n_failed`` counts folds that failed)."""
    present = [t for ids in trial_ids for t in ids if t in records]
    warned = {t for t, w in zip(present, column(records, "warnings", present), strict=True) if w}
    frame["n_warnings"] = [sum(1 for t in ids if t in warned) for ids in trial_ids]


def failures_markdown(summary: dict, error_score) -> str:
    """The failures and warnings sections of ``leaderboard.md`` (empty when there are none):
    each distinct error once, with its counts and one example configuration."""
    lines = []
    failures, warned = summary.get("failures", []), summary.get("trial_warnings", [])
    if failures:
        failed = summary.get("n_failed", 0) + summary.get("n_timeout", 0)
        lines += [
            "",
            f"## Failures: {failed} of {summary.get('n_trials')} trials, scored `error_score: {error_score}`",
            "",
        ]
        for f in failures:
            lines.append(f"- {f['trials']} trials of {f['configurations']} configurations: `{f['error']}`")
            lines.append(f"  e.g. `{_params_line(f['example'])}` (trial `{f['example_trial']}`)")
        lines += ["", "One traceback per error: the report's Failures page, or `trials/<trial>.json`."]
    if warned:
        lines += ["", "## Warnings raised in trials", ""]
        for w in warned:
            lines.append(f"- {w['trials']} trials of {w['configurations']} configurations: `{w['warning']}`")
            lines.append(f"  e.g. `{_params_line(w['example'])}` (trial `{w['example_trial']}`)")
        lines += ["", "`n_warnings` in `leaderboard.csv`: how many folds of each configuration warned."]
    return "\n".join(lines) + ("\n" if lines else "")


def _params_line(example: dict) -> str:
    params = example.get("params") or {}
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(params.items())) or "(defaults)"


def write_history(*, plan: dict, config: dict, records: dict, path: str) -> None:
    """history.csv of a budgeted search: every scored point of every model."""
    from snaketune.results.adaptive import history_frame

    history_frame(records.values(), config["refit"]).to_csv(path, index=False)


def write_study_journal(*, plan: dict, config: dict, records: dict, path: str) -> None:
    """The study as Optuna storage (a journal log)."""
    from snaketune.results.optuna_study import write_journal

    write_journal(plan, config, records, path)


# Result files a strategy adds (its ``side_outputs``), by role.
SIDE_WRITERS = {"history": write_history, "journal": write_study_journal}


def add_completion(frame, records: dict, trial_ids: list[list[str]]) -> None:
    """Add ``completed_at`` (end time of a row's last fold, ISO 8601) and ``completion_order``
    (1 = the first row whose folds all finished) to ``frame``.

    Trial files carry their own ``end`` time, so this is the order the study really ran in, not
    the search order (the plot "best so far" uses it)."""
    present = [t for ids in trial_ids for t in ids if t in records]
    end_of = dict(zip(present, column(records, "end", present), strict=True))
    ends = []
    for ids in trial_ids:
        times = [end_of.get(t) for t in ids]
        ends.append(None if any(t is None for t in times) else max(times))
    frame["completed_at"] = ends
    order = sorted((e, i) for i, e in enumerate(ends) if e is not None)
    ranks = [None] * len(ends)
    for position, (_, i) in enumerate(order, start=1):
        ranks[i] = position
    frame["completion_order"] = ranks
