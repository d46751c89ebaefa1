"""Plots: which a study gets, and that each draws from awkward leaderboards (unit, no Snakemake)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from snaketune.results import plots

CONFIG = {
    "study": "p",
    "refit": "accuracy",
    "scoring": ["accuracy"],
    "search": {
        "grid": {
            "C": {"logspace": [-2, 2, 5]},
            "gamma": [0.001, 0.01, 0.1, 1.0],
            "kernel": ["rbf", "sigmoid"],
            "max_iter": [None, 100],
        }
    },
}


def _leaderboard(config=CONFIG, n_folds=3, failed=(), seed=0):
    import pandas as pd

    from snaketune.search.space import candidates

    rng = np.random.default_rng(seed)
    cands = candidates(config["search"])
    rows = []
    for i, p in enumerate(cands):
        score = 0.9 - 0.05 * abs(np.log10(p.get("C", 1))) - (0.1 if p.get("kernel") == "sigmoid" else 0)
        folds = score + rng.normal(0, 0.02, n_folds)
        if i in failed:
            folds[:] = np.nan
        row = {"mean_fit_time": rng.uniform(0.001, 0.2), "params": json.dumps(p, sort_keys=True)}
        row.update({f"split{k}_test_accuracy": folds[k] for k in range(n_folds)})
        row.update(
            mean_test_accuracy=folds.mean(), std_test_accuracy=folds.std(), n_failed=int(i in failed), n_timeout=0
        )
        row["completion_order"] = len(cands) - i
        rows.append(row)
    frame = pd.DataFrame(rows)
    means = frame["mean_test_accuracy"].fillna(-np.inf)
    frame["rank_test_accuracy"] = means.rank(ascending=False, method="min").astype(int)
    return frame


def test_plot_names_follow_the_space():
    assert set(plots.plot_names(CONFIG)) == set(plots.DRAW)
    two = {"search": {"grid": {"n_neighbors": [1, 2], "metric": ["a", "b"]}}}
    assert plots.plot_names(two) == ["marginal", "fold_spread", "best_so_far", "fit_time"]
    rnd = {"search": {"random": {"n_iter": 5, "params": {"C": {"loguniform": [1e-3, 1]}, "tol": {"uniform": [0, 1]}}}}}
    assert "score_map" in plots.plot_names(rnd) and "parallel" not in plots.plot_names(rnd)
    assert plots.numeric_parameters(CONFIG) == ["C", "gamma"]
    assert plots.log_parameters(CONFIG) == {"C", "gamma"}


@pytest.mark.parametrize("failed", [(), (0, 5, 17)], ids=["ok", "some-failed"])
def test_every_plot_draws_a_png(tmp_path, failed):
    from PIL import Image

    path = tmp_path / "leaderboard.csv"
    _leaderboard(failed=failed).to_csv(path, index=False)
    outputs = [str(tmp_path / f"{name}.png") for name in plots.plot_names(CONFIG)]
    plots.make_plots(str(path), CONFIG, outputs)
    for out in outputs:
        with Image.open(out) as image:
            width, height = image.size
            pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
            colours = len(np.unique(pixels[::7], axis=0))
        assert width > 300 and height > 200, out
        assert colours > 20, out  # something was drawn


def test_plots_survive_all_failed_and_missing_completion_order(tmp_path):
    frame = _leaderboard(failed=range(80)).drop(columns="completion_order")
    path = tmp_path / "leaderboard.csv"
    frame.to_csv(path, index=False)
    outputs = [str(tmp_path / f"{name}.png") for name in plots.plot_names(CONFIG)]
    plots.make_plots(str(path), CONFIG, outputs)
    assert all((tmp_path / f"{n}.png").stat().st_size > 1000 for n in plots.plot_names(CONFIG))


def test_best_so_far_uses_completion_order():
    plt = plots._style()
    frame = _leaderboard()
    fig = plots.draw_best_so_far(plt, frame, CONFIG, "accuracy")
    ax = fig.axes[0]
    assert "completed" in ax.get_xlabel()
    # The step line is the running best in completion order (reverse search order here).
    ordered = frame.sort_values("completion_order")["mean_test_accuracy"].to_numpy()
    step = ax.lines[0].get_ydata()
    np.testing.assert_allclose(step, np.maximum.accumulate(ordered))
    plt.close(fig)


def test_score_map_marks_best_on_log_axes():
    plt = plots._style()
    frame = _leaderboard()
    fig = plots.draw_score_map(plt, frame, CONFIG, "accuracy")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    best = json.loads(frame.loc[frame["mean_test_accuracy"].idxmax(), "params"])
    star = [c for c in ax.collections if c.get_label() == "best"][0]
    x_name, y_name = plots._pick_map_parameters(frame, CONFIG)
    assert tuple(star.get_offsets()[0]) == (best[x_name], best[y_name])
    plt.close(fig)
