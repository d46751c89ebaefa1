"""Plots of a leaderboard (matplotlib, PNG, one style, a colour-blind-safe palette).

Every plot reads ``leaderboard.csv`` (sklearn ``cv_results_`` columns plus snaketune's
``n_failed``, ``n_timeout``, ``config_key`` and, when present, ``completion_order``). Which plots a
study gets is decided from the config alone (:func:`plot_names`), so Snakemake knows the output
files at parse time.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
BEST = "#D55E00"  # vermillion: the best configuration in every plot
MUTED = "#999999"  # failed / not-top configurations
CMAP = "cividis"  # sequential colour map made for colour-vision deficiencies

PLOT_TITLES = {
    "score_map": "Score map",
    "marginal": "Marginal score per parameter",
    "parallel": "Parallel coordinates of the top configurations",
    "best_so_far": "Best score so far",
    "fold_spread": "Fold spread of the top configurations",
    "fit_time": "Fit time against score",
    "score_vs_resource": "Score against resource, every model",
    "optimization_history": "Optimisation history (model-based search)",
}


def _spaces(config: dict) -> list[dict]:
    ((kind, spec),) = config["search"].items()
    spaces = spec if kind == "grid" else spec["params"]
    return spaces if isinstance(spaces, list) else [spaces]


def _space_values(config: dict) -> dict[str, list]:
    """Parameter -> its value specs (lists or distribution/shorthand dicts), from the config."""
    values: dict[str, list] = {}
    for space in _spaces(config):
        for name, v in space.items():
            values.setdefault(name, []).append(v)
    return values


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def numeric_parameters(config: dict) -> list[str]:
    """Searched parameters whose every candidate is a number (or a numeric distribution)."""
    names = []
    for name, specs in _space_values(config).items():
        if all(isinstance(spec, dict) or all(_is_number(v) for v in spec) for spec in specs):
            names.append(name)
    return sorted(names)


def log_parameters(config: dict) -> set[str]:
    """Parameters drawn on log axes: log-spaced in the config (logspace, loguniform, decades)."""
    from snaketune.search.space import log_spaced_parameters

    return log_spaced_parameters(config["search"])


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
            "savefig.dpi": 110,
            "figure.facecolor": "white",
            "font.size": 9,
            "axes.titlesize": 11,
            "axes.titleweight": "bold",
            "axes.labelsize": 9,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.fontsize": 8,
            "legend.frameon": False,
        }
    )
    return plt


def make_plots(leaderboard_csv: str, config: dict, outputs: list[str]) -> None:
    """Draw every plot named in ``outputs`` (``plots/<name>.png``) from the leaderboard."""
    import pandas as pd

    from snaketune.results.adaptive import PLOT_NAME

    frame = pd.read_csv(leaderboard_csv)
    if "final_rung" in frame:  # adaptive: the models that reached their bracket's last rung
        frame = frame[frame["final_rung"].astype(bool)].reset_index(drop=True)
    plt = _style()
    refit = config["refit"]
    for path in outputs:
        name = str(path).rsplit("/", 1)[-1].removesuffix(".png")
        if name == PLOT_NAME:
            history = str(Path(leaderboard_csv).with_name("history.csv"))
            plot_history(history, refit, path, title=f"{config['study']}: every model")
            continue
        fig = DRAW[name](plt, frame, config, refit)
        fig.savefig(path, bbox_inches="tight")
        plt.close(fig)


# ----------------------------------------------------------------------------------------------
# helpers


def _params(frame) -> list[dict]:
    return [json.loads(p) for p in frame["params"]]


def _key(value) -> str:
    """A hashable, printable form of a parameter value (lists, None, bools included)."""
    return value if isinstance(value, str) else json.dumps(value)


def _categorical_split(params: list[dict], names: list[str]):
    """The first parameter with 2-8 non-numeric values, to draw one line per value."""
    for name in names:
        values = [p[name] for p in params if name in p]
        if 1 < len({_key(v) for v in values}) <= 8 and not all(_is_number(v) for v in values):
            return name
    return None


def _top(frame, refit: str, n: int):
    return frame.sort_values([f"rank_test_{refit}", "mean_fit_time"], kind="stable").head(n)


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _label(params_json: str, width: int = 60) -> str:
    p = json.loads(params_json)
    text = ", ".join(f"{k.rsplit('__', 1)[-1]}={_short(v)}" for k, v in sorted(p.items()))
    return text if len(text) <= width else text[: width - 1] + "…"


def _no_data(plt, title: str, message: str):
    fig, ax = plt.subplots(figsize=(6, 2.5))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, color=MUTED, transform=ax.transAxes)
    ax.set_title(title)
    return fig


def _best_row(frame, refit):
    best = frame[frame[f"rank_test_{refit}"] == 1]
    return None if best.empty or best[f"mean_test_{refit}"].isna().all() else best.iloc[0]


# ----------------------------------------------------------------------------------------------
# plots


def draw_marginal(plt, frame, config, refit):
    """Score against each parameter's value: the best configuration at each value, its mean ±
    std over folds, one line per value of a categorical parameter."""
    params = _params(frame)
    names = sorted({k for p in params for k in p})
    mean = frame[f"mean_test_{refit}"].to_numpy(dtype=float)
    std = frame[f"std_test_{refit}"].to_numpy(dtype=float)
    if np.isnan(mean).all():
        return _no_data(plt, PLOT_TITLES["marginal"], "every configuration failed")
    split = _categorical_split(params, names)
    logs = log_parameters(config)
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names) + 0.6, 3.4), squeeze=False, sharey=True)
    handles = {}
    for ax, name in zip(axes[0], names, strict=False):
        groups: dict[str, dict] = {}
        numeric = all(_is_number(p[name]) for p in params if name in p)
        for i, p in enumerate(params):
            if name not in p or math.isnan(mean[i]):
                continue
            group = _key(p[split]) if split and split != name and split in p else ""
            best = groups.setdefault(group, {})
            x = p[name] if numeric else _key(p[name])
            if x not in best or mean[i] > best[x][0]:
                best[x] = (mean[i], std[i])
        categories = sorted({x for g in groups.values() for x in g}, key=str)
        n_groups = max(len(groups), 1)
        for j, (group, best) in enumerate(sorted(groups.items())):
            color = PALETTE[j % len(PALETTE)]
            label = group if group else None
            if numeric:
                xs = sorted(best)
                ms = np.array([best[x][0] for x in xs])
                ss = np.array([best[x][1] for x in xs])
                (line,) = ax.plot(xs, ms, marker="o", ms=4, color=color, label=label)
                ax.fill_between(xs, ms - ss, ms + ss, alpha=0.18, color=color, lw=0)
            else:
                # Categories side by side, dodged per group, with ±std error bars.
                offset = (j - (n_groups - 1) / 2) * 0.8 / n_groups
                xs = [categories.index(x) + offset for x in best]
                line = ax.errorbar(
                    xs,
                    [best[x][0] for x in best],
                    yerr=[best[x][1] for x in best],
                    fmt="o",
                    ms=5,
                    capsize=3,
                    color=color,
                    label=label,
                )
            if label is not None:
                handles[label] = line
        if numeric and name in logs:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(categories)))
            ax.set_xticklabels(categories, rotation=30 if max(map(len, map(str, categories))) > 6 else 0, ha="right")
            ax.set_xlim(-0.6, len(categories) - 0.4)
        ax.set_xlabel(name + (" (log)" if numeric and name in logs else ""))
    axes[0][0].set_ylabel(f"mean {refit} (best at each value)\nband / bar = ± std over folds")
    if handles:
        fig.legend(
            list(handles.values()),
            list(handles),
            title=split,
            loc="upper right",
            ncol=min(len(handles), 4),
            bbox_to_anchor=(1.0, 1.02),
        )
    fig.suptitle(f"Marginal {refit} per parameter", x=0.01, ha="left", fontweight="bold")
    fig.tight_layout()
    return fig


def _pick_map_parameters(frame, config) -> tuple[str, str]:
    """The two numeric parameters with the most distinct values (ties: alphabetical)."""
    params = _params(frame)
    names = numeric_parameters(config)
    distinct = {n: len({p[n] for p in params if n in p}) for n in names}
    ordered = sorted(names, key=lambda n: (-distinct[n], n))
    return ordered[0], ordered[1]


def draw_score_map(plt, frame, config, refit):
    """Mean score over two numeric parameters (best over the other parameters at each point);
    the best configuration marked, log axes for log-spaced parameters."""
    params = _params(frame)
    x_name, y_name = _pick_map_parameters(frame, config)
    cells: dict[tuple, float] = {}
    for p, m in zip(params, frame[f"mean_test_{refit}"].to_numpy(dtype=float), strict=False):
        if x_name in p and y_name in p:
            key = (float(p[x_name]), float(p[y_name]))
            old = cells.get(key, np.nan)
            cells[key] = m if np.isnan(old) else (old if np.isnan(m) else max(old, m))
    if not cells:
        return _no_data(plt, PLOT_TITLES["score_map"], f"no configuration sets both {x_name} and {y_name}")
    xs, ys = (np.array(v) for v in zip(*cells, strict=False))
    ms = np.array(list(cells.values()))
    ok = ~np.isnan(ms)
    logs = log_parameters(config)
    fig, ax = plt.subplots(figsize=(6.2, 4.8))
    grid = len(cells) <= 120
    size = 420 if len(cells) <= 36 else (160 if grid else 40)
    sc = ax.scatter(xs[ok], ys[ok], c=ms[ok], cmap=CMAP, s=size, marker="s" if grid else "o", edgecolor="white")
    if (~ok).any():
        ax.scatter(xs[~ok], ys[~ok], marker="x", s=50, color=MUTED, label="failed")
    if grid and len(cells) <= 36 and ok.any():
        lo, hi = np.nanmin(ms), np.nanmax(ms)
        for x, y, m in zip(xs[ok], ys[ok], ms[ok], strict=False):
            dark = hi > lo and (m - lo) / (hi - lo) < 0.5
            ax.annotate(f"{m:.3f}", (x, y), ha="center", va="center", fontsize=6.5, color="white" if dark else "black")
    if ok.any():
        b = int(np.nanargmax(np.where(ok, ms, -np.inf)))
        ax.scatter(
            [xs[b]], [ys[b]], marker="*", s=420, facecolor="none", edgecolor=BEST, linewidth=2, label="best", zorder=3
        )
    if x_name in logs:
        ax.set_xscale("log")
    if y_name in logs:
        ax.set_yscale("log")
    ax.margins(0.08)
    ax.set_xlabel(x_name + (" (log)" if x_name in logs else ""))
    ax.set_ylabel(y_name + (" (log)" if y_name in logs else ""))
    if ok.any():
        fig.colorbar(sc, ax=ax, label=f"mean {refit} (best over other parameters)")
    ax.legend(loc="upper left", bbox_to_anchor=(0, -0.13), ncol=2)
    ax.set_title(f"{refit} over {x_name} × {y_name}")
    fig.tight_layout()
    return fig


def draw_fold_spread(plt, frame, config, refit, n=15):
    """Per-fold scores of the top configurations (is the winner consistently good?)."""
    top = _top(frame, refit, n)
    split_cols = [c for c in frame.columns if c.startswith("split") and c.endswith(f"_test_{refit}")]
    if top[f"mean_test_{refit}"].isna().all():
        return _no_data(plt, PLOT_TITLES["fold_spread"], "every configuration failed")
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(top) + 1.6))
    rng = np.random.default_rng(0)
    for i, (_, row) in enumerate(top.iterrows()):
        vals = row[split_cols].to_numpy(dtype=float)
        jitter = rng.uniform(-0.12, 0.12, len(vals))
        color = BEST if row[f"rank_test_{refit}"] == 1 else PALETTE[0]
        ax.scatter(vals, i + jitter, color=color, s=16, alpha=0.75, zorder=2)
        m, s = row[f"mean_test_{refit}"], row[f"std_test_{refit}"]
        ax.errorbar([m], [i], xerr=[s], fmt="|", color="black", ms=12, mew=2, capsize=0, lw=1, zorder=3)
    ax.set_yticks(range(len(top)))
    ax.set_yticklabels(
        [f"#{int(r)}  {_label(p)}" for r, p in zip(top[f"rank_test_{refit}"], top["params"], strict=False)], fontsize=7
    )
    ax.invert_yaxis()
    ax.set_xlabel(f"{refit} on each of the {len(split_cols)} folds")
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], ls="", marker="o", color=PALETTE[0], label="one fold"),
        Line2D([], [], ls="", marker="o", color=BEST, label="one fold of the best"),
        Line2D([], [], color="black", marker="|", ms=10, mew=2, label="mean ± std"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0, -0.6 / (0.32 * len(top) + 1.6)), ncol=3)
    ax.set_title(f"Fold spread of the top {len(top)} configurations")
    fig.tight_layout()
    return fig


def draw_best_so_far(plt, frame, config, refit):
    """Each configuration's mean score in the order configurations completed (their last fold's
    trial file), and the running best: did the search stop improving?"""
    frame = frame.copy()
    if "completion_order" in frame.columns and frame["completion_order"].notna().any():
        frame = frame.sort_values("completion_order", kind="stable")
        xlabel = "configurations completed (order of their last trial's end time)"
    else:
        xlabel = "configuration (search order)"
    ms = frame[f"mean_test_{refit}"].to_numpy(dtype=float)
    if np.isnan(ms).all():
        return _no_data(plt, PLOT_TITLES["best_so_far"], "every configuration failed")
    x = np.arange(1, len(ms) + 1)
    running = np.fmax.accumulate(np.where(np.isnan(ms), -np.inf, ms))
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ok = ~np.isnan(ms)
    ax.scatter(x[ok], ms[ok], s=12, alpha=0.55, color=PALETTE[0], label="configuration")
    shown = np.isfinite(running)
    ax.step(x[shown], running[shown], where="post", color=BEST, lw=2, label="best so far")
    b = int(np.nanargmax(np.where(ok, ms, -np.inf)))
    ax.scatter([x[b]], [ms[b]], marker="*", s=160, color=BEST, zorder=3)
    ax.annotate(
        f"best {ms[b]:.4f} at #{x[b]} of {len(ms)}",
        (x[b], ms[b]),
        xytext=(6, -12),
        textcoords="offset points",
        fontsize=8,
        color=BEST,
    )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"mean {refit}")
    ax.legend(loc="lower right")
    ax.set_title("Best score so far")
    fig.tight_layout()
    return fig


def _pareto(times: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Indices of configurations no other one beats on both fit time and score, by time."""
    order = np.lexsort((-scores, times))
    front, best = [], -np.inf
    for i in order:
        if scores[i] > best:
            front.append(i)
            best = scores[i]
    return np.array(front, dtype=int)


