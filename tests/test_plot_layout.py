"""Plots checked as rendered figures: nothing overlaps, nothing is cut off, nothing misleads.

Every plot of a small regression study and a small classification study (real Snakemake on
scikit-learn's diabetes and iris data) is drawn again from the study's leaderboard and rendered;
the checks read the text artists' bounding boxes from matplotlib's renderer:

* tick labels of one axis do not overlap each other (log axes over less than a decade);
* every text lies inside the figure (colour bar labels, long metric names);
* titles do not overlap colour bars or legends; a legend covers no axis or tick label;
* no two texts overlap (the score map's cell values, the parallel plot's value labels).

The unit tests below give the same checks awkward leaderboards (fast, no Snakemake).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from snaketune.results import plots

TOLERANCE = 1.0  # pixels: anti-aliasing and rounding, not a real overlap


def _overlap(a, b) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > TOLERANCE and min(a.y1, b.y1) - max(a.y0, b.y0) > TOLERANCE


def _drawn_tick_labels(axis) -> list:
    # The ticks matplotlib draws (inside the view), not the spare Tick objects it keeps; label2
    # is the label on the other side (a colour bar's).
    ticks = axis._update_ticks()
    return [label for t in ticks for label in (t.label1, t.label2) if label.get_visible() and label.get_text().strip()]


def _name(text) -> str:
    return repr(text.get_text()[:40])


def layout_problems(fig) -> list[str]:
    """What a reader would see as broken in ``fig``, one line each (empty: it reads well)."""
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    problems = []
    tick_labels, all_tick_labels = [], set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels = _drawn_tick_labels(axis)
            tick_labels += labels
            ticks = axis.get_major_ticks() + axis.get_minor_ticks()
            all_tick_labels |= {id(label) for t in ticks for label in (t.label1, t.label2)}
            extents = [t.get_window_extent(renderer) for t in labels]
            for i in range(len(labels)):
                for j in range(i):
                    if _overlap(extents[i], extents[j]):
                        problems.append(f"tick labels {_name(labels[j])} and {_name(labels[i])} overlap")
    texts = [
        t
        for t in fig.findobj(Text)
        if id(t) not in all_tick_labels and t.get_visible() and t.get_text().strip() and t.figure is fig
    ]
    texts = [t for t in texts if not (t.axes is not None and not t.axes.get_visible())]
    everything = texts + tick_labels
    for t in everything:
        e = t.get_window_extent(renderer)
        if (
            e.x0 < box.x0 - TOLERANCE
            or e.y0 < box.y0 - TOLERANCE
            or e.x1 > box.x1 + TOLERANCE
            or e.y1 > box.y1 + TOLERANCE
        ):
            problems.append(f"text {_name(t)} is outside the figure ({e.bounds} not in {box.bounds})")
    # No two texts overlap (tick labels against each other were checked per axis above).
    extents = [t.get_window_extent(renderer) for t in everything]
    for i in range(len(everything)):
        for j in range(i):
            if i >= len(texts) and j >= len(texts):
                continue
            if _overlap(extents[i], extents[j]):
                problems.append(f"texts {_name(everything[j])} and {_name(everything[i])} overlap")
    # Titles against colour bars and legends; legends against axis and tick labels.
    legends = [a.get_legend() for a in fig.axes if a.get_legend()] + list(fig.legends)
    colorbars = [a for a in fig.axes if a.get_label() == "<colorbar>"]
    titles = [a.title for a in fig.axes if a.title.get_text()] + ([fig._suptitle] if fig._suptitle else [])
    for title in titles:
        t = title.get_window_extent(renderer)
        for cb in colorbars:
            if _overlap(t, cb.get_tightbbox(renderer)):
                problems.append(f"title {_name(title)} overlaps the colour bar")
        for legend in legends:
            if _overlap(t, legend.get_window_extent(renderer)):
                problems.append(f"title {_name(title)} overlaps a legend")
    labels = [a.xaxis.label for a in fig.axes] + [a.yaxis.label for a in fig.axes] + tick_labels
    for legend in legends:
        lb = legend.get_window_extent(renderer)
        for label in labels:
            if label.get_visible() and label.get_text().strip() and _overlap(lb, label.get_window_extent(renderer)):
                problems.append(f"a legend covers the label {_name(label)}")
    return sorted(set(problems))


# ----------------------------------------------------------------------------------------------
# every plot of two small real studies

REGRESSION = {
    "study": "reg",
    "data": {"loader": "diabetes", "test_size": 0.2},
    "estimator": {"class": "sklearn.linear_model.ElasticNet", "params": {"max_iter": 5000}},
    "search": {
        "random": {
            "n_iter": 16,
            "seed": 0,
            "params": {
                # Less than a decade on a log axis: the tick labels that used to run together.
                "alpha": {"loguniform": [0.02, 0.1]},
                "l1_ratio": {"uniform": [0.0, 1.0]},
                "selection": ["cyclic", "random"],
            },
        }
    },
    "cv": {"kind": "kfold", "n_splits": 3, "shuffle": True, "seed": 0},
    "scoring": ["neg_root_mean_squared_error", "r2"],
}
CLASSIFICATION = {
    "study": "clf",
    "data": {"loader": "iris"},
    "estimator": {"class": "sklearn.svm.SVC"},
    "search": {"grid": {"C": {"logspace": [-2, 2, 5]}, "gamma": {"logspace": [-3, 1, 5]}, "shrinking": [True, False]}},
    "cv": {"kind": "stratified", "n_splits": 3, "shuffle": True, "seed": 0},
    "scoring": ["accuracy"],
}


@pytest.mark.slow
@pytest.mark.parametrize("config", [REGRESSION, CLASSIFICATION], ids=["regression", "classification"])
def test_every_plot_of_a_real_study_reads_well(make_study, config):
    import pandas as pd

    from snaketune.config.load import load_config

    study = make_study(config)
    study.snakemake()
    full = load_config(config, study.workdir)
    frame = pd.read_csv(study.out / "leaderboard.csv")
    plt = plots._style()
    names = plots.plot_names(full)
    assert {"marginal", "score_map", "parallel"} <= set(names)
    for name in names:
        assert (study.out / "plots" / f"{name}.png").stat().st_size > 5000
        fig = plots.DRAW[name](plt, frame, full, full["refit"])
        assert layout_problems(fig) == [], name
        if config is REGRESSION:  # RMSE, a loss shown as a loss under its short name
            text = " ".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))
            assert "RMSE" in text and "neg_root_mean_squared_error" not in text, (name, text)
            if name in ("marginal", "best_so_far", "fit_time"):
                assert fig.axes[0].get_ylabel().startswith("mean RMSE (lower is better)"), name
        plt.close(fig)


# ----------------------------------------------------------------------------------------------
# the same checks, and what each plot must say, on awkward leaderboards (unit)


def _leaderboard(config, score, std, n_folds=3, seed=0, metric="accuracy"):
    """A leaderboard of ``config``'s candidates, mean ``score(params)`` and fold spread ``std``."""
    import pandas as pd

    from snaketune.search.space import candidates

    rng = np.random.default_rng(seed)
    rows = []
    for i, p in enumerate(candidates(config["search"])):
        folds = score(p) + rng.normal(0, std, n_folds)
        row = {"mean_fit_time": rng.uniform(0.001, 0.2), "params": json.dumps(p, sort_keys=True)}
        row.update({f"split{k}_test_{metric}": folds[k] for k in range(n_folds)})
        row.update({f"mean_test_{metric}": folds.mean(), f"std_test_{metric}": folds.std()})
        row.update(n_failed=0, n_timeout=0, completion_order=i + 1)
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame[f"rank_test_{metric}"] = frame[f"mean_test_{metric}"].rank(ascending=False, method="min").astype(int)
    return frame


