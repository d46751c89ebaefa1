"""Trial records -> a leaderboard with scikit-learn's ``cv_results_`` columns and semantics."""

from __future__ import annotations

import json
import math

import numpy as np

from snaketune.base.jsonutil import to_jsonable
from snaketune.evaluation.records import CorruptTrialError, TrialStatus, error_value, read_record, read_records
from snaketune.results.summary import column

__all__ = ["CorruptTrialError", "read_record", "read_records", "cv_results", "rank_scores", "to_frame"]


def rank_scores(means: np.ndarray) -> np.ndarray:
    """sklearn's ranking (``rankdata(-means, method="min")``): higher is better, ties share the
    lowest rank, NaN ranks last. By hand: scipy.stats costs 0.45 s to import."""
    if np.isnan(means).all():
        return np.ones_like(means, dtype=np.int32)
    filled = -np.where(np.isnan(means), np.nanmin(means) - 1, means)
    return (np.searchsorted(np.sort(filled), filled, side="left") + 1).astype(np.int32)


def cv_results(
    candidates: list[dict],
    config_keys: list[str],
    records: dict[str, dict],
    *,
    n_folds: int,
    scoring: list[str],
    error_score="nan",
    return_train_score: bool = False,
    trial_ids: list[list[str]] | None = None,
    extra: dict | None = None,
) -> dict:
    """Build a ``cv_results_`` dict from trial records.

    Parameters
    ----------
    candidates : list of dict
        Parameter configurations in search order (rows of the result).
    config_keys : list of str
        Content hash of each candidate; trial ``<key>_<fold>`` holds its fold ``fold``.
    records : dict
        Trial id -> :class:`~snaketune.evaluation.records.TrialRecord`, from :func:`read_records`.
    trial_ids : list of list of str, optional
        Each row's trials, fold by fold, when they are not named ``<key>_<fold>`` (adaptive
        searches: one row per slot, as ``HalvingRandomSearchCV`` has one per candidate and
        iteration).
    extra : dict, optional
        Further columns (``iter``, ``n_resources``, ...), one value per row.

    Returns
    -------
    dict
        The keys and semantics of ``GridSearchCV.cv_results_`` (``params``, ``param_<name>``,
        ``split<k>_test_<metric>``, ``mean_``/``std_``/``rank_test_<metric>``, ``mean_fit_time``,
        ...), plus ``n_failed``/``n_timeout`` per candidate and ``config_key``.
    """
    n = len(candidates)
    fill = error_value(error_score)
    fit_time = np.zeros((n, n_folds))
    score_time = np.zeros((n, n_folds))
    test = {m: np.full((n, n_folds), np.nan) for m in scoring}
    train = {m: np.full((n, n_folds), np.nan) for m in scoring}
    if trial_ids is None:
        trial_ids = [[f"{key}_{k}" for k in range(n_folds)] for key in config_keys]
    # Field by field over every trial (summary.column: no record objects from the summary).
    flat = [t for ids in trial_ids for t in ids]
    if len(flat) != n * n_folds:
        raise ValueError(f"every row needs {n_folds} trials: {len(flat)} trials for {n} rows")
    if flat:
        shape = (n, n_folds)
        fit_time[:] = np.array(column(records, "fit_time", flat), dtype=float).reshape(shape)
        score_time[:] = np.array(column(records, "score_time", flat), dtype=float).reshape(shape)
        status = np.array(column(records, "status", flat), dtype=object).reshape(shape)
        ok = (status == TrialStatus.OK.value).ravel().tolist()
        n_failed = (status == TrialStatus.ERROR.value).sum(axis=1)
        n_timeout = (status == TrialStatus.TIMEOUT.value).sum(axis=1)
        for name, arrays, wanted in (("test_scores", test, True), ("train_scores", train, return_train_score)):
            if not wanted:
                continue
            scores = column(records, name, flat)
            for m in scoring:
                values = [s[m] if good else fill for s, good in zip(scores, ok, strict=True)]
                arrays[m][:] = np.array(values, dtype=float).reshape(shape)
    else:
        n_failed = n_timeout = np.zeros(n, dtype=int)
    results: dict = {}

    def store(name, array, splits=False, rank=False):
        if splits:
            for k in range(n_folds):
                results[f"split{k}_{name}"] = array[:, k]
        means = np.average(array, axis=1)
        results[f"mean_{name}"] = means
        results[f"std_{name}"] = np.sqrt(np.average((array - means[:, np.newaxis]) ** 2, axis=1))
        if rank:
            results[f"rank_{name}"] = rank_scores(means)

    store("fit_time", fit_time)
    store("score_time", score_time)
    names = sorted({p for c in candidates for p in c})
    for name in names:
        data, mask = np.empty(n, dtype=object), np.ones(n, dtype=bool)
        for i, c in enumerate(candidates):  # filled as arrays: element-wise MaskedArray writes cost ~13 µs each
            if name in c:
                data[i], mask[i] = c[name], False
        results[f"param_{name}"] = np.ma.MaskedArray(data, mask=mask)
    results["params"] = candidates
    for m in scoring:
        store(f"test_{m}", test[m], splits=True, rank=True)
        if return_train_score:
            store(f"train_{m}", train[m], splits=True)
    results["n_failed"] = n_failed
    results["n_timeout"] = n_timeout
    results["config_key"] = np.array(config_keys)
    for name, values in (extra or {}).items():
        results[name] = np.asarray(values)
    return results