def draw_fit_time(plt, frame, config, refit):
    """Mean fit time against mean score, with the fastest-for-its-score front: is the best also
    the slowest?"""
    t = frame["mean_fit_time"].to_numpy(dtype=float)
    m = frame[f"mean_test_{refit}"].to_numpy(dtype=float)
    ok = ~np.isnan(m)
    if not ok.any():
        return _no_data(plt, PLOT_TITLES["fit_time"], "every configuration failed")
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ax.scatter(t[ok], m[ok], s=16, alpha=0.6, color=PALETTE[0], label="configuration")
    idx = np.flatnonzero(ok)
    front = idx[_pareto(t[ok], m[ok])]
    ax.plot(t[front], m[front], color=PALETTE[2], lw=1.5, marker="o", ms=3, label="fastest for its score")
    best = _best_row(frame, refit)
    if best is not None:
        ax.scatter(
            [best["mean_fit_time"]], [best[f"mean_test_{refit}"]], marker="*", s=220, color=BEST, label="best", zorder=3
        )
    pos = t[ok][t[ok] > 0]
    if len(pos) and pos.max() / pos.min() > 30:
        ax.set_xscale("log")
    ax.set_xlabel("mean fit time per fold (s)")
    ax.set_ylabel(f"mean {refit}")
    ax.legend(loc="lower right")
    ax.set_title("Fit time against score")
    fig.tight_layout()
    return fig


