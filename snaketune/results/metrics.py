"""How a score is shown to a person: a short name, and a loss as a loss.

scikit-learn stores a loss negated, as ``neg_<loss>`` (greater is better, so one ranking rule fits
every scorer); a command study's ``greater_is_better: false`` metric is stored the same way. That
is what ``leaderboard.csv``, ``best.json``'s numbers and ``cv_results_`` keep. Everything a
person reads (tables, the comparison sentence, the terminal, the report, the plots) shows the
loss itself, positive, lower is better, under a short name: ``neg_root_mean_squared_error`` =
-550.67 is shown as RMSE 550.67. :func:`metric` is the one place that decides it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# Short names of scikit-learn's scorers (a loss under its name without ``neg_``).
SHORT_NAMES = {
    "root_mean_squared_error": "RMSE",
    "mean_squared_error": "MSE",
    "mean_absolute_error": "MAE",
    "median_absolute_error": "MedAE",
    "mean_absolute_percentage_error": "MAPE",
    "root_mean_squared_log_error": "RMSLE",
    "mean_squared_log_error": "MSLE",
    "mean_poisson_deviance": "Poisson deviance",
    "mean_gamma_deviance": "gamma deviance",
    "max_error": "max error",
    "log_loss": "log loss",
    "brier_score": "Brier score",
    "negative_likelihood_ratio": "LR-",
    "positive_likelihood_ratio": "LR+",
    "r2": "R²",
    "explained_variance": "explained variance",
    "d2_absolute_error_score": "D² (absolute error)",
    "roc_auc": "ROC AUC",
    "roc_auc_ovr": "ROC AUC (OvR)",
    "roc_auc_ovo": "ROC AUC (OvO)",
    "roc_auc_ovr_weighted": "ROC AUC (OvR, weighted)",
    "roc_auc_ovo_weighted": "ROC AUC (OvO, weighted)",
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "top_k_accuracy": "top-k accuracy",
    "average_precision": "average precision",
    "matthews_corrcoef": "MCC",
    "adjusted_rand_score": "ARI",
    "normalized_mutual_info_score": "NMI",
    "adjusted_mutual_info_score": "AMI",
}
# f1_macro -> "F1 (macro)", precision_weighted -> "precision (weighted)", ...
_AVERAGED = {"f1": "F1", "precision": "precision", "recall": "recall", "jaccard": "Jaccard"}
_AVERAGES = ("binary", "macro", "micro", "weighted", "samples")

# Scores bounded by [0, 1] (scikit-learn scorer names, by prefix); r2 and explained variance
# are at most 1; every neg_* error is at most 0.
_UNIT_SCORES = (
    "accuracy",
    "balanced_accuracy",
    "top_k_accuracy",
    "average_precision",
    "f1",
    "precision",
    "recall",
    "jaccard",
    "roc_auc",
    "adjusted_rand_score",
    "rand_score",
    "homogeneity_score",
    "completeness_score",
    "v_measure_score",
    "mutual_info_score",
    "normalized_mutual_info_score",
    "adjusted_mutual_info_score",
    "fowlkes_mallows_score",
    "d2_",
)


def metric_bounds(metric: str) -> tuple[float, float]:
    """The values a scikit-learn score (as stored) can take: ``(0, 1)`` for accuracy-like
    scores, ``(-inf, 1)`` for r2, ``(-inf, 0)`` for ``neg_*`` errors, else unbounded."""
    if metric.startswith("neg_"):
        return (-np.inf, 0.0)
    if metric in ("r2", "explained_variance") or metric.startswith("d2_"):
        return (-np.inf, 1.0)
    if any(metric == s or metric.startswith(s) for s in _UNIT_SCORES):
        return (0.0, 1.0)
    return (-np.inf, np.inf)


def short_name(name: str) -> str:
    """The short name of a metric (a loss's without ``neg_``); unknown names are kept as they are."""
    if name in SHORT_NAMES:
        return SHORT_NAMES[name]
    base, _, average = name.rpartition("_")
    if base in _AVERAGED and average in _AVERAGES:
        return f"{_AVERAGED[base]} ({average})"
    return _AVERAGED.get(name, name)


@dataclass(frozen=True)
class Metric:
    """A stored score column (``name``) as a person reads it: ``label`` and ``sign`` (shown
    value = ``sign`` × stored value: -1 for a loss stored negated, else +1)."""

    name: str
    label: str
    sign: int

    @property
    def is_loss(self) -> bool:
        return self.sign < 0

    @property
    def direction(self) -> str:
        return "lower is better" if self.is_loss else "higher is better"

    @property
    def bounds(self) -> tuple[float, float]:
        """What the shown value can take (a loss: ``(0, inf)``)."""
        low, high = metric_bounds(self.name)
        return (-high, -low) if self.is_loss else (low, high)

    def shown(self, values):
        """The shown value(s) of stored score(s): a float, or a float array; None stays NaN."""
        if values is None:
            return math.nan
        if np.ndim(values) == 0:
            return self.sign * float(values) + 0.0  # + 0.0: a loss of 0 is 0, not -0
        return self.sign * np.asarray(values, dtype=float) + 0.0

    def text(self, value, spec: str = ".4f") -> str:
        """A stored score as text, shown (``"550.6700"``; ``"nan"`` for a missing one)."""
        v = self.shown(value)
        return "nan" if math.isnan(v) else format(v, spec)

    def best_index(self, shown_values) -> int:
        """Index of the best of shown values (the lowest loss, the highest score); NaN never."""
        v = np.asarray(shown_values, dtype=float)
        return int(np.nanargmin(v) if self.is_loss else np.nanargmax(v))

    def running_best(self, shown_values) -> np.ndarray:
        """The best so far of shown values (NaN skipped; +-inf before the first)."""
        v = np.asarray(shown_values, dtype=float)
        if self.is_loss:
            return np.fmin.accumulate(np.where(np.isnan(v), np.inf, v))
        return np.fmax.accumulate(np.where(np.isnan(v), -np.inf, v))


@lru_cache(maxsize=256)
def metric(name: str) -> Metric:
    """The display of the stored score column ``name`` (``neg_<x>``: a loss, shown positive)."""
    if name.startswith("neg_"):
        return Metric(name, short_name(name.removeprefix("neg_")), -1)
    return Metric(name, short_name(name), 1)


def label(name: str) -> str:
    """The short name a person reads: ``neg_root_mean_squared_error`` -> ``RMSE``."""
    return metric(name).label


def titled(name: str) -> str:
    """The short name with its direction for a loss: ``RMSE (lower is better)``; a score's alone."""
    m = metric(name)
    return f"{m.label} ({m.direction})" if m.is_loss else m.label
