"""Short names and signs of metrics as a person reads them (snaketune.results.metrics)."""

import math

import numpy as np
import pytest

from snaketune.results.metrics import label, metric, metric_bounds, titled


@pytest.mark.parametrize(
    ("name", "short", "loss"),
    [
        ("neg_root_mean_squared_error", "RMSE", True),
        ("neg_mean_squared_error", "MSE", True),
        ("neg_mean_absolute_error", "MAE", True),
        ("neg_median_absolute_error", "MedAE", True),
        ("neg_mean_absolute_percentage_error", "MAPE", True),
        ("neg_log_loss", "log loss", True),
        ("neg_brier_score", "Brier score", True),
        ("r2", "R²", False),
        ("roc_auc", "ROC AUC", False),
        ("roc_auc_ovr", "ROC AUC (OvR)", False),
        ("accuracy", "accuracy", False),
        ("balanced_accuracy", "balanced accuracy", False),
        ("f1", "F1", False),
        ("f1_macro", "F1 (macro)", False),
        ("precision_weighted", "precision (weighted)", False),
        ("recall_micro", "recall (micro)", False),
        # a command study's own metrics: greater_is_better: false is stored as neg_<metric>
        ("neg_val_loss", "val_loss", True),
        ("val_auc", "val_auc", False),
    ],
)
def test_short_name_and_sign(name, short, loss):
    m = metric(name)
    assert (m.label, m.is_loss, label(name)) == (short, loss, short)
    assert m.sign == (-1 if loss else 1)
    assert m.direction == ("lower is better" if loss else "higher is better")
    assert titled(name) == (f"{short} (lower is better)" if loss else short)
    assert m.shown(-0.5 if loss else 0.5) == 0.5


@pytest.mark.parametrize(
    ("name", "stored", "text"),
    [
        ("neg_root_mean_squared_error", -550.67, "550.6700"),
        ("neg_mean_absolute_error", 0.0, "0.0000"),
        ("r2", -0.25, "-0.2500"),  # r2 is a score: a negative one stays negative
        ("accuracy", 0.973, "0.9730"),
        ("neg_log_loss", None, "nan"),
        ("neg_log_loss", math.nan, "nan"),
    ],
)
def test_text_of_a_stored_score(name, stored, text):
    assert metric(name).text(stored) == text


@pytest.mark.parametrize(
    ("name", "bounds"),
    [
        ("neg_root_mean_squared_error", (0.0, np.inf)),
        ("r2", (-np.inf, 1.0)),
        ("accuracy", (0.0, 1.0)),
        ("neg_val_loss", (0.0, np.inf)),
        ("val_auc", (-np.inf, np.inf)),
    ],
)
def test_shown_bounds(name, bounds):
    """A loss shown positive lies in [0, inf); scores keep scikit-learn's bounds."""
    assert metric(name).bounds == bounds
    low, high = metric_bounds(name)
    assert metric(name).bounds == ((-high, -low) if name.startswith("neg_") else (low, high))


@pytest.mark.parametrize(("name", "best"), [("neg_mean_squared_error", 1), ("accuracy", 2)])
def test_best_and_running_best_follow_the_direction(name, best):
    m = metric(name)
    shown = m.shown(np.array([-3.0, -1.0, np.nan, -2.0]) if m.is_loss else np.array([0.5, 0.7, 0.9, np.nan]))
    assert m.best_index(shown) == best
    running = m.running_best(shown)
    if m.is_loss:  # down for a loss
        assert list(running) == [3.0, 1.0, 1.0, 1.0]
    else:
        assert list(running) == [0.5, 0.7, 0.9, 0.9]


def test_arrays_are_shown_elementwise_and_not_changed():
    stored = np.array([-550.0, -600.0, np.nan])
    shown = metric("neg_root_mean_squared_error").shown(stored)
    assert np.array_equal(shown, [550.0, 600.0, np.nan], equal_nan=True)
    assert stored[0] == -550.0


@pytest.mark.parametrize(
    ("refit", "best", "said"),
    [("neg_root_mean_squared_error", -550.67, "best RMSE 550.6700"), ("accuracy", 0.97, "best accuracy 0.9700")],
)
def test_terminal_progress_line_shows_a_loss_as_a_loss(refit, best, said):
    """The live progress line names the metric short and a loss positive (the best is kept as
    scikit-learn's score, greater is better)."""
    from snaketune.workflow.terminal import Progress, RunInfo

    info = RunInfo(
        study="s", out="results/s", workdir=".", trial_paths=[], n_configs=1, n_folds=1, refit=refit, where="1 core"
    )
    progress = Progress(info)
    progress.best = best
    line = progress.line(live=True)
    assert said in line and "neg_" not in line


@pytest.mark.parametrize(
    ("refit", "mean", "cv_best", "said"),
    [
        ("accuracy", 0.9533, 0.98, "accuracy 0.9533 ± 0.0189 over 3 outer folds (2 distinct winners); "
         "the study's best CV score 0.9800 is +0.0267 above it."),
        ("neg_root_mean_squared_error", -575.5, -549.5, "RMSE 575.5000 ± 0.0189 over 3 outer folds (2 distinct "
         "winners); the study's best CV RMSE 549.5000 is 26.0000 below it."),
    ],
)  # fmt: skip
def test_nested_sentence_says_a_loss_as_a_loss(refit, mean, cv_best, said):
    from snaketune.results.nested import sentence

    doc = {"refit": refit, "mean": {refit: mean}, "std": {refit: 0.0189}, "n_outer": 3, "n_distinct_winners": 2}
    assert sentence(dict(doc, study_cv_best=cv_best)) == f"Nested CV estimate of the tuned model: {said}"
