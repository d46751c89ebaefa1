"""Plots: which a study gets, and that each draws from awkward leaderboards (unit, no Snakemake)."""

from __future__ import annotations

import json
from pathlib import Path

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


RANDOM = {
    "study": "r",
    "refit": "accuracy",
    "scoring": ["accuracy"],
    "search": {
        "random": {
            "n_iter": 60,
            "seed": 0,
            "params": {
                "C": {"loguniform": [1e-3, 1e3]},
                "tol": {"uniform": [0.0, 1.0]},
                "max_depth": [5, 10, 20, None],
                "kernel": ["rbf", "sigmoid"],
            },
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
    assert set(plots.plot_names(CONFIG)) == set(plots.DRAW) - {"importance"}
    two = {"search": {"grid": {"n_neighbors": [1, 2], "metric": ["a", "b"]}}}
    assert plots.plot_names(two) == ["marginal", "fold_spread", "best_so_far", "fit_time"]
    rnd = {"search": {"random": {"n_iter": 5, "params": {"C": {"loguniform": [1e-3, 1]}, "tol": {"uniform": [0, 1]}}}}}
    assert "score_map" in plots.plot_names(rnd) and "parallel" not in plots.plot_names(rnd)
    assert "importance" in plots.plot_names(rnd)
    assert plots.numeric_parameters(CONFIG) == ["C", "gamma"]
    # A numeric parameter fixed at one value in every grid is no axis of a score map (it would be
    # one line, the marginal's); two grids giving it two values make it one.
    fixed = {"search": {"grid": [{"alpha": {"logspace": [-4, 4, 50]}, "tol": [1e-4]}, {"alpha": [1.5], "tol": [1e-4]}]}}
    assert "score_map" not in plots.plot_names(fixed) and plots.map_parameters(fixed) == ["alpha"]
    fixed["search"]["grid"][1]["tol"] = [1e-3]
    assert "score_map" in plots.plot_names(fixed)
    assert plots.log_parameters(CONFIG) == {"C", "gamma"}


@pytest.mark.parametrize("failed", [(), (0, 5, 17)], ids=["ok", "some-failed"])
@pytest.mark.parametrize("config", [CONFIG, RANDOM], ids=["grid", "random"])
def test_every_plot_draws_a_png(tmp_path, failed, config):
    from PIL import Image

    path = tmp_path / "leaderboard.csv"
    _leaderboard(config, failed=failed).to_csv(path, index=False)
    outputs = [str(tmp_path / f"{name}.png") for name in plots.plot_names(config)]
    plots.make_plots(str(path), config, outputs)
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


def _figure(draw, frame, config=CONFIG):
    plt = plots._style()
    return plt, draw(plt, frame, config, "accuracy")


def _tick_texts(ax):
    return [t.get_text() for t in ax.get_xticklabels()]


def test_categories_keep_config_order_in_marginal_and_parallel():
    frame = _leaderboard(RANDOM)
    plt, fig = _figure(plots.draw_marginal, frame, RANDOM)
    panels = {ax.get_xlabel(): ax for ax in fig.axes}
    assert list(panels) == ["C (log)", "tol", "max_depth", "kernel"]  # the config's order too
    assert _tick_texts(panels["max_depth"]) == ["5", "10", "20", "null"]  # not 10, 20, 5, null
    assert _tick_texts(panels["kernel"]) == ["rbf", "sigmoid"]
    assert panels["C (log)"].get_xscale() == "log"
    plt.close(fig)
    plt, fig = _figure(plots.draw_parallel, frame, RANDOM)
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert [v for v in labels if v in ("5", "10", "20", "null")] == [
        v for v in ("5", "10", "20", "null") if v in labels
    ]
    depth = {t.get_text(): t.get_position()[1] for t in fig.axes[0].texts if t.get_text() in ("5", "10", "20", "null")}
    assert sorted(depth, key=depth.get) == [v for v in ("5", "10", "20", "null") if v in depth]
    plt.close(fig)


def test_random_search_marginal_joins_no_points_grid_shows_best_per_value():
    frame = _leaderboard(RANDOM)
    plt, fig = _figure(plots.draw_marginal, frame, RANDOM)
    for ax in fig.axes:
        assert [line for line in ax.lines if len(line.get_xdata()) > 1] == [], ax.get_xlabel()
        # every configuration is one dot
        dots = [c for c in ax.collections if len(c.get_offsets()) > 1]
        assert len(dots[0].get_offsets()) == frame["mean_test_accuracy"].notna().sum()
    plt.close(fig)
    frame = _leaderboard(CONFIG)
    plt, fig = _figure(plots.draw_marginal, frame, CONFIG)
    gamma = next(ax for ax in fig.axes if ax.get_xlabel() == "gamma (log)")
    (trend,) = [line for line in gamma.lines if len(line.get_xdata()) > 1]
    by_hand = frame.assign(g=[json.loads(p)["gamma"] for p in frame["params"]]).groupby("g")["mean_test_accuracy"]
    np.testing.assert_allclose(trend.get_xdata(), by_hand.max().index)
    np.testing.assert_allclose(trend.get_ydata(), by_hand.max().to_numpy())
    plt.close(fig)


def _near_perfect(config=CONFIG, terrible=(3, 11, 40), slow=(7, 8)):
    """Scores near 1.0 with a wide fold spread; three terrible configurations; two slow ones."""
    frame = _leaderboard(config)
    rng = np.random.default_rng(1)
    n = len(frame)
    frame["mean_test_accuracy"] = rng.uniform(0.95, 0.995, n)
    frame["std_test_accuracy"] = 0.04
    frame.loc[list(terrible), "mean_test_accuracy"] = [0.1, 0.12, 0.2]
    frame["mean_fit_time"] = rng.uniform(0.1, 0.2, n)
    frame.loc[list(slow), "mean_fit_time"] = [2.4, 2.5]
    frame["rank_test_accuracy"] = frame["mean_test_accuracy"].rank(ascending=False, method="min").astype(int)
    return frame


def test_axes_stay_within_the_metric_and_the_interesting_range(tmp_path):
    from PIL import Image

    frame = _near_perfect()
    for draw in (plots.draw_marginal, plots.draw_best_so_far, plots.draw_fit_time, plots.draw_fold_spread):
        plt, fig = _figure(draw, frame)
        ax = fig.axes[0]
        if draw is plots.draw_fold_spread:  # scores on x, only the top 15: nothing off-axis
            assert ax.get_xlim()[1] <= 1.0
            plt.close(fig)
            continue
        low, high = ax.get_ylim()
        assert high <= 1.0, (draw.__name__, high)  # accuracy never drawn above 1
        assert low > 0.8, (draw.__name__, low)  # 3 terrible configurations do not stretch it
        text = " ".join([ax.get_xlabel()] + [t.get_text() for t in fig.texts])
        assert "3 configurations below the axis (lowest 0.1" in text, (draw.__name__, text)
        for coll in ax.collections:  # whiskers (mean ± std = up to 1.035) stop at 1.0
            for seg in getattr(coll, "get_segments", list)():
                assert np.max(np.asarray(seg)[:, 1]) <= 1.0 + 1e-12
        if draw is plots.draw_fit_time:
            assert ax.get_xscale() == "linear" and ax.get_xlim()[1] < 2.4
            assert "2 slower configurations right of the axis (slowest 2.5 s" in ax.get_xlabel()
        path = tmp_path / f"{draw.__name__}.png"
        fig.savefig(path)
        plt.close(fig)
        with Image.open(path) as image:
            assert image.size[0] > 300


def test_legend_sits_outside_the_data():
    plt, fig = _figure(plots.draw_fit_time, _near_perfect())
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 >= ax.get_window_extent().x1  # right of the axes, over no point
    plt.close(fig)


def test_importance_finds_the_parameter_that_matters():
    frame = _leaderboard(RANDOM)
    params = [json.loads(p) for p in frame["params"]]
    # The score depends on log10(C) only (plus fold noise); tol, max_depth, kernel do not matter.
    frame["mean_test_accuracy"] = [0.9 - 0.05 * abs(np.log10(p["C"])) for p in params]
    frame["mean_test_accuracy"] += np.random.default_rng(0).normal(0, 0.002, len(frame))
    result = plots.parameter_importance(frame, RANDOM)
    ranked = [result["names"][i] for i in np.argsort(-result["importance"])]
    assert ranked[0] == "C" and result["importance"][0] > 5 * max(result["importance"][1:])
    assert result["r2_oob"] > 0.8
    plt, fig = _figure(plots.draw_importance, frame, RANDOM)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()][-1] == "C"  # most important on top
    assert "permutation importance" in ax.get_title() and "random-forest surrogate" in ax.get_title()
    plt.close(fig)


def test_hyperband_history_has_rungs_as_ticks(tmp_path):
    import pandas as pd
    from PIL import Image

    rows = []
    for model in range(6):
        for units in (1, 3, 9, 27)[: 1 + model % 4]:
            rows.append(
                {
                    "bracket": model % 2,
                    "model_id": f"m{model}",
                    "rung": 0,
                    "units": units,
                    "mean_test_accuracy": 0.7 + 0.01 * units,
                }
            )
    rows[0]["mean_test_accuracy"] = 0.05  # one diverged model
    history = tmp_path / "history.csv"
    pd.DataFrame(rows).to_csv(history, index=False)
    pd.DataFrame({"n_resources": [1, 3, 9, 27, 27]}).to_csv(tmp_path / "leaderboard.csv", index=False)
    plt = plots._style()
    fig = plots.draw_history(plt, str(history), "accuracy")
    ax = fig.axes[0]
    assert list(ax.get_xticks()) == [1, 3, 9, 27] and _tick_texts(ax) == ["1", "3", "9", "27"]
    assert ax.get_ylim()[1] <= 1.0 and ax.get_ylim()[0] > 0.3
    plt.close(fig)
    plots.plot_history(str(history), "accuracy", str(tmp_path / "h.png"))
    with Image.open(tmp_path / "h.png") as image:
        image.verify()


def test_marginal_wraps_many_parameters_into_rows():
    config = json.loads(json.dumps(RANDOM))
    config["search"]["random"]["params"]["gamma"] = {"loguniform": [1e-4, 1.0]}
    frame = _leaderboard(config)
    plt, fig = _figure(plots.draw_marginal, frame, config)
    assert len(fig.axes) == 5  # no empty panels
    assert sorted(ax.get_subplotspec().rowspan.start for ax in fig.axes) == [0, 0, 0, 0, 1]
    plt.close(fig)


def test_a_leaderboard_drawn_before_gets_its_figures_back_by_copy(tmp_path):
    """A reverted edit: the figures of a leaderboard seen before are copied, not drawn again;
    any change in the table means drawing anew. A figure that fails names itself."""
    from snaketune.runtime.calls import plots as plots_call

    study = tmp_path / "study"
    (study / "plots").mkdir(parents=True)
    table = study / "leaderboard.csv"
    outputs = [str(study / "plots" / f"{name}.png") for name in plots.plot_names(CONFIG)]
    first, second = _leaderboard(seed=0), _leaderboard(seed=1)

    def run(frame) -> tuple[str, dict]:
        frame.to_csv(table, index=False)
        message = plots_call(leaderboard=str(table), config=CONFIG, outputs=outputs)
        return message, {p: open(p, "rb").read() for p in outputs}

    message, drawn = run(first)
    assert "copied" not in message
    message, other = run(second)
    assert "copied" not in message and other != drawn
    message, again = run(first)
    assert f"{len(outputs)} copied from" in message and again == drawn
    # The cache keeps the most recent figures of each plot only.
    for seed in range(2, 2 + plots.FIGURE_CACHE_ENTRIES):
        run(_leaderboard(seed=seed))
    for name in plots.plot_names(CONFIG):
        assert len(list((study / ".cache" / "plots" / name).iterdir())) == plots.FIGURE_CACHE_ENTRIES
    # A figure that cannot be drawn fails the job and names the file.
    with pytest.raises(RuntimeError, match="marginal.png"):
        plots.make_plots(str(table), dict(CONFIG, refit="no_such_metric"), outputs[:1])


def test_a_figure_that_cannot_show_the_change_is_not_redrawn(tmp_path):
    """A configuration added below the top 15 (and p-values, times of others moving) changes
    what the every-configuration figures show, not the fold spread or the parallel coordinates
    of the top: those two are copied (the same bytes), the others drawn again. Fit times below
    the top change the fit-time figure only."""
    import pandas as pd

    from snaketune.runtime.calls import plots as plots_call

    study = tmp_path / "study"
    (study / "plots").mkdir(parents=True)
    table = study / "leaderboard.csv"
    outputs = [str(study / "plots" / f"{name}.png") for name in plots.plot_names(CONFIG)]
    frame = _leaderboard()
    frame["p_vs_best"] = 0.5
    frame.to_csv(table, index=False)
    assert "copied" not in plots_call(leaderboard=str(table), config=CONFIG, outputs=outputs)
    before = {p: open(p, "rb").read() for p in outputs}
    worst = frame.iloc[[frame["mean_test_accuracy"].idxmin()]].assign(
        params=json.dumps({"C": 0.01, "gamma": 3.0, "kernel": "rbf", "max_iter": None}), completion_order=len(frame) + 1
    )
    grown = pd.concat([frame, worst], ignore_index=True).assign(p_vs_best=0.4)
    grown["rank_test_accuracy"] = grown["mean_test_accuracy"].rank(ascending=False, method="min").astype(int)
    grown.to_csv(table, index=False)
    message = plots_call(leaderboard=str(table), config=CONFIG, outputs=outputs)
    assert "2 copied from" in message
    after = {p: open(p, "rb").read() for p in outputs}
    same = sorted(Path(p).stem for p in outputs if after[p] == before[p])
    assert same == ["fold_spread", "parallel"]
    # Fit times of configurations outside the top (a rerun trial): only the fit-time figure shows
    # them; every other figure is copied, the fit-time figure drawn anew.
    below = grown["rank_test_accuracy"] > plots.PARALLEL_TOP
    grown.loc[below, "mean_fit_time"] *= 1.5
    grown.to_csv(table, index=False)
    message = plots_call(leaderboard=str(table), config=CONFIG, outputs=outputs)
    assert f"{len(outputs) - 1} copied from" in message
    timed = {p: open(p, "rb").read() for p in outputs}
    assert sorted(Path(p).stem for p in outputs if timed[p] != after[p]) == ["fit_time"]