def _config(search, refit="accuracy"):
    return {"study": "u", "refit": refit, "scoring": [refit], "search": search}


GRID = _config({"grid": {"C": {"logspace": [-2, 2, 5]}, "gamma": {"logspace": [-3, 1, 5]}, "kernel": ["rbf", "poly"]}})


def _texts(fig) -> str:
    return " ".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))


def test_score_map_cells_show_a_loss_as_a_loss():
    """A 5 x 5 grid of an error (stored negated, ``neg_mean_absolute_error``): every cell's value
    is readable and shown as the loss, positive; the best cell is the lowest MAE, its value above
    its outline (not under a star); the colour bar says MAE, lower is better."""
    config = _config(GRID["search"], refit="neg_mean_absolute_error")
    frame = _leaderboard(config, lambda p: -55.0 - 3 * abs(np.log10(p["C"])), 2.0, metric="neg_mean_absolute_error")
    plt = plots._style()
    fig = plots.draw_score_map(plt, frame, config, "neg_mean_absolute_error")
    assert layout_problems(fig) == []
    ax = fig.axes[0]
    values = [float(t.get_text().replace("−", "-")) for t in ax.texts]
    assert len(values) == 25 and all(v > 0 for v in values)
    lowest = -frame["mean_test_neg_mean_absolute_error"].max()
    (best_text,) = [t for t in ax.texts if abs(float(t.get_text()) - lowest) < 0.01]
    (star,) = [c for c in ax.collections if c.get_label() == "best"]
    assert np.allclose(star.get_offsets()[0], best_text.xy)
    assert best_text.get_zorder() > star.get_zorder()
    assert fig.axes[1].get_ylabel() == "mean MAE (lower is better)"
    assert "neg_" not in _texts(fig)
    plt.close(fig)