def to_frame(results: dict):
    """``cv_results_`` as a pandas DataFrame, parameter values kept as Python objects."""
    import pandas as pd

    columns = {}
    for key, value in results.items():
        if isinstance(value, np.ma.MaskedArray):
            mask = np.ma.getmaskarray(value).tolist()
            columns[key] = [None if m else v for v, m in zip(value.data.tolist(), mask, strict=True)]
        elif key == "params":
            columns[key] = [json.dumps(to_jsonable(p), sort_keys=True) for p in value]
        else:
            columns[key] = value
    return pd.DataFrame(columns)


def best_index(results: dict, refit: str) -> int:
    """Index of the best candidate: rank 1 on ``refit``; the first in search order on ties."""
    return int(np.flatnonzero(results[f"rank_test_{refit}"] == 1)[0])


def top_table(frame, refit: str, scoring: list[str], n: int = 5, alpha: float | None = None) -> str:
    """A Markdown table of the ``n`` best configurations (``DataFrame.to_markdown``); with
    ``alpha`` and a ``p_vs_best`` column, a "vs best" column marks "≈" the configurations not
    significantly worse than the best (:mod:`snaketune.results.compare`). Metrics under their
    short names, losses as losses (:mod:`snaketune.results.metrics`: ``mean RMSE`` 550.67 for
    ``mean_test_neg_root_mean_squared_error`` -550.67)."""
    import pandas as pd

    from snaketune.results.metrics import metric

    order = frame.sort_values([f"rank_test_{refit}", "mean_fit_time"]).head(n)
    table = pd.DataFrame({"rank": order[f"rank_test_{refit}"]})
    for m in scoring:
        table[f"mean {metric(m).label}"] = order[f"mean_test_{m}"].map(lambda v, m=m: _fmt(metric(m).shown(v)))
    table[f"std {metric(refit).label}"] = order[f"std_test_{refit}"].map(_fmt)
    table["fit s"] = order["mean_fit_time"].map(lambda v: f"{v:.3g}")
    table["failed"] = order["n_failed"] + order["n_timeout"]
    if alpha is not None and "p_vs_best" in order:
        table["vs best"] = [
            _versus(p, r, alpha) for p, r in zip(order["p_vs_best"], order[f"rank_test_{refit}"], strict=True)
        ]
    table["params"] = order["params"].map(lambda p: _params_text(json.loads(p)))
    return table.to_markdown(index=False, disable_numparse=True) + "\n"


def _versus(p: float, rank: int, alpha: float) -> str:
    """ "best", "≈ p=0.31" (not significantly worse at ``alpha``), "worse p=0.002", or "" (not compared)."""
    if math.isnan(p):
        return "best" if rank == 1 else ""
    return f"≈ p={p:.2g}" if p >= alpha else f"worse p={p:.2g}"


def _fmt(value) -> str:
    return "nan" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def _params_text(params: dict) -> str:
    return ", ".join(f"{k}={_short(v)}" for k, v in sorted(params.items()))


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