def draw_parallel(plt, frame, config, refit, n=20):
    """Parallel coordinates of the top configurations: one vertical axis per parameter (log
    scaled where log-spaced), one line per configuration coloured by its score."""
    import matplotlib as mpl

    top = _top(frame, refit, n)
    top = top[top[f"mean_test_{refit}"].notna()]
    if top.empty:
        return _no_data(plt, PLOT_TITLES["parallel"], "every configuration failed")
    params = _params(top)
    names = sorted({k for p in params for k in p})
    logs = log_parameters(config)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.9 * len(names) + 2.2), 4.4))
    cols, ticks = [], []
    for name in names:
        vals = [p.get(name) for p in params]
        if all(_is_number(v) for v in vals):
            arr = np.array(vals, dtype=float)
            log = name in logs and (arr > 0).all()
            scaled = np.log10(arr) if log else arr
            lo, hi = scaled.min(), scaled.max()
            pos = (scaled - lo) / (hi - lo) if hi > lo else np.full_like(scaled, 0.5)
            shown = sorted(set(arr.tolist()))
            if len(shown) > 5:
                shown = [arr.min(), arr.max()]
            tick_pos = [((np.log10(v) if log else v) - lo) / (hi - lo) if hi > lo else 0.5 for v in shown]
            ticks.append((tick_pos, [_short(v) for v in shown], log))
        else:
            cats = sorted({_key(v) for v in vals}, key=str)
            idx = np.array([cats.index(_key(v)) for v in vals], dtype=float)
            pos = idx / (len(cats) - 1) if len(cats) > 1 else np.full_like(idx, 0.5)
            tick_pos = [i / (len(cats) - 1) if len(cats) > 1 else 0.5 for i in range(len(cats))]
            ticks.append((tick_pos, cats, False))
        cols.append(pos)
    scores = top[f"mean_test_{refit}"].to_numpy(dtype=float)
    norm = mpl.colors.Normalize(
        np.nanmin(scores), np.nanmax(scores) if np.nanmax(scores) > np.nanmin(scores) else np.nanmin(scores) + 1e-9
    )
    cmap = plt.get_cmap(CMAP)
    x = np.arange(len(names))
    for i in np.argsort(scores):  # best drawn last, on top
        ax.plot(x, [c[i] for c in cols], color=cmap(norm(scores[i])), alpha=0.85, lw=1.4)
    ranks = top[f"rank_test_{refit}"].to_numpy()
    for i in np.flatnonzero(ranks == ranks.min())[:1]:
        ax.plot(x, [c[i] for c in cols], color=BEST, lw=3, label=f"best ({scores[i]:.4f})", zorder=4)
    for j, (tick_pos, labels, _log) in enumerate(ticks):
        ax.axvline(j, color="black", lw=0.8, zorder=1)
        for tp, lab in zip(tick_pos, labels, strict=False):
            ax.text(
                j + 0.04,
                tp,
                lab,
                fontsize=7,
                va="center",
                ha="left",
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
                zorder=5,
            )
    ax.set_xticks(x)
    ax.set_xticklabels([n + (" (log)" if t[2] else "") for n, t in zip(names, ticks, strict=False)], rotation=15)
    ax.set_yticks([])
    ax.set_ylim(-0.06, 1.06)
    ax.set_xlim(-0.2, len(names) - 0.5)
    ax.grid(False)
    ax.spines["left"].set_visible(False)
    fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=f"mean {refit}", pad=0.02)
    ax.legend(loc="upper left", bbox_to_anchor=(0, -0.12))
    ax.set_title(f"Top {len(top)} configurations by {refit}")
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


def plot_history(history_csv: str, refit: str, output: str, title: str = "") -> None:
    """Score against resource for every model, coloured by bracket (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    try:
        history = pd.read_csv(history_csv)
    except pd.errors.EmptyDataError:
        history = pd.DataFrame()
    column = f"mean_test_{refit}"
    if len(history) and column in history:
        brackets = sorted(history["bracket"].unique(), reverse=True)
        for c, b in enumerate(brackets):
            colour = PALETTE[c % len(PALETTE)]
            sub = history[history["bracket"] == b]
            for _, model in sub.groupby("model_id"):
                model = model.sort_values("units")
                ax.plot(model["units"], model[column], "-o", color=colour, alpha=0.6, lw=1, ms=2.5)
            ax.plot([], [], "-o", color=colour, label=f"bracket {b}")
        if history["units"].max() / max(history["units"].min(), 1) >= 10:
            ax.set_xscale("log")
        ax.legend(frameon=False, fontsize=8)
    ax.set_xlabel("units of training (resource)")
    ax.set_ylabel(f"validation {refit}")
    ax.set_title(title or "score against resource, every model")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output)
    plt.close(fig)