@pytest.mark.parametrize("name", ["marginal", "best_so_far", "fit_time", "fold_spread", "parallel"])
def test_a_loss_is_drawn_as_a_loss(name):
    """RMSE stored as ``neg_root_mean_squared_error`` (about -550): drawn positive under its short
    name, the best marked at the lowest RMSE, the best-so-far curve going down."""
    search = {
        "random": {"n_iter": 30, "seed": 0, "params": {"C": {"loguniform": [1e-2, 1e2]}, "tol": {"uniform": [0, 1]}}}
    }
    refit = "neg_root_mean_squared_error"
    config = _config(search, refit=refit)
    frame = _leaderboard(config, lambda p: -550.0 - 20 * abs(np.log10(p["C"])), 5.0, metric=refit)
    lowest = -frame[f"mean_test_{refit}"].max()
    plt = plots._style()
    fig = plots.DRAW[name](plt, frame, config, refit)
    assert layout_problems(fig) == []
    text = _texts(fig)
    assert "RMSE" in text and "neg_" not in text and "−5" not in text and "-5" not in text, text
    ax = fig.axes[0]
    if name in ("marginal", "best_so_far", "fit_time"):
        low, high = ax.get_ylim()
        assert 0 < low <= lowest < high
        assert "RMSE" in ax.get_ylabel() and "lower is better" in ax.get_ylabel()
        stars = [c for c in ax.collections if c.get_offsets().shape[0] == 1 and c.get_facecolor().size == 0]
        assert stars and np.isclose(stars[-1].get_offsets()[0][1], lowest)
    if name == "best_so_far":
        (step,) = [line for line in ax.lines if line.get_label() == "best so far"]
        ys = step.get_ydata()
        assert (np.diff(ys) <= 0).all() and np.isclose(ys[-1], lowest)
    if name == "parallel":
        best = [line for line in ax.lines if line.get_label().startswith("best")]
        assert best[0].get_label() == f"best ({plots._short(float(lowest))})"
    plt.close(fig)


@pytest.mark.parametrize("slowest", [0.0021, 0.9, 7.0])
def test_fit_time_axis_reads_well_at_any_speed(slowest):
    """Fits of about a millisecond (ElasticNet on diabetes, seen in CI) gave nine tick labels like
    ``0.00025`` that ran together; the axis now says ms below one second, s above, five ticks."""
    frame = _leaderboard(GRID, lambda p: 0.8 - 0.01 * abs(np.log10(p["C"])), 0.01)
    rng = np.random.default_rng(1)
    frame["mean_fit_time"] = rng.uniform(slowest / 8, slowest, len(frame))
    plt = plots._style()
    fig = plots.draw_fit_time(plt, frame, GRID, "accuracy")
    assert layout_problems(fig) == []
    ax = fig.axes[0]
    unit = "ms" if slowest < 1 else "s"
    assert f"({unit})" in ax.get_xlabel()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert 3 <= len(labels) <= 7 and all(len(t) <= 5 for t in labels), labels
    # the labels are the times in that unit
    shown = max(float(t.replace("−", "-")) for t in labels)
    assert shown <= frame["mean_fit_time"].max() * (1000 if unit == "ms" else 1) * 1.3
    plt.close(fig)


