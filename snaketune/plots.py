"""Plots of a leaderboard (matplotlib, PNG, a colour-blind-safe palette)."""

from __future__ import annotations

import json
import math

import numpy as np

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def _space_values(config: dict) -> dict[str, list]:
    """Parameter -> candidate values (lists) or a distribution marker, from the config."""
    (kind, spec), = config["search"].items()
    spaces = spec if kind == "grid" else spec["params"]
    spaces = spaces if isinstance(spaces, list) else [spaces]
    values: dict[str, list] = {}
    for space in spaces:
        for name, v in space.items():
            values.setdefault(name, [])
            values[name].append(v)
    return values


def numeric_parameters(config: dict) -> list[str]:
    """Searched parameters whose every candidate is a number (or a numeric distribution)."""
    names = []
    for name, specs in _space_values(config).items():
        ok = True
        for spec in specs:
            if isinstance(spec, dict):
                continue
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in spec):
                ok = False
        if ok:
            names.append(name)
    return sorted(names)


def plot_names(config: dict) -> list[str]:
    """The plots a study gets; decided from the config alone so outputs are known at parse time."""
    names = ["marginal", "fold_spread", "best_so_far", "fit_time"]
    if len(numeric_parameters(config)) >= 2:
        names.append("score_map")
    if len(_space_values(config)) > 2:
        names.append("parallel")
    return names


def _style():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "figure.dpi": 110,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    return plt


def _param_frame(frame):
    params = [json.loads(p) for p in frame["params"]]
    return params


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _log_axis(values) -> bool:
    nums = [v for v in values if _is_number(v)]
    return bool(nums) and min(nums) > 0 and max(nums) / min(nums) > 100


def make_plots(leaderboard_csv: str, config: dict, outputs: list[str]) -> None:
    """Draw every plot named in ``outputs`` (``plots/<name>.png``) from the leaderboard."""
    import pandas as pd

    frame = pd.read_csv(leaderboard_csv)
    plt = _style()
    refit = config["refit"]
    for path in outputs:
        name = path.rsplit("/", 1)[-1].removesuffix(".png")
        fig = DRAW[name](plt, frame, config, refit)
        fig.savefig(path, bbox_inches="tight")
        plt.close(fig)


def _categorical_split(params, names):
    """The first parameter with few non-numeric values, to draw one line per value."""
    for name in names:
        values = {json.dumps(p.get(name)) for p in params if name in p}
        if 1 < len(values) <= 8 and not all(_is_number(p.get(name)) for p in params if name in p):
            return name
    return None


def draw_marginal(plt, frame, config, refit):
    """Score against each parameter's value: mean ± std over folds, one line per category."""
    params = _param_frame(frame)
    names = sorted({k for p in params for k in p})
    mean, std = frame[f"mean_test_{refit}"].to_numpy(), frame[f"std_test_{refit}"].to_numpy()
    split = _categorical_split(params, names)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        groups = {}
        for i, p in enumerate(params):
            if name not in p:
                continue
            key = json.dumps(p.get(split)) if split and split != name else ""
            groups.setdefault(key, []).append((p[name], mean[i], std[i]))
        for j, (key, rows) in enumerate(sorted(groups.items())):
            xs = [r[0] for r in rows]
            numeric = all(_is_number(x) for x in xs)
            if numeric:
                # Best score per x value (the other parameters vary too).
                best = {}
                for x, m, s in rows:
                    if x not in best or (not math.isnan(m) and (math.isnan(best[x][0]) or m > best[x][0])):
                        best[x] = (m, s)
                xs = sorted(best)
                ms = np.array([best[x][0] for x in xs])
                ss = np.array([best[x][1] for x in xs])
                ax.plot(xs, ms, marker="o", ms=3, label=json.loads(key) if key else None, color=PALETTE[j % 8])
                ax.fill_between(xs, ms - ss, ms + ss, alpha=0.2, color=PALETTE[j % 8])
                if _log_axis(xs):
                    ax.set_xscale("log")
            else:
                labels = [str(x) for x in xs]
                order = sorted(set(labels))
                ms = [max((r[1] for r in rows if str(r[0]) == lab), default=np.nan) for lab in order]
                ax.bar(order, ms, color=PALETTE[j % 8], alpha=0.8)
                ax.tick_params(axis="x", rotation=30)
        ax.set_xlabel(name)
        ax.set_ylabel(f"{refit} (best at each value, ±std)")
        if split and split != name and len(groups) > 1:
            ax.legend(title=split, fontsize=8)
    fig.suptitle(f"Marginal {refit} per parameter")
    fig.tight_layout()
    return fig


def draw_score_map(plt, frame, config, refit):
    """Mean score over the two first numeric parameters; the best configuration marked."""
    params = _param_frame(frame)
    x_name, y_name = numeric_parameters(config)[:2]
    rows = [(p[x_name], p[y_name], m) for p, m in zip(params, frame[f"mean_test_{refit}"]) if x_name in p and y_name in p]
    xs, ys, ms = (np.array(v, dtype=float) for v in zip(*rows))
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    sc = ax.scatter(xs, ys, c=ms, cmap="viridis", s=60, edgecolor="none")
    best = int(np.nanargmax(ms)) if not np.isnan(ms).all() else 0
    ax.scatter([xs[best]], [ys[best]], marker="*", s=300, facecolor="none", edgecolor="#D55E00", linewidth=2, label="best")
    if _log_axis(xs):
        ax.set_xscale("log")
    if _log_axis(ys):
        ax.set_yscale("log")
    ax.set_xlabel(x_name)
    ax.set_ylabel(y_name)
    fig.colorbar(sc, ax=ax, label=f"mean {refit}")
    ax.legend(loc="best")
    ax.set_title(f"{refit} over {x_name} × {y_name}")
    fig.tight_layout()
    return fig


