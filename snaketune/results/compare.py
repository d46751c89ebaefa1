"""Is the best configuration really better? Each configuration against the best, over the same folds.

Fold scores of two configurations are paired (same training and test rows) and correlated
(the training sets overlap), so the plain paired t-test is far too confident. Following
scikit-learn's example "Statistical comparison of models using grid search"
(``plot_grid_search_stats.py``, with the variance fix of scikit-learn PR #19966):

* **Corrected resampled t-test** (Nadeau & Bengio 2003, "Inference for the generalization
  error", Machine Learning 52:239–281). With ``d_j`` = best minus other on fold ``j`` of ``k``::

      t = mean(d) / sqrt((1/k + n_test/n_train) * var(d, ddof=1))
      p = P(T_{k-1} > t)            (one-sided: H0 "the best is not better")

* **Bayesian comparison** (Benavoli, Corani, Demšar & Zaffalon 2017, "Time for a change",
  JMLR 18(77)): the posterior of the mean difference is a Student t with ``k - 1`` degrees of
  freedom, location ``mean(d)`` and the corrected scale above; ``prob_best_better = P(mu > 0)``
  and ``prob_equivalent = P(-rope < mu < rope)`` (region of practical equivalence).

With few folds (k - 1 degrees of freedom) the test has little power: "not significantly worse"
then means "not shown worse", not "as good". Bouckaert & Frank (2004) recommend 10 × 10
repeated cross-validation with the corrected test; :data:`MIN_FOLDS` triggers a warning below it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from snaketune.base.splits import GROUP_KINDS, STRATIFIED_KINDS

MIN_FOLDS = 10
COLUMNS = ("p_vs_best", "prob_best_better", "prob_equivalent")


@dataclass(frozen=True)
class Comparison:
    """The best configuration against one other, on paired fold scores."""

    t_stat: float
    p_value: float
    prob_best_better: float
    prob_equivalent: float


NOT_COMPARED = Comparison(math.nan, math.nan, math.nan, math.nan)


def corrected_std(differences: np.ndarray, n_train: float, n_test: float) -> float:
    """Nadeau–Bengio corrected standard deviation of the mean of ``differences``."""
    differences = np.asarray(differences, dtype=float)
    k = len(differences)
    return math.sqrt(np.var(differences, ddof=1) * (1 / k + n_test / n_train))


def compare(best: np.ndarray, other: np.ndarray, *, n_train: float, n_test: float, rope: float) -> Comparison:
    """Corrected t-test and Bayesian posterior of ``mean(best - other)``.

    Parameters
    ----------
    best, other : array of shape (k,)
        Fold scores of the two configurations on the same ``k`` folds (higher is better).
    n_train, n_test : float
        Training and test rows of a fold (means over folds when they differ slightly).
    rope : float
        Half-width of the region of practical equivalence, in score units.

    Returns
    -------
    Comparison
        NaN everywhere when a score is missing (a failed fold) or ``k < 2``. When every
        difference is the same (variance 0), the posterior is a point mass at that difference:
        ``p`` is 0 if it is positive, else 1.
    """
    from scipy.special import stdtr  # Student's t CDF; scipy.stats costs 0.45 s to import

    d = np.asarray(best, dtype=float) - np.asarray(other, dtype=float)
    k = len(d)
    if k < 2 or not np.isfinite(d).all():
        return NOT_COMPARED
    mean = float(np.mean(d))
    scale = corrected_std(d, n_train, n_test)
    if scale == 0.0:
        return Comparison(
            math.copysign(math.inf, mean) if mean else math.nan,
            0.0 if mean > 0 else 1.0,
            1.0 if mean > 0 else 0.0,
            1.0 if abs(mean) <= rope else 0.0,
        )
    t_stat = mean / scale
    # The posterior is t(k - 1, loc=mean, scale=scale); standardised by hand, because a frozen
    # scipy distribution costs ~0.4 ms to build (0.8 s of a 2,000-configuration aggregation).
    low, high = stdtr(k - 1, [(-rope - mean) / scale, (rope - mean) / scale])
    return Comparison(
        t_stat=t_stat,
        p_value=float(stdtr(k - 1, -t_stat)),
        prob_best_better=float(stdtr(k - 1, mean / scale)),
        prob_equivalent=float(high - low),
    )


@dataclass(frozen=True)
class Summary:
    """What best.json, leaderboard.md, the terminal and the report say about the comparison."""

    metric: str
    n_folds: int
    n_train: float
    n_test: float
    alpha: float
    rope: float
    n_compared: int
    n_indistinguishable: int
    sentence: str
    warning: str | None = None
    note: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


# The ROPE when report.rope is not set: for a score bounded by 1 a hundredth is a percentage
# point; an unbounded score (an error in the target's units) gets the same share of its size.
ROPE_BOUNDED = 0.01
ROPE_FRACTION = 0.01


def default_rope(metric: str, best_score: float) -> tuple[float, str | None]:
    """The region of practical equivalence for ``metric`` when the config sets none: 0.01 for
    scores bounded by 1 (accuracy, roc_auc, r2, ...), else 1 % of the best configuration's |mean
    score| (an RMSE of 550 gets 5.5). Returns it and, when it was scaled, the words that say so."""
    from snaketune.results.metrics import label, metric_bounds

    bounded = not metric.startswith("neg_") and metric_bounds(metric)[1] <= 1
    if bounded or not np.isfinite(best_score) or best_score == 0:
        return ROPE_BOUNDED, None
    rope = float(f"{ROPE_FRACTION * abs(best_score):.3g}")
    return rope, f"{rope:g} ({ROPE_FRACTION:.0%} of the best's mean {label(metric)}; report.rope sets it)"


def compare_with_best(
    scores: np.ndarray,
    best: int,
    *,
    n_train: float,
    n_test: float,
    rope: float,
    rows: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every row of ``scores`` (shape (n_rows, k)) against row ``best``.

    ``rows`` (a boolean mask) limits the comparison to rows chosen among (the final rungs of an
    adaptive search); other rows and ``best`` itself get NaN. Returns the :data:`COLUMNS`.
    """
    from scipy.special import stdtr

    scores = np.asarray(scores, dtype=float)
    n, k = scores.shape
    out = {name: np.full(n, np.nan) for name in COLUMNS}
    # :func:`compare` row by row, as arrays (20,000 rows: 2.7 s -> milliseconds)
    d = scores[best][np.newaxis, :] - scores
    chosen = np.isfinite(d).all(axis=1) & (k >= 2)
    chosen[best] = False
    if rows is not None:
        chosen &= np.asarray(rows, dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.mean(d, axis=1)
        scale = np.sqrt(np.var(d, axis=1, ddof=1) * (1 / k + n_test / n_train)) if k >= 2 else np.zeros(n)
        spread = chosen & (scale != 0.0)
        t = mean / scale
        out["p_vs_best"][spread] = stdtr(k - 1, -t[spread])
        out["prob_best_better"][spread] = stdtr(k - 1, t[spread])
        low = stdtr(k - 1, (-rope - mean[spread]) / scale[spread])
        out["prob_equivalent"][spread] = stdtr(k - 1, (rope - mean[spread]) / scale[spread]) - low
    same = chosen & (scale == 0.0)  # every difference equal: a point mass at it
    out["p_vs_best"][same] = np.where(mean[same] > 0, 0.0, 1.0)
    out["prob_best_better"][same] = np.where(mean[same] > 0, 1.0, 0.0)
    out["prob_equivalent"][same] = np.where(np.abs(mean[same]) <= rope, 1.0, 0.0)
    return out


def indistinguishable(p_values: np.ndarray, alpha: float) -> np.ndarray:
    """Rows not significantly worse than the best (p >= alpha); the best itself is not counted."""
    p = np.asarray(p_values, dtype=float)
    return np.isfinite(p) & (p >= alpha)


def advised_cv(cv: dict, classifier: bool | None) -> dict:
    """The ``cv`` section to advise for a test with power, valid for this study's kind of CV.

    10 x 10 repeated k-fold (Bouckaert & Frank 2004), stratified only where the study stratifies
    (a classifier's ``auto``, or a stratified kind): the checker refuses stratified CV for a
    regressor. Grouped and time-ordered CV cannot be repeated in scikit-learn (no repeated
    grouped splitter; time order does not shuffle), so more folds is all there is: one per group
    (``leave_one_group_out``), or 10 time-ordered ones.
    """
    kind = cv.get("kind", "auto")
    if kind in GROUP_KINDS:
        return {"kind": "leave_one_group_out"}
    if kind == "time_series":
        return {"kind": "time_series", "n_splits": max(10, cv.get("n_splits", 5))}
    stratified = kind in STRATIFIED_KINDS or (kind == "auto" and bool(classifier))
    return {"kind": "repeated_stratified" if stratified else "repeated_kfold", "n_splits": 10, "n_repeats": 10}


def advice(cv: dict, classifier: bool | None) -> str:
    """What to do about too few folds, naming :func:`advised_cv`'s section as YAML."""
    section = advised_cv(cv, classifier)
    text = "cv: {" + ", ".join(f"{k}: {v}" for k, v in section.items()) + "}"
    if section["kind"] == "leave_one_group_out":
        return (
            "scikit-learn has no repeated grouped CV, so more folds means fewer groups per fold: raise "
            f"cv.n_splits towards the number of groups, or use one fold per group ({text})."
        )
    if section["kind"] == "time_series":
        return f"time-ordered folds cannot be shuffled and repeated; use more of them ({text})."
    return f"For a test that means something use 10 x 10 repeated CV ({text})."


def summarize(
    p_values: np.ndarray,
    *,
    metric: str,
    n_folds: int,
    n_train: float,
    n_test: float,
    alpha: float,
    rope: float,
    cv: dict | None = None,
    classifier: bool | None = None,
    rope_note: str | None = None,
) -> Summary:
    """The one sentence (and a warning when the folds are too few for the test to mean much).

    ``cv`` (the config's section) and ``classifier`` (the estimator is one) choose the advice in
    the warning (:func:`advised_cv`); without ``cv`` the warning gives none. ``rope_note`` (how
    a default ROPE was chosen, :func:`default_rope`) ends the sentence.
    """
    from snaketune.results.metrics import label

    compared = int(np.isfinite(np.asarray(p_values, dtype=float)).sum())
    same = int(indistinguishable(p_values, alpha).sum())
    noun = "configuration is" if same == 1 else "configurations are"
    sentence = (
        f"{same} {noun} statistically indistinguishable from the best "
        f"(one-sided corrected resampled t-test on {label(metric)}, alpha {alpha:g}, {n_folds} folds; "
        f"{compared} compared)."
    )
    if rope_note:
        sentence += f" Region of practical equivalence: ±{rope_note}."
    warning = None
    if n_folds < MIN_FOLDS:
        warning = (
            f"only {n_folds} folds: the corrected t-test has {n_folds - 1} degrees of freedom and "
            "little power, so 'indistinguishable' means 'not shown worse'."
        )
        if cv is not None:
            warning += " " + advice(cv, classifier)
    return Summary(metric, n_folds, n_train, n_test, alpha, rope, compared, same, sentence, warning)