def test_marginal_log_axis_within_a_decade_and_noise_not_signal():
    """Four panels a row, log axes over less than a decade or two: their tick labels do not run
    together (``2×10⁻²3×10⁻²4×10⁻²``). The means differ by 0.01 while the folds spread by 0.027:
    the score axis spans at least ± one fold std, so the noise does not fill the panel."""
    params = {
        "alpha": {"loguniform": [0.02, 0.1]},
        "beta": {"loguniform": [0.002, 0.03]},
        "gamma": {"loguniform": [3, 40]},
        "l1_ratio": {"uniform": [0, 1]},
    }
    config = _config({"random": {"n_iter": 30, "seed": 0, "params": params}})
    frame = _leaderboard(config, lambda p: 0.8, 0.01)
    frame["mean_test_accuracy"] = np.linspace(0.727, 0.737, len(frame))
    frame["std_test_accuracy"] = 0.027
    plt = plots._style()
    fig = plots.draw_marginal(plt, frame, config, "accuracy")
    assert layout_problems(fig) == []
    low, high = fig.axes[0].get_ylim()
    assert high - low >= 2 * 0.027
    plt.close(fig)


def test_importance_draws_nothing_when_the_surrogate_explains_nothing():
    """Scores that are pure noise: the surrogate's out-of-bag R² is <= 0, so no bars, and the
    figure says the score is not explained."""
    config = _config(
        {"random": {"n_iter": 40, "seed": 0, "params": {"C": {"loguniform": [1e-3, 1e3]}, "tol": {"uniform": [0, 1]}}}}
    )
    rng = np.random.default_rng(3)
    frame = _leaderboard(config, lambda p: 0.8 + rng.normal(0, 0.01), 0.01)
    assert plots.parameter_importance(frame, config)["r2_oob"] <= 0
    plt = plots._style()
    fig = plots.draw_importance(plt, frame, config, "accuracy")
    ax = fig.axes[0]
    assert not ax.patches, "bars drawn for a surrogate that explains nothing"
    text = " ".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))
    assert "not explained" in text
    assert layout_problems(fig) == []
    plt.close(fig)


def test_one_configuration_is_singular():
    config = _config({"grid": {"C": [1.0], "gamma": [0.1], "kernel": ["rbf"]}})
    frame = _leaderboard(config, lambda p: 0.9, 0.01)
    plt = plots._style()
    for name in ("parallel", "fold_spread", "best_so_far"):
        fig = plots.DRAW[name](plt, frame, config, "accuracy")
        text = " ".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))
        assert "1 configurations" not in text, (name, text)
        assert layout_problems(fig) == [], name
        plt.close(fig)


def test_hyperband_history_reads_well(tmp_path):
    """Score against resource (adaptive searches): rungs 1 … 81 on a log axis, a legend of five
    brackets right of the axes."""
    import pandas as pd

    metric = "mean_test_neg_root_mean_squared_error"
    rows = [
        {"bracket": m % 5, "model_id": f"m{m}", "rung": 0, "units": u, metric: -60 + 0.1 * u - m}
        for m in range(10)
        for u in (1, 3, 9, 27, 81)[: 1 + m % 5]
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "history.csv", index=False)
    pd.DataFrame({"n_resources": [1, 3, 9, 27, 81]}).to_csv(tmp_path / "leaderboard.csv", index=False)
    plt = plots._style()
    fig = plots.draw_history(plt, str(tmp_path / "history.csv"), "neg_root_mean_squared_error", "study: every model")
    assert len(fig.axes[0].lines) > 10 and layout_problems(fig) == []
    plt.close(fig)