def _top(frame, refit, n):
    return frame.sort_values(f"rank_test_{refit}", kind="stable").head(n)


def draw_fold_spread(plt, frame, config, refit, n=15):
    """Per-fold scores of the top configurations (is the winner consistently good?)."""
    top = _top(frame, refit, n)
    split_cols = [c for c in frame.columns if c.startswith("split") and c.endswith(f"_test_{refit}")]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(top) + 1.5))
    for i, (_, row) in enumerate(top.iterrows()):
        vals = row[split_cols].to_numpy(dtype=float)
        ax.scatter(vals, [i] * len(vals), color=PALETTE[0], s=14, alpha=0.7)
        ax.plot([row[f"mean_test_{refit}"]], [i], marker="|", color=PALETTE[3], ms=14, mew=2)
    ax.set_yticks(range(len(top)))
    ax.set_yticklabels([f"#{int(r)}  {_label(p)}" for r, p in zip(top[f"rank_test_{refit}"], top["params"])], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"{refit} per fold (bar = mean)")
    ax.set_title(f"Fold spread of the top {len(top)} configurations")
    fig.tight_layout()
    return fig


def _label(params_json: str, width: int = 60) -> str:
    p = json.loads(params_json)
    text = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(p.items()))
    return text if len(text) <= width else text[: width - 1] + "…"


def draw_best_so_far(plt, frame, config, refit):
    """Best mean score among the first k configurations, in search order."""
    ms = frame[f"mean_test_{refit}"].to_numpy(dtype=float)
    running = np.fmax.accumulate(np.where(np.isnan(ms), -np.inf, ms))
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.scatter(np.arange(1, len(ms) + 1), ms, s=10, alpha=0.5, color=PALETTE[0], label="configuration")
    ax.step(np.arange(1, len(ms) + 1), running, where="post", color=PALETTE[3], label="best so far")
    ax.set_xlabel("configuration (search order)")
    ax.set_ylabel(f"mean {refit}")
    ax.legend()
    ax.set_title("Best score so far")
    fig.tight_layout()
    return fig


def draw_fit_time(plt, frame, config, refit):
    """Mean fit time against mean score: is the best also the slowest?"""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.scatter(frame["mean_fit_time"], frame[f"mean_test_{refit}"], s=14, alpha=0.7, color=PALETTE[0])
    best = frame[frame[f"rank_test_{refit}"] == 1]
    ax.scatter(best["mean_fit_time"], best[f"mean_test_{refit}"], marker="*", s=200, color=PALETTE[3], label="best")
    if frame["mean_fit_time"].min() > 0 and frame["mean_fit_time"].max() / frame["mean_fit_time"].min() > 100:
        ax.set_xscale("log")
    ax.set_xlabel("mean fit time (s)")
    ax.set_ylabel(f"mean {refit}")
    ax.legend()
    ax.set_title("Fit time against score")
    fig.tight_layout()
    return fig


def draw_parallel(plt, frame, config, refit, n=20):
    """Parallel coordinates of the top configurations, each axis scaled to [0, 1]."""
    top = _top(frame, refit, n)
    params = [json.loads(p) for p in top["params"]]
    names = sorted({k for p in params for k in p})
    fig, ax = plt.subplots(figsize=(1.6 * len(names) + 2, 4))
    cols = []
    for name in names:
        vals = [p.get(name) for p in params]
        if all(_is_number(v) for v in vals):
            arr = np.array(vals, dtype=float)
            if _log_axis(vals):
                arr = np.log10(arr)
        else:
            cats = sorted({json.dumps(v) for v in vals})
            arr = np.array([cats.index(json.dumps(v)) for v in vals], dtype=float)
        span = arr.max() - arr.min()
        cols.append((arr - arr.min()) / span if span else np.full_like(arr, 0.5))
    scores = top[f"mean_test_{refit}"].to_numpy(dtype=float)
    cmap = plt.get_cmap("viridis")
    lo, hi = np.nanmin(scores), np.nanmax(scores)
    for i in range(len(top))[::-1]:
        c = cmap((scores[i] - lo) / (hi - lo) if hi > lo else 1.0)
        ax.plot(range(len(names)), [col[i] for col in cols], color=c, alpha=0.8)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=20)
    ax.set_yticks([])
    ax.set_title(f"Top {len(top)} configurations (colour = {refit})")
    fig.tight_layout()
    return fig


DRAW = {
    "marginal": draw_marginal,
    "score_map": draw_score_map,
    "fold_spread": draw_fold_spread,
    "best_so_far": draw_best_so_far,
    "fit_time": draw_fit_time,
    "parallel": draw_parallel,
}
