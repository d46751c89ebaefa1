"""Which table columns reach the final estimator in a form it cannot take.

A quick, bounded check before any trial runs: the estimator (fixed parameters only) is fitted on
a few hundred rows in a forked child that is killed after :data:`PROBE_SECONDS`. Only when that
fit fails is its input inspected: a column still holding text, or missing values, names what to
add to the config. A probe that hangs, or fails for another reason, reports nothing (the trials
will record their own errors).
"""

from __future__ import annotations

import numpy as np

PROBE_SECONDS = 10.0
ROWS_PER_CLASS = 20
MAX_ROWS = 200


def needs_probe(X) -> bool:
    """A table with a non-numeric column or a missing value: the only inputs the probe is for."""
    return hasattr(X, "dtypes") and (
        any(kind not in "biuf" for kind in (t.kind for t in X.dtypes)) or bool(X.isna().to_numpy().any())
    )


def sample_rows(X, y, classification: bool) -> np.ndarray:
    """Rows of a small fit: some of every class, and the first missing value of every column."""
    if classification:
        labels = np.unique(y)
        per_class = max(2, min(ROWS_PER_CLASS, MAX_ROWS // len(labels)))
        rows = [np.flatnonzero(y == label)[:per_class] for label in labels]
    else:
        rows = [np.arange(min(len(y), MAX_ROWS))]
    missing = X.isna().to_numpy()
    rows.append(np.array([np.argmax(missing[:, j]) for j in range(missing.shape[1]) if missing[:, j].any()], int))
    return np.unique(np.concatenate(rows).astype(int))


def unprepared_columns(estimator, X, y, classification: bool, timeout: float = PROBE_SECONDS) -> list[str]:
    """Problem lines naming the columns that make a small fit of ``estimator`` fail."""
    if not needs_probe(X):
        return []
    rows = sample_rows(X, y, classification)
    return _in_child(lambda: diagnose(estimator, X.iloc[rows], y[rows]), timeout)


def diagnose(estimator, X, y) -> list[str]:
    """Fit a clone on ``X``; if that fails, name the columns its final step cannot take."""
    import warnings

    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    est = clone(estimator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            est.fit(X, y)
            return []
        except Exception:  # noqa: BLE001 - the failure is what is diagnosed below
            pass
        final = est.steps[-1][1] if isinstance(est, Pipeline) else est
        Xt, names = X, [str(c) for c in X.columns]
        if isinstance(est, Pipeline) and len(est.steps) > 1:
            try:
                Xt = est[:-1].fit_transform(X, y)
            except Exception:  # noqa: BLE001 - preprocessing itself fails: the trials say why
                return []
            names = _output_names(est[:-1], Xt, X)
    return _culprits(Xt, names, final, y)


def _output_names(pre, Xt, X) -> list[str]:
    """Original column names of the preprocessed columns (a ColumnTransformer prefixes them)."""
    n = Xt.shape[1]
    try:
        out = [str(name) for name in pre.get_feature_names_out()]
    except Exception:  # noqa: BLE001 - a step without feature names
        out = [str(c) for c in X.columns] if n == X.shape[1] else [f"output column {j}" for j in range(n)]
    original = {str(c) for c in X.columns}
    return [name.split("__", 1)[1] if "__" in name and name.split("__", 1)[1] in original else name for name in out]


def _culprits(Xt, names: list[str], final, y) -> list[str]:
    """Columns of the final step's input that hold text, and those whose missing values it refuses.

    Missing values are blamed only when the final step fits the numeric columns once their gaps
    are filled and not before (HistGradientBoosting takes NaN; a text column is the problem there).
    """
    import pandas as pd
    from scipy import sparse
    from sklearn.base import clone

    if sparse.issparse(Xt):
        return []
    frame = Xt if hasattr(Xt, "iloc") else pd.DataFrame(np.asarray(Xt, dtype=object))
    frame = frame.iloc[:, : len(names)]
    frame.columns = range(frame.shape[1])
    text = [
        j
        for j in frame.columns
        if frame[j].dtype.kind not in "biufc"
        and pd.to_numeric(frame[j], errors="coerce").isna().gt(frame[j].isna()).any()
    ]
    numeric = frame.drop(columns=text).apply(pd.to_numeric)
    gaps = [j for j in numeric.columns if numeric[j].isna().any()]
    if not (gaps and _fails(clone(final), numeric, y) and not _fails(clone(final), numeric.fillna(0), y)):
        gaps = []
    name = type(final).__name__
    out = [
        f"estimator: column {names[j]!r} holds text or categories that {name} cannot take; encode it in a "
        "column group of a transformers step, e.g. steps: [{name: encode, class: "
        "sklearn.preprocessing.OneHotEncoder}] (or leave it out of data.features)"
        for j in text
    ]
    out += [
        f"estimator: column {names[j]!r} has missing values that {name} cannot take; add "
        "sklearn.impute.SimpleImputer to its column group of a transformers step (or use an "
        "estimator that takes NaN, e.g. sklearn.ensemble.HistGradientBoostingClassifier)"
        for j in gaps
    ]
    return out


def _fails(estimator, X, y) -> bool:
    try:
        estimator.fit(X.to_numpy(float), y)
    except Exception:  # noqa: BLE001 - any failure counts
        return True
    return False


def _in_child(function, timeout: float) -> list[str]:
    """``function()`` (a list of str) run in a forked child; ``[]`` if it hangs or crashes."""
    from snaketune.base.procs import call_in_fork

    return list(call_in_fork(function, timeout) or [])