def test_nested_and_optuna_figures_read_well(tmp_path):
    """The nested CV figure (outer score against inner best, five folds) and the model-based
    search's history (four rounds, one failed configuration) pass the same checks."""
    import pandas as pd

    from snaketune.results.nested import draw_outer_vs_inner
    from snaketune.results.optuna_study import draw_history

    refit = "neg_root_mean_squared_error"
    inner, outer = [-551.2, -560.4, -548.9, -570.3, -555.0], [-580.1, -562.3, -590.7, -575.5, -566.8]
    doc = {
        "refit": refit,
        "outer_folds": [{"outer_fold": k, "inner_best": {refit: v}} for k, v in enumerate(inner)],
        "outer_scores": {refit: outer},
        "mean": {refit: float(np.mean(outer))},
        "study_cv_best": -549.5,
    }
    plt = plots._style()
    fig = draw_outer_vs_inner(plt, doc, "study: nested cross-validation")
    assert layout_problems(fig) == []
    plt.close(fig)
    scores = np.linspace(-600, -550, 24)
    scores[5] = np.nan
    pd.DataFrame({"number": range(24), "round": np.arange(24) // 6, f"mean_test_{refit}": scores}).to_csv(
        tmp_path / "leaderboard.csv", index=False
    )
    config = {"study": "s", "refit": refit, "search": {"optuna": {"sampler": "tpe"}}}
    fig = draw_history(plt, str(tmp_path / "leaderboard.csv"), config)
    assert len(fig.axes[0].collections) >= 2 and layout_problems(fig) == []
    plt.close(fig)


def test_robust_limits_of_a_loss_mirror_those_of_a_score():
    """A loss keeps its lowest (best) value on the axis and cuts the terrible high ones, exactly
    as a score keeps its highest and cuts the low ones."""
    losses = np.array([1.0, 2.0, 3.0, 4.0, 50.0])
    low, high, n_below, n_above = plots.robust_limits(-losses, (-np.inf, 0.0))
    mirrored = plots.robust_limits(losses, (0.0, np.inf), lower_is_better=True)
    assert mirrored == (-high, -low, n_above, n_below)
    assert mirrored[0] < 1.0 < 4.0 < mirrored[1] < 50.0 and mirrored[2:] == (0, 1)


SCALE_RANDOM = _config(
    {
        "random": {
            "n_iter": 20_000,
            "seed": 0,
            "params": {
                "C": {"loguniform": [1e-3, 1e3]},
                "tol": {"uniform": [0, 1]},
                "kernel": ["rbf", "poly", "sigmoid"],
            },
        }
    }
)
SCALE_GRID = _config({"grid": {"alpha": {"logspace": [-4, 4, 20_000]}, "fit_intercept": [True], "tol": [1e-4]}})


@pytest.fixture(scope="module")
def scale_frames():
    """Leaderboards of 20,000 configurations (issue 28), 1 % of them failed."""
    import pandas as pd

    frames = {}
    rng = np.random.default_rng(0)
    for name, config in (("random", SCALE_RANDOM), ("grid", SCALE_GRID)):
        if name == "random":  # as the config's space draws them (ParameterSampler takes seconds)
            value = 10 ** rng.uniform(-3, 3, 20_000)
            kernels, tols = rng.choice(["rbf", "poly", "sigmoid"], 20_000), rng.uniform(0, 1, 20_000)
            cands = [{"C": c, "tol": t, "kernel": k} for c, t, k in zip(value, tols, kernels, strict=True)]
        else:
            value = np.logspace(-4, 4, 20_000)
            cands = [{"alpha": a, "fit_intercept": True, "tol": 1e-4} for a in value]
        folds = (0.9 - 0.02 * np.abs(np.log10(value)))[:, None] + rng.normal(0, 0.02, (len(cands), 3))
        frame = pd.DataFrame({f"split{k}_test_accuracy": folds[:, k] for k in range(3)})
        frame["params"] = [json.dumps(p, sort_keys=True) for p in cands]
        frame["mean_fit_time"] = rng.uniform(0.001, 0.2, len(cands))
        frame["mean_test_accuracy"], frame["std_test_accuracy"] = folds.mean(axis=1), folds.std(axis=1)
        frame.loc[frame.index % 100 == 7, "mean_test_accuracy"] = np.nan
        frame["rank_test_accuracy"] = frame["mean_test_accuracy"].rank(ascending=False, method="min").fillna(
            len(frame)).astype(int)  # fmt: skip
        frame["completion_order"] = np.arange(1, len(frame) + 1)
        frames[name] = (config, frame)
    return frames


@pytest.mark.parametrize("kind", ["random", "grid"])
def test_every_plot_of_20000_configurations_reads_well_and_says_what_it_draws(scale_frames, kind):
    """No figure draws 20,000 dots: the every-configuration figures draw a seeded sample (said
    on the figure) or a binned view of all (said), the top-n figures their top; the layout
    checker finds nothing wrong with any of them."""
    config, frame = scale_frames[kind]
    plt = plots._style()
    for name in plots.plot_names(config):
        fig = plots.DRAW[name](plt, frame, config, "accuracy")
        assert layout_problems(fig) == [], name
        text = _texts(fig)
        drawn = sum(len(c.get_offsets()) for ax in fig.axes for c in ax.collections if hasattr(c, "get_offsets"))
        if name in ("best_so_far", "fit_time"):
            assert "a random 2,000 of the 19,800 configurations" in text, (name, text)
            assert drawn < 2_100, name
        elif name == "marginal":
            assert "19,800 configurations: numeric parameters as a density of all" in text, text
            if kind == "random":
                assert f"categories: a random {plots.MAX_DOTS:,}" in text
        elif name == "score_map":
            assert "points binned: each cell the best in it, 200 failed not shown" in text, text
        elif name == "importance":
            assert "learnt from a random 500 of the 19,800 scored configurations" in text, text
        plt.close(fig)
