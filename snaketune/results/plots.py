"""Plots of a leaderboard (matplotlib, PNG, one style, a colour-blind-safe palette).

Every plot reads ``leaderboard.csv`` (sklearn ``cv_results_`` columns plus snaketune's
``n_failed``, ``n_timeout``, ``config_key`` and, when present, ``completion_order``). Which plots a
study gets is decided from the config alone (:func:`plot_names`), so Snakemake knows the output
files at parse time.

What every plot keeps to: sampled configurations are dots, never joined by lines; categories keep
the config's order; a score axis never passes what the metric allows (``Metric.bounds``) and
shows the interesting range (:func:`robust_limits`), the points outside it drawn at the edge and
counted; legends sit outside the data; a loss (``neg_*``) is drawn as a loss, positive, under its
short name, its best the lowest (:mod:`snaketune.results.metrics`). Drawing functions return the
figure, so tests read ticks and limits from it.
"""

from __future__ import annotations

import json
import math
from functools import cache, partial
from pathlib import Path

import numpy as np

from snaketune.base import filecache
from snaketune.base.procs import run_in_forks
from snaketune.results.metrics import metric
from snaketune.strategies.registry import strategy_class

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
    "importance": "Parameter importance",
    "optimization_history": "Optimisation history (model-based search)",
}


def _spaces(config: dict) -> list[dict]:
    from snaketune.search.space import search_spaces

    return search_spaces(config["search"])


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


def map_parameters(config: dict) -> list[str]:
    """Numeric parameters the config gives two values or more: the axes a score map can have. A
    grid's fixed ``tol: [1e-4]`` would make the map one line, which the marginal already draws
    (a 100,000-trial study spent a fifth of its figures' time on such a map)."""
    values = _space_values(config)
    return [name for name in numeric_parameters(config) if _n_values(values[name]) >= 2]


def _n_values(specs: list) -> float:
    """How many distinct values a parameter's specs give together, counted up to 2 (a
    distribution, or a range of points with two ends: infinitely many)."""
    from snaketune.search.space import expand_values

    seen: set[str] = set()
    for spec in specs:
        if isinstance(spec, dict):
            ((kind, args),) = spec.items()
            if kind not in ("range", "linspace", "logspace") or (
                kind != "range" and int(args[2]) > 1 and args[0] != args[1]
            ):
                return math.inf
        for v in expand_values(spec):
            seen.add(_key(_as_result_value(v)))
            if len(seen) >= 2:
                return len(seen)
    return len(seen)


def log_parameters(config: dict) -> set[str]:
    """Parameters drawn on log axes: log-spaced in the config (logspace, loguniform, decades)."""
    from snaketune.search.space import log_spaced_parameters

    return log_spaced_parameters(config["search"])


def plot_names(config: dict) -> list[str]:
    """The plots a study gets; decided from the config alone so outputs are known at parse time."""
    names = ["marginal", "fold_spread", "best_so_far", "fit_time"]
    if len(map_parameters(config)) >= 2:
        names.append("score_map")
    if len(_space_values(config)) > 2:
        names.append("parallel")
    # Sampled (not laid out) configurations: a surrogate model can say which parameters matter.
    if strategy_class(config).sampled and len(_space_values(config)) >= 2:
        names.append("importance")
    return names


def _laid_out(config: dict) -> bool:
    """The configurations are cells of a grid (not sampled): drawn as cells, with a trend line."""
    return not strategy_class(config).sampled


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


def make_plots(
    leaderboard_csv: str, config: dict, outputs: list[str], others: dict | None = None, *, cache: bool = True
) -> int:
    """Draw every plot named in ``outputs`` (``plots/<name>.png``) from the leaderboard, and run
    ``others`` (output path -> a function drawing it: figures of other modules) beside them.

    With ``cache``, a figure whose key (:func:`figure_key`: what it shows, not the leaderboard's
    bytes) was drawn before is copied from ``<study>/.cache/plots/<name>/<key>`` instead. Returns
    how many figures were copied."""
    import pandas as pd

    from snaketune.results.adaptive import PLOT_NAME

    frame = pd.read_csv(leaderboard_csv)
    if "final_rung" in frame:  # adaptive: the models that reached their bracket's last rung
        frame = frame[frame["final_rung"].astype(bool)].reset_index(drop=True)
    refit = config["refit"]
    entries = {}
    if cache:
        root = Path(leaderboard_csv).parent / ".cache" / "plots"
        for path in outputs:
            key = figure_key(Path(path).stem, frame, config, leaderboard_csv)
            entries[str(path)] = root / Path(path).stem / key
    copied = [p for p, entry in entries.items() if filecache.restore(entry, {Path(p).name: p})]
    # matplotlib only when a figure is drawn here (0.3-0.5 s to import: every figure copied, none).
    plt = _style() if len(copied) < len(outputs) else None

    def draw(path: str) -> None:
        name = str(path).rsplit("/", 1)[-1].removesuffix(".png")
        if name == PLOT_NAME:
            history = str(Path(leaderboard_csv).with_name("history.csv"))
            plot_history(history, refit, path, title=f"{config['study']}: every model")
            return
        fig = DRAW[name](plt, frame, config, refit)
        fig.savefig(path, bbox_inches="tight")
        plt.close(fig)

    # The figures are independent and this job is the last step of a run: one fork each, as
    # many at a time as there are CPUs (the kNN example's four on 2 cores: 0.8 -> 0.45 s).
    # Slowest first (measured: importance ~0.5 s, marginal ~0.45 s, the rest 0.1-0.2 s), so the
    # last figure to start is a quick one.
    slow = {"importance": 0, "marginal": 1, "fold_spread": 2, "score_map": 3}
    ordered = sorted((p for p in outputs if str(p) not in copied), key=lambda p: slow.get(Path(p).stem, len(slow)))
    tasks = {str(path): partial(draw, path) for path in ordered}
    statuses = run_in_forks(dict(tasks, **{str(path): task for path, task in (others or {}).items()}))
    failed = sorted(path for path, status in statuses.items() if status != 0)
    if failed:
        raise RuntimeError(f"could not draw {', '.join(failed)} (the tracebacks are above)")
    for path in tasks:
        if path in entries:
            filecache.store(entries[path], {Path(path).name: path}, keep=FIGURE_CACHE_ENTRIES)
    return len(copied)


# Figures drawn before, kept per study and figure, so a figure whose data did not change (or an
# edit reverted) is copied back (milliseconds) instead of drawn again (up to a second or two).
FIGURE_CACHE_ENTRIES = 8
# The top configurations the fold spread and parallel coordinates draw.
FOLD_SPREAD_TOP, PARALLEL_TOP = 15, 20


def figure_data(name: str, frame, refit: str):
    """The part of the leaderboard figure ``name`` draws: the top rows for the top-n figures,
    else, for every row, only the columns the figure shows (in row order, which the fit-time-free
    figures draw by). A configuration added below the top changes no top-n figure; fit times,
    p-values and ranks change only the figures that show them."""
    score = [f"mean_test_{refit}", f"std_test_{refit}", f"rank_test_{refit}"]
    if name in ("fold_spread", "parallel"):
        splits = [c for c in frame.columns if c.startswith("split") and c.endswith(f"_test_{refit}")]
        top = _top(frame, refit, FOLD_SPREAD_TOP if name == "fold_spread" else PARALLEL_TOP)
        return top[["params", *score, "mean_fit_time", *splits]]
    mean, std, rank = score
    columns = {
        "marginal": ["params", mean, std],  # the std: whiskers, and the axis is at least the fold noise
        "score_map": ["params", mean],
        "importance": ["params", mean],
        "best_so_far": [mean, "completion_order"],
        "fit_time": [mean, rank, "mean_fit_time"],  # the best (rank 1) is starred at its fit time
    }.get(name, ["params", *score, "mean_fit_time", "completion_order"])
    return frame[[c for c in columns if c in frame.columns]]


def figure_key(name: str, frame, config: dict, leaderboard_csv: str) -> str:
    """What figure ``name`` depends on: the data it draws (:func:`figure_data`; the adaptive
    history's bytes for the history figure), the config, this package's results code and
    matplotlib's version."""
    import hashlib

    import pandas as pd

    from snaketune.base.jsonutil import digest, file_sha256
    from snaketune.results.adaptive import PLOT_NAME

    if name == PLOT_NAME:
        history = Path(leaderboard_csv).with_name("history.csv")
        shows = file_sha256(history) if history.exists() else None
    elif name in DRAW:
        data = figure_data(name, frame, config["refit"])
        hashed = pd.util.hash_pandas_object(data, index=False).to_numpy()
        shows = hashlib.sha256(hashed.tobytes() + ",".join(data.columns).encode()).hexdigest()
    else:
        shows = file_sha256(leaderboard_csv)
    return digest({"figure": name, "shows": shows, "config": config, **_drawing_code()}, 20)


@cache
def _drawing_code() -> dict:
    """This package's results code and matplotlib's version: once a job, not once a figure."""
    import importlib.metadata

    from snaketune.base.jsonutil import file_sha256

    code = Path(__file__).parent
    return {
        "code": [file_sha256(f) for f in sorted(code.glob("*.py"))],
        "matplotlib": importlib.metadata.version("matplotlib"),
    }


# ----------------------------------------------------------------------------------------------
# helpers


def _params(frame) -> list[dict]:
    # One parse of the whole column: half the time of a json.loads a row (20,000 rows: 60 ms).
    return json.loads("[" + ",".join(frame["params"]) + "]")


def _key(value) -> str:
    """A hashable, printable form of a parameter value (lists, None, bools included)."""
    return value if isinstance(value, str) else json.dumps(value)


def _keys(values) -> list[str]:
    """:func:`_key` of each value, each distinct value encoded once (20,000 rows hold a few)."""
    memo: dict = {}
    keys = []
    for v in values:
        try:  # by type too: True == 1 == 1.0, but their keys differ
            k = memo[type(v), v]
        except KeyError:
            k = memo[type(v), v] = _key(v)
        except TypeError:  # a list value
            k = _key(v)
        keys.append(k)
    return keys


def _positions(cats: list[str], keys: list[str]) -> np.ndarray:
    """Each key's position in ``cats``."""
    where = {c: i for i, c in enumerate(cats)}
    return np.array([where[k] for k in keys], dtype=float)


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


def _count(n: int, noun: str = "configuration") -> str:
    """``1 configuration``, ``3 configurations``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _log_axis(axis, values) -> None:
    """A log scale whose tick labels do not run together: over two decades or less the ticks
    are 1, 2 and 5 (and 3) times a power of ten, written as plain numbers (0.02, 0.05, 0.1), and
    unlabelled minor ticks; wider ranges keep matplotlib's decades (10⁻², 10⁰, 10²)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.axes.set_xscale("log") if axis.axis_name == "x" else axis.axes.set_yscale("log")
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    decades = np.log10(v.max() / v.min()) if len(v) else np.inf
    if decades <= 2:  # within one decade 3 too, so a panel gets three labels or more
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0) if decades < 1 else (1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda x, _pos: _short(float(x))))
    axis.set_minor_formatter(NullFormatter())


def _time_axis(axis, high: float) -> str:
    """A linear time axis in seconds or, below one second, milliseconds, with at most six ticks
    written short: fits of a millisecond gave nine labels like 0.00025 that ran together."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    scale, unit = (1.0, "s") if high >= 1 else (1000.0, "ms")
    axis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    axis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x * scale:.3g}"))
    return unit


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
# axes that tell the truth: metric bounds, robust limits, categories in config order


def robust_limits(values, bounds=(-np.inf, np.inf), keep_top: bool = True, k: float = 3.0, lower_is_better=False):
    """Axis limits for the interesting range of ``values``: the inter-quartile range widened by
    ``k`` IQRs on the low side (a few terrible configurations do not stretch the axis), always
    including the largest value when ``keep_top``, and never past the metric's ``bounds``. With
    ``lower_is_better`` (a loss) the same, mirrored: the smallest value is kept, the high side cut.

    Returns ``(low, high, n_below, n_above)``: the limits and how many values fall outside.
    """
    if lower_is_better:
        v = -np.asarray(values, dtype=float)
        low, high, n_below, n_above = robust_limits(v, (-bounds[1], -bounds[0]), keep_top, k)
        return -high, -low, n_above, n_below
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return 0.0, 1.0, 0, 0
    q1, q3 = np.percentile(v, [25, 75])
    iqr = q3 - q1
    lo, hi = v.min(), v.max()
    if iqr > 0:
        lo = max(lo, q1 - k * iqr)
        if not keep_top:
            hi = min(hi, q3 + k * iqr)
    pad = 0.06 * (hi - lo) if hi > lo else max(abs(hi) * 0.05, 0.01)
    low, high = max(lo - pad, bounds[0]), min(hi + pad, bounds[1])
    if low >= high:
        low, high = high - 2 * pad, high
    return float(low), float(high), int((v < low).sum()), int((v > high).sum())


def _off_axis_note(n_below: int, n_above: int, values, what: str = "configuration") -> str:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    parts = []
    if n_below:
        parts.append(f"{_count(n_below, what)} below the axis (lowest {_short(float(v.min()))}, marked ▼)")
    if n_above:
        parts.append(f"{_count(n_above, what)} above the axis (highest {_short(float(v.max()))}, marked ▲)")
    return "; ".join(parts)


def _mark_off_axis(ax, xs, ys, low, high, horizontal=False):
    """Values outside ``(low, high)``: a triangle at the edge, so they are counted, not hidden."""
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    for mask, edge, marker in ((ys < low, low, "v"), (ys > high, high, "^")):
        if mask.any():
            edge_values = np.full(int(mask.sum()), edge)
            if horizontal:
                marker = "<" if marker == "v" else ">"
                ax.scatter(edge_values, xs[mask], marker=marker, s=22, color=MUTED, clip_on=False, zorder=4)
            else:
                ax.scatter(xs[mask], edge_values, marker=marker, s=22, color=MUTED, clip_on=False, zorder=4)


def category_order(config: dict, name: str, seen) -> list[str]:
    """A categorical parameter's values (as :func:`_key` text) in the order the config lists
    them (``5, 10, 20, null``, not sorted as text); values only seen in results come last."""
    order: list[str] = []
    for spec in _space_values(config).get(name, []):
        if isinstance(spec, list):
            for v in spec:
                k = _key(_as_result_value(v))
                if k not in order:
                    order.append(k)
    order += [k for k in dict.fromkeys(seen) if k not in order]
    return [k for k in order if k in set(seen)]


def _as_result_value(v):
    """A config value as it reads back from ``leaderboard.csv``'s ``params`` (tuples as lists)."""
    return json.loads(json.dumps(v))


def _shown(frame, column: str, refit: str) -> np.ndarray:
    """A score column of the leaderboard as shown (a loss positive, :mod:`snaketune.results.metrics`)."""
    return metric(refit).shown(frame[column].to_numpy(dtype=float))


def _limits(values, refit: str, **kwargs):
    """:func:`robust_limits` of shown values of ``refit``: its bounds, the best end kept."""
    m = metric(refit)
    return robust_limits(values, m.bounds, lower_is_better=m.is_loss, **kwargs)


def _cmap(refit: str) -> str:
    """The colour map: the best end bright for a score and for a loss alike."""
    return CMAP + "_r" if metric(refit).is_loss else CMAP


def _score_label(refit: str, what: str = "mean") -> str:
    """``mean RMSE (lower is better)``, ``mean accuracy``."""
    m = metric(refit)
    return f"{what} {m.label}" + (f" ({m.direction})" if m.is_loss else "")


def _legend_outside(ax, handles):
    """A legend right of the axes, where it covers no data."""
    return ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


# ----------------------------------------------------------------------------------------------
# at scale: every figure's drawing time bounded whatever the number of configurations

# Above this many configurations a figure draws a seeded random sample of them as dots (the best
# always among them) and says so, or a binned view of all of them: 20,000 dots with whiskers took
# seconds to draw and read as one blot.
MAX_DOTS = 2000
MAP_BINS = 40  # cells a side of a binned score map


def sample_rows(n: int, keep=(), limit: int = MAX_DOTS, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``limit`` of ``n`` rows: all of them, or a seeded random sample
    that always holds the rows ``keep``."""
    if n <= limit:
        return np.arange(n)
    kept = np.unique(np.asarray([k for k in keep if 0 <= k < n], dtype=int))
    rest = np.setdiff1d(np.arange(n), kept)
    chosen = np.random.default_rng(seed).choice(rest, limit - len(kept), replace=False)
    return np.sort(np.concatenate([kept, chosen]))


def _sample_note(shown: int, total: int) -> str:
    """What a sampled figure says: ``dots: a random 2,000 of the 20,000 configurations``."""
    return f"dots: a random {shown:,} of the {total:,} configurations" if shown < total else ""


def bin_edges(values, log: bool, bins: int = MAP_BINS) -> np.ndarray:
    """Edges of at most ``bins`` cells over ``values``: one cell per distinct value when there
    are few (halfway between neighbours), else equal cells (equal in log10 on a log axis)."""
    v = np.unique(np.asarray(values, dtype=float))
    t = np.log10(v) if log else v
    if len(t) == 1:
        half = 0.5 if log else (abs(t[0]) * 0.5 or 0.5)
        edges = np.array([t[0] - half, t[0] + half])
    elif len(t) <= bins:
        mid = (t[1:] + t[:-1]) / 2
        edges = np.concatenate([[t[0] - (mid[0] - t[0])], mid, [t[-1] + (t[-1] - mid[-1])]])
    else:
        edges = np.linspace(t[0], t[-1], bins + 1)
    return 10**edges if log else edges


def binned_best(xs, ys, scores, x_edges, y_edges, lower_is_better: bool) -> np.ndarray:
    """The best score in each cell (rows: y cells, columns: x cells); NaN where none is."""
    i = np.clip(np.searchsorted(x_edges, xs, side="right") - 1, 0, len(x_edges) - 2)
    j = np.clip(np.searchsorted(y_edges, ys, side="right") - 1, 0, len(y_edges) - 2)
    cells = np.full((len(y_edges) - 1, len(x_edges) - 1), np.nan)
    ok = ~np.isnan(scores)
    (np.fmin if lower_is_better else np.fmax).at(cells, (j[ok], i[ok]), scores[ok])
    return cells


def best_at_each(keys, scores, lower_is_better: bool) -> dict:
    """The best score at each key (one pass; the loop over keys x rows it replaces took seconds
    at 20,000 configurations)."""
    best: dict = {}
    better = min if lower_is_better else max
    for key, score in zip(keys, scores, strict=True):
        best[key] = score if key not in best else better(best[key], score)
    return best


# ----------------------------------------------------------------------------------------------
# plots


def draw_marginal(plt, frame, config, refit):
    """Every configuration's mean score against each parameter's value (fold spread as
    whiskers, ± one std over folds, clipped to what the metric allows); for grids also the best
    score at each value (the trend). Sampled configurations are never joined by lines."""
    from matplotlib.lines import Line2D

    params = _params(frame)
    names = [n for n in _space_values(config) if any(n in p for p in params)]
    names += sorted({k for p in params for k in p} - set(names))
    m = metric(refit)
    mean = _shown(frame, f"mean_test_{refit}", refit)
    std = np.nan_to_num(frame[f"std_test_{refit}"].to_numpy(dtype=float))
    if np.isnan(mean).all():
        return _no_data(plt, PLOT_TITLES["marginal"], "every configuration failed")
    bounds = m.bounds
    low, high, n_below, n_above = _limits(mean, refit)
    low, high = _at_least_fold_noise(low, high, np.nanmedian(std[~np.isnan(mean)]), bounds)
    grid = _laid_out(config)
    logs = log_parameters(config)
    best_i = m.best_index(mean)
    ncols = min(len(names), 4)  # at most 4 panels a row: 7 parameters must not make a 2700-px strip
    nrows = -(-len(names) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols + 0.8, 3.2 * nrows + 0.6), squeeze=False, sharey=True)
    for ax in axes.flat[len(names) :]:
        fig.delaxes(ax)
    rng = np.random.default_rng(0)
    dense_kinds = set()  # at scale: "density" (numeric panels) and "sample" (categories)
    n_scored = int((~np.isnan(mean)).sum())
    for ax, name in zip(axes.flat, names, strict=False):
        rows = [i for i, p in enumerate(params) if name in p and not math.isnan(mean[i])]
        values = [params[i][name] for i in rows]
        numeric = bool(values) and all(_is_number(v) for v in values) and name in numeric_parameters(config)
        dense = len(rows) > MAX_DOTS
        if numeric:
            xs = np.array(values, dtype=float)
        else:
            keyed = _keys(values)
            cats = category_order(config, name, keyed)
            xs = _positions(cats, keyed)
            xs = xs + rng.uniform(-0.18, 0.18, len(xs)) * (len(xs) > len(cats))
        ms, ss = mean[rows], std[rows]
        j = rows.index(best_i) if best_i in rows else None
        shown = sample_rows(len(rows), keep=[] if j is None else [j])
        if dense and numeric:  # all of them, as a density: dots and whiskers would be one blot
            dense_kinds.add("density")
            log_x = name in logs and (xs > 0).all()
            ax.hexbin(xs, np.clip(ms, low, high), gridsize=(40, 16), xscale="log" if log_x else "linear",
                      mincnt=1, bins="log", cmap="Blues", linewidths=0, zorder=1)  # fmt: skip
        elif dense:  # categories: a seeded sample as dots
            dense_kinds.add("sample")
            ax.scatter(xs[shown], ms[shown], s=8, color=PALETTE[0], alpha=0.5, zorder=2, clip_on=True)
        else:
            lo_err = ms - np.maximum(ms - ss, bounds[0])
            hi_err = np.minimum(ms + ss, bounds[1]) - ms
            ax.errorbar(xs, ms, yerr=[lo_err, hi_err], fmt="none", ecolor=PALETTE[0], alpha=0.5, lw=0.9, zorder=1)
            ax.scatter(xs, ms, s=14, color=PALETTE[0], alpha=0.75, zorder=2, clip_on=True)
        _mark_off_axis(ax, xs[shown], ms[shown], low, high)
        if grid and rows:  # the best score reached at each value (a grid has several per value)
            keys = values if numeric else keyed
            at = best_at_each(keys, ms, m.is_loss)
            if numeric and len(at) > MAP_BINS * 2:  # one value per configuration: best of each bin
                edges = bin_edges(xs, name in logs and (xs > 0).all(), MAP_BINS)
                best = binned_best(xs, np.zeros_like(xs), ms, edges, np.array([-1.0, 1.0]), m.is_loss)[0]
                centres = np.sqrt(edges[1:] * edges[:-1]) if (edges > 0).all() and name in logs else None
                tx = centres if centres is not None else (edges[1:] + edges[:-1]) / 2
                keep = ~np.isnan(best)
                tx, best = tx[keep], best[keep]
            else:
                ordered = sorted(at, key=float) if numeric else [c for c in cats if c in at]
                tx = [float(k) for k in ordered] if numeric else [cats.index(k) for k in ordered]
                best = [at[k] for k in ordered]
            ax.plot(tx, np.clip(best, low, high), color=PALETTE[1], lw=1.6, marker="_", ms=12, zorder=3)
        if j is not None:
            ax.scatter(
                [xs[j]], [ms[j]], marker="*", s=200, facecolor="none", edgecolor=BEST, lw=1.5, zorder=5, clip_on=False
            )
        if numeric and name in logs:
            _log_axis(ax.xaxis, xs)
        if not numeric:
            ax.set_xticks(range(len(cats)))
            ax.set_xticklabels(cats, rotation=30 if max(map(len, cats), default=0) > 6 else 0, ha="right")
            ax.set_xlim(-0.6, len(cats) - 0.4)
        ax.set_xlabel(name + (" (log)" if numeric and name in logs else ""))
    axes[0][0].set_ylim(low, high)
    for row in axes:
        row[0].set_ylabel(_score_label(refit) + ("" if dense_kinds else "\nwhiskers: ± std over folds"))
    handles = []
    if "density" in dense_kinds:
        from matplotlib.patches import Patch

        handles.append(Patch(color="#4a89c4", label="configurations (darker: more)"))
    if "sample" in dense_kinds or not dense_kinds:
        label = "one configuration" + (" (mean)" if dense_kinds else " (mean ± std)")
        handles.append(Line2D([], [], ls="", marker="o", color=PALETTE[0], label=label))
    handles.append(Line2D([], [], ls="", marker="*", mfc="none", mec=BEST, ms=11, label="best"))
    if grid:
        handles.append(Line2D([], [], color=PALETTE[1], marker="_", ms=12, label="best at each value"))
    note = _off_axis_note(n_below, n_above, mean)
    if dense_kinds:  # said on the figure: what is drawn instead of every dot
        what = ["numeric parameters as a density of all" if "density" in dense_kinds else "",
                f"categories: a random {MAX_DOTS:,}" if "sample" in dense_kinds else ""]  # fmt: skip
        scale = f"{n_scored:,} configurations: " + ", ".join(filter(None, what)) + "; no whiskers"
        note = "; ".join(filter(None, [scale, note]))
    n_nan = int(np.isnan(mean).sum())
    if n_nan:
        note = "; ".join(filter(None, [note, f"{_count(n_nan, 'failed configuration')} not shown"]))
    fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 0.0), ncol=len(handles))
    fig.suptitle(f"{m.label} per parameter, every configuration", x=0.01, ha="left", fontweight="bold")
    bottom = 0.08 / nrows
    if note and dense_kinds:  # the longer note: its own lines above the legend, not beside it
        import textwrap

        height = fig.get_figheight()
        lines = textwrap.wrap(note, int(fig.get_figwidth() * 15))
        fig.text(0.01, 0.34 / height, "\n".join(lines), ha="left", va="bottom", fontsize=7.5, color="#52606d")
        bottom = (0.42 + 0.14 * len(lines)) / height
    elif note:
        fig.text(0.99, 0.01, note, ha="right", va="bottom", fontsize=7.5, color="#52606d")
    fig.tight_layout(rect=(0, bottom, 1, 1))
    return fig


def _at_least_fold_noise(low: float, high: float, fold_std: float, bounds) -> tuple[float, float]:
    """Widen a score axis to at least ± the typical fold std around its middle (clipped to the
    metric's bounds), so means that differ by less than their noise do not fill the panel."""
    if not np.isfinite(fold_std) or high - low >= 2 * fold_std:
        return low, high
    middle = (low + high) / 2
    low, high = middle - fold_std, middle + fold_std
    if high > bounds[1]:  # against the top of the metric: keep the width, shift it down
        low, high = low - (high - bounds[1]), bounds[1]
    elif low < bounds[0]:  # against the bottom (a loss's 0): shift it up
        low, high = bounds[0], high + (bounds[0] - low)
    return max(low, bounds[0]), high


def _pick_map_parameters(frame, config) -> tuple[str, str]:
    """The two numeric parameters with the most distinct values (ties: alphabetical)."""
    params = _params(frame)
    names = numeric_parameters(config)
    distinct = {n: len({p[n] for p in params if n in p}) for n in names}
    ordered = sorted(names, key=lambda n: (-distinct[n], n))
    return ordered[0], ordered[1]


def _cell_text(m: float) -> str:
    """A score map cell's value in about four digits, sign included (−59.5, 0.973, −1234)."""
    digits = 3 if abs(m) < 10 else (1 if abs(m) < 1000 else 0)
    return f"{m:.{digits}f}".replace("-", "\u2212")


def draw_score_map(plt, frame, config, refit):
    """Mean score over two numeric parameters (best over the other parameters at each point);
    the best configuration marked, log axes for log-spaced parameters. A grid is drawn as
    cells, with their values when there are at most 36; sampled configurations as dots."""
    import textwrap

    from matplotlib.lines import Line2D

    params = _params(frame)
    x_name, y_name = _pick_map_parameters(frame, config)
    metric_ = metric(refit)
    better = min if metric_.is_loss else max
    cells: dict[tuple, float] = {}
    for p, m in zip(params, _shown(frame, f"mean_test_{refit}", refit), strict=False):
        if x_name in p and y_name in p:
            key = (float(p[x_name]), float(p[y_name]))
            old = cells.get(key, np.nan)
            cells[key] = m if np.isnan(old) else (old if np.isnan(m) else better(old, m))
    if not cells:
        return _no_data(plt, PLOT_TITLES["score_map"], f"no configuration sets both {x_name} and {y_name}")
    xs, ys = (np.array(v) for v in zip(*cells, strict=False))
    ms = np.array(list(cells.values()))
    ok = ~np.isnan(ms)
    logs = log_parameters(config)
    # Constrained layout keeps the colour bar's label and the title inside the figure.
    fig, ax = plt.subplots(figsize=(6.4, 5.0), layout="constrained")
    # Cells only where the points lie on a lattice (a grid); sampled points would overlap.
    grid = _laid_out(config) and len(cells) <= 120
    labelled = grid and len(cells) <= 36
    size = 480 if labelled else (160 if grid else 40)
    # Colour over the interesting range: a few terrible configurations share the darkest colour.
    vmin, vmax, _, _ = _limits(ms, refit) if ok.any() else (0, 1, 0, 0)
    binned = len(cells) > MAX_DOTS  # at scale: the best of each of MAP_BINS x MAP_BINS cells
    if binned:
        x_edges = bin_edges(xs, x_name in logs and (xs > 0).all())
        y_edges = bin_edges(ys, y_name in logs and (ys > 0).all())
        best_cells = binned_best(xs, ys, ms, x_edges, y_edges, metric_.is_loss)
        sc = ax.pcolormesh(x_edges, y_edges, np.ma.masked_invalid(best_cells), cmap=_cmap(refit), vmin=vmin,
                           vmax=vmax, zorder=1)  # fmt: skip
    else:
        sc = ax.scatter(
            xs[ok],
            ys[ok],
            c=ms[ok],
            cmap=_cmap(refit),
            vmin=vmin,
            vmax=vmax,
            s=size,
            marker="s" if grid else "o",
            edgecolor="white",
            zorder=2,
        )
    handles = []
    if (~ok).any() and not binned:
        ax.scatter(xs[~ok], ys[~ok], marker="x", s=50, color=MUTED, label="failed", zorder=2)
        handles.append(Line2D([], [], ls="", marker="x", color=MUTED, label="failed"))
    if labelled and ok.any():
        for x, y, m in zip(xs[ok], ys[ok], ms[ok], strict=False):
            dark = (sc.norm(m) < 0.5) != metric_.is_loss  # the reversed map is dark at the top
            ax.annotate(_cell_text(m), (x, y), ha="center", va="center", fontsize=6.5, zorder=4,
                        color="white" if dark else "black")  # fmt: skip
    if ok.any():
        b = metric_.best_index(ms)
        # The best cell is outlined, under its value; a dot gets a hollow star.
        marker, msize = ("s", size * 1.25) if grid else ("*", 320)
        ax.scatter([xs[b]], [ys[b]], marker=marker, s=msize, facecolor="none", edgecolor=BEST, linewidth=2.2,
                   label="best", zorder=3)  # fmt: skip
        handles.append(Line2D([], [], ls="", marker=marker, mfc="none", mec=BEST, mew=2, ms=10, label="best"))
    if x_name in logs:
        _log_axis(ax.xaxis, xs)
    if y_name in logs:
        _log_axis(ax.yaxis, ys)
    ax.margins(0.08)
    ax.set_xlabel(x_name + (" (log)" if x_name in logs else ""))
    ax.set_ylabel(y_name + (" (log)" if y_name in logs else ""))
    if ok.any():
        fig.colorbar(sc, ax=ax, label="\n".join(textwrap.wrap(_score_label(refit), 34)))
    fig.legend(handles=handles, loc="outside lower left", ncol=2)
    title = f"{metric_.label} over {x_name} × {y_name}"
    how = "at each point: the best over the other parameters"
    if binned:
        failed = f", {int((~ok).sum()):,} failed not shown" if (~ok).any() else ""
        how = f"{len(cells):,} points binned: each cell the best in it{failed}"
    ax.set_title("\n".join(textwrap.wrap(title, 60)) + f"\n{how}", fontsize=10)
    return fig


def draw_fold_spread(plt, frame, config, refit, n=FOLD_SPREAD_TOP):
    """Per-fold scores of the top configurations (is the winner consistently good?)."""
    top = _top(frame, refit, n)
    split_cols = [c for c in frame.columns if c.startswith("split") and c.endswith(f"_test_{refit}")]
    if top[f"mean_test_{refit}"].isna().all():
        return _no_data(plt, PLOT_TITLES["fold_spread"], "every configuration failed")
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(top) + 1.8), layout="constrained")
    rng = np.random.default_rng(0)
    for i, (_, row) in enumerate(top.iterrows()):
        vals = metric(refit).shown(row[split_cols].to_numpy(dtype=float))
        jitter = rng.uniform(-0.12, 0.12, len(vals))
        color = BEST if row[f"rank_test_{refit}"] == 1 else PALETTE[0]
        ax.scatter(vals, i + jitter, color=color, s=16, alpha=0.75, zorder=2)
        m, s = metric(refit).shown(row[f"mean_test_{refit}"]), row[f"std_test_{refit}"]
        ax.errorbar([m], [i], xerr=[s], fmt="|", color="black", ms=12, mew=2, capsize=0, lw=1, zorder=3)
    low, high = ax.get_xlim()  # mean ± std may pass what the metric allows; the axis does not
    bounds = metric(refit).bounds
    ax.set_xlim(max(low, bounds[0]), min(high, bounds[1]))
    for artist in ax.collections:
        artist.set_clip_on(False)
    ax.set_yticks(range(len(top)))
    ax.set_yticklabels(
        [f"#{int(r)}  {_label(p)}" for r, p in zip(top[f"rank_test_{refit}"], top["params"], strict=False)], fontsize=7
    )
    ax.invert_yaxis()
    m = metric(refit)
    ax.set_xlabel(f"{m.label} on each of the {len(split_cols)} folds" + (f" ({m.direction})" if m.is_loss else ""))
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], ls="", marker="o", color=PALETTE[0], label="one fold"),
        Line2D([], [], ls="", marker="o", color=BEST, label="one fold of the best"),
        Line2D([], [], color="black", marker="|", ms=10, mew=2, label="mean ± std"),
    ]
    fig.legend(handles=handles, loc="outside lower right", ncol=3)  # below the axis label, never on it
    ax.set_title(f"Fold spread of the top {_count(len(top))}" if len(top) > 1 else "Fold spread of the configuration")
    return fig


def draw_best_so_far(plt, frame, config, refit):
    """Each configuration's mean score in the order configurations completed (their last fold's
    trial file), and the running best: did the search stop improving? The score axis shows the
    interesting range; configurations far below it are counted and marked at its edge."""
    from matplotlib.lines import Line2D

    frame = frame.copy()
    if "completion_order" in frame.columns and frame["completion_order"].notna().any():
        frame = frame.sort_values("completion_order", kind="stable")
        xlabel = "configurations completed (order of their last trial's end time)"
    else:
        xlabel = "configuration (search order)"
    m = metric(refit)
    ms = _shown(frame, f"mean_test_{refit}", refit)
    if np.isnan(ms).all():
        return _no_data(plt, PLOT_TITLES["best_so_far"], "every configuration failed")
    x = np.arange(1, len(ms) + 1)
    running = m.running_best(ms)  # goes down for a loss
    low, high, n_below, n_above = _limits(ms, refit)
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    b = m.best_index(ms)
    scored = np.flatnonzero(~np.isnan(ms))
    ok = np.zeros(len(ms), dtype=bool)  # the dots drawn: all, or a sample with the best (said below)
    ok[scored[sample_rows(len(scored), keep=[int(np.searchsorted(scored, b))])]] = True
    ax.scatter(x[ok], ms[ok], s=12 if len(ms) <= MAX_DOTS else 6, alpha=0.55, color=PALETTE[0], label="configuration")
    _mark_off_axis(ax, x[ok], ms[ok], low, high)
    shown = np.isfinite(running)
    ax.step(x[shown], np.clip(running[shown], low, high), where="post", color=BEST, lw=2, label="best so far")
    ax.scatter([x[b]], [ms[b]], marker="*", s=160, facecolor="none", edgecolor=BEST, lw=1.5, zorder=3, clip_on=False)
    ax.set_ylim(low, high)
    ax.set_xlim(0, len(ms) + 1)
    sampled = _sample_note(int(ok.sum()), int((~np.isnan(ms)).sum()))
    note = "; ".join(
        filter(None, [_off_axis_note(n_below, n_above, ms), sampled + (", the line: all" if sampled else "")])
    )
    ax.set_xlabel(xlabel + (f"\n{note}" if note else ""))
    ax.set_ylabel(_score_label(refit))
    handles = [
        Line2D([], [], ls="", marker="o", color=PALETTE[0], label="configuration"),
        Line2D([], [], color=BEST, lw=2, label="best so far"),
    ]
    _legend_outside(ax, handles)
    ax.set_title(f"Best {m.label} so far: {ms[b]:.4f} at #{x[b]} of {len(ms)}")
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
    the slowest? Both axes show the interesting range; points outside are marked at the edge."""
    from matplotlib.lines import Line2D

    t = frame["mean_fit_time"].to_numpy(dtype=float)
    m = _shown(frame, f"mean_test_{refit}", refit)
    ok = ~np.isnan(m)
    if not ok.any():
        return _no_data(plt, PLOT_TITLES["fit_time"], "every configuration failed")
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    low, high, n_below, n_above = _limits(m[ok], refit)
    idx = np.flatnonzero(ok)
    dots = idx[sample_rows(len(idx))]  # at scale a seeded sample (said below); the front is of all
    ax.scatter(t[dots], m[dots], s=16 if len(dots) == len(idx) else 6, alpha=0.6, color=PALETTE[0])
    front = idx[_pareto(t[ok], metric(refit).sign * m[ok])]  # the front of the stored (higher-is-better) score
    ax.plot(t[front], m[front], color=PALETTE[2], lw=1.5, marker="o", ms=3)
    best = _best_row(frame, refit)
    if best is not None:
        ax.scatter(
            [best["mean_fit_time"]],
            [metric(refit).shown(best[f"mean_test_{refit}"])],
            marker="*",
            s=220,
            facecolor="none",
            edgecolor=BEST,
            lw=1.5,
            zorder=3,
            clip_on=False,
        )
    _mark_off_axis(ax, t[dots], m[dots], low, high)
    ax.set_ylim(low, high)
    notes = [_off_axis_note(n_below, n_above, m[ok]), _sample_note(len(dots), len(idx))]
    pos = t[ok][t[ok] > 0]
    unit = "s"
    if len(pos) and pos.max() / pos.min() > 30:
        ax.set_xscale("log")
    else:  # a few very slow configurations must not squeeze all others to the left edge
        t_low, t_high, _, n_right = robust_limits(t[ok], (0.0, np.inf), keep_top=False)
        ax.set_xlim(0, t_high)
        _mark_off_axis(ax, m[dots], t[dots], 0, t_high, horizontal=True)
        if n_right:
            notes.append(
                f"{_count(n_right, 'slower configuration')} right of the axis (slowest {t[ok].max():.3g} s, marked ▶)"
            )
        unit = _time_axis(ax.xaxis, t_high)
    note = "; ".join(n for n in notes if n)
    ax.set_xlabel(f"mean fit time per fold ({unit})" + (f"\n{note}" if note else ""))
    ax.set_ylabel(_score_label(refit))
    handles = [
        Line2D([], [], ls="", marker="o", color=PALETTE[0], label="configuration"),
        Line2D([], [], color=PALETTE[2], marker="o", ms=3, label="fastest for its score"),
        Line2D([], [], ls="", marker="*", mfc="none", mec=BEST, ms=12, label="best"),
    ]
    _legend_outside(ax, handles)
    ax.set_title("Fit time against score")
    fig.tight_layout()
    return fig


def draw_parallel(plt, frame, config, refit, n=PARALLEL_TOP):
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
    # Constrained layout: the colour bar's ticks and the legend below stay inside the figure.
    fig, ax = plt.subplots(figsize=(max(6.0, 1.9 * len(names) + 2.2), 4.6), layout="constrained")
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
            keyed = _keys(vals)
            cats = category_order(config, name, keyed)
            idx = _positions(cats, keyed)
            pos = idx / (len(cats) - 1) if len(cats) > 1 else np.full_like(idx, 0.5)
            tick_pos = [i / (len(cats) - 1) if len(cats) > 1 else 0.5 for i in range(len(cats))]
            ticks.append((tick_pos, cats, False))
        cols.append(pos)
    scores = _shown(top, f"mean_test_{refit}", refit)
    spread = np.nanmax(scores) > np.nanmin(scores)
    norm = mpl.colors.Normalize(np.nanmin(scores), np.nanmax(scores) if spread else np.nanmin(scores) + 1)
    cmap = plt.get_cmap(_cmap(refit))
    x = np.arange(len(names))
    for i in np.argsort(metric(refit).sign * scores):  # best drawn last, on top
        ax.plot(x, [c[i] for c in cols], color=cmap(norm(scores[i])), alpha=0.85, lw=1.4)
    ranks = top[f"rank_test_{refit}"].to_numpy()
    for i in np.flatnonzero(ranks == ranks.min())[:1]:
        ax.plot(x, [c[i] for c in cols], color=BEST, lw=3, label=f"best ({_short(float(scores[i]))})", zorder=4)
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
    if spread:  # one score (one configuration, or all equal) needs no colour scale
        fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=_score_label(refit), pad=0.02)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower left")  # below the axis labels
    by = metric(refit).label
    ax.set_title(f"Top {_count(len(top))} by {by}" if len(top) > 1 else f"The only configuration, by {by}")
    return fig


def importance_features(frame, config):
    """The surrogate's inputs: one column per searched parameter, log10 of log-spaced ones,
    categories as their position in the config; and the configurations' mean scores."""
    params = _params(frame)
    names = list(_space_values(config))
    logs = log_parameters(config)
    numeric = set(numeric_parameters(config))
    columns = []
    for name in names:
        values = [p.get(name) for p in params]
        if name in numeric and all(_is_number(v) for v in values):
            col = np.array(values, dtype=float)
            columns.append(np.log10(np.where(col > 0, col, np.nan)) if name in logs else col)
        else:
            keyed = _keys(values)
            columns.append(_positions(category_order(config, name, keyed), keyed))
    return names, np.column_stack(columns), frame[f"mean_test_{config['refit']}"].to_numpy(dtype=float)


# Above this many scored configurations the surrogate learns from a seeded sample of them: its
# cost grows with the rows (2,000 configurations: 1.4 s, the slowest step after the last trial;
# 500: 0.5 s).
MAX_SURROGATE_ROWS = 500


def parameter_importance(frame, config, n_repeats: int = 10, seed: int = 0) -> dict:
    """Permutation importance of a random-forest surrogate (scikit-learn) fitted to predict a
    configuration's mean score from its parameters.

    Returns ``names``, ``importance`` (mean drop of the surrogate's R² when a parameter is
    shuffled), ``std``, ``r2_oob`` (the surrogate's out-of-bag R²: how far to trust it) and
    ``n_rows`` / ``n_scored`` (configurations it learnt from, of those scored).
    """
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    names, X, y = importance_features(frame, config)
    ok = np.isfinite(y) & np.isfinite(X).all(axis=1)
    X, y = X[ok], y[ok]
    n_scored = len(y)
    if n_scored > MAX_SURROGATE_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(n_scored, MAX_SURROGATE_ROWS, replace=False))
        X, y = X[rows], y[rows]
    # The out-of-bag R² judges the surrogate on the rows each tree did not see, from the one fit:
    # a 5-fold CV R² cost five more forests (60 configurations: 1.1 s -> 0.4 s, the slowest
    # figure and so the end of every run).
    forest = RandomForestRegressor(
        n_estimators=100, min_samples_leaf=2, random_state=seed, n_jobs=1, oob_score=len(y) >= 10
    )
    forest.fit(X, y)
    r2 = float(forest.oob_score_) if len(y) >= 10 else np.nan
    result = permutation_importance(forest, X, y, n_repeats=n_repeats, random_state=seed, n_jobs=1)
    return {
        "names": names,
        "importance": result.importances_mean,
        "std": result.importances_std,
        "r2_oob": r2,
        "n_rows": len(y),
        "n_scored": n_scored,
    }


def draw_importance(plt, frame, config, refit):
    """Which parameters matter: permutation importance of a random-forest surrogate of the
    score (not fANOVA), one bar per parameter, most important on top. A surrogate whose
    out-of-bag R² is <= 0 predicts the score no better than its mean: its importances mean
    nothing, so none are drawn and the figure says the score is not explained."""
    import textwrap

    n_ok = int(frame[f"mean_test_{refit}"].notna().sum())
    if n_ok < 8:
        return _no_data(plt, PLOT_TITLES["importance"], f"too few scored configurations ({n_ok} < 8)")
    result = parameter_importance(frame, config)
    order = np.argsort(result["importance"])
    names = [result["names"][i] for i in order]
    r2 = result["r2_oob"]
    explained = not np.isfinite(r2) or r2 > 0
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(names) + 2.0), layout="constrained")
    if explained:
        ax.barh(
            range(len(names)),
            result["importance"][order],
            xerr=result["std"][order],
            color=PALETTE[0],
            ecolor="black",
            capsize=3,
        )
        ax.axvline(0, color="black", lw=0.8)
    else:
        ax.set_xlim(0, 1)
        ax.set_xticks([])
        message = (
            f"not explained: the surrogate's out-of-bag R² is {_cell_text(r2)} ≤ 0, it predicts the score "
            "no better than the mean score does, so no importance is drawn"
        )
        ax.text(0.5, (len(names) - 1) / 2, "\n".join(textwrap.wrap(message, 56)), ha="center", va="center",
                fontsize=9, color="#52606d")  # fmt: skip
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names)
    trust = (
        f"surrogate's out-of-bag R² = {r2:.2f}" if np.isfinite(r2) else "surrogate not validated (< 10 configurations)"
    )
    if result["n_rows"] < result["n_scored"]:
        trust += f"\nlearnt from a random {result['n_rows']:,} of the {result['n_scored']:,} scored configurations"
    what = "drop in the surrogate's R² when the parameter is shuffled (± std, 10 repeats)"
    ax.set_xlabel(f"{what}\n{trust}" if explained else trust)
    title = f"Parameter importance for {metric(refit).label}"
    ax.set_title("\n".join(textwrap.wrap(title, 56)) + "\n(permutation importance, random-forest surrogate)",
                 fontsize=10)  # fmt: skip
    return fig


DRAW = {
    "marginal": draw_marginal,
    "score_map": draw_score_map,
    "fold_spread": draw_fold_spread,
    "best_so_far": draw_best_so_far,
    "fit_time": draw_fit_time,
    "parallel": draw_parallel,
    "importance": draw_importance,
}


def plot_history(history_csv: str, refit: str, output: str, title: str = "") -> None:
    """Score against resource for every model, coloured by bracket, the rungs as x ticks (PNG)."""
    plt = _style()
    fig = draw_history(plt, history_csv, refit, title)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, bbox_inches="tight")
    plt.close(fig)


def draw_history(plt, history_csv: str, refit: str, title: str = ""):
    """The figure of :func:`plot_history`; the rungs are the resource values of the leaderboard's
    ``n_resources`` column (next to ``history.csv``), else the history's own units."""
    import pandas as pd
    from matplotlib.ticker import NullLocator

    fig, ax = plt.subplots(figsize=(7, 4.5))
    try:
        history = pd.read_csv(history_csv)
    except pd.errors.EmptyDataError:
        history = pd.DataFrame()
    column = f"mean_test_{refit}"
    if len(history) and column in history:
        history = history.assign(**{column: _shown(history, column, refit)})
        brackets = sorted(history["bracket"].unique(), reverse=True)
        for c, b in enumerate(brackets):
            colour = PALETTE[c % len(PALETTE)]
            sub = history[history["bracket"] == b]
            for _, model in sub.groupby("model_id"):
                model = model.sort_values("units")
                ax.plot(model["units"], model[column], "-o", color=colour, alpha=0.6, lw=1, ms=2.5)
            ax.plot([], [], "-o", color=colour, label=f"bracket {b}")
        board = Path(history_csv).with_name("leaderboard.csv")
        rungs = sorted(pd.read_csv(board)["n_resources"].unique()) if board.exists() else []
        rungs = [int(r) for r in rungs] or sorted(int(u) for u in history["units"].unique())
        if history["units"].max() / max(history["units"].min(), 1) >= 10:
            ax.set_xscale("log")
        ax.set_xticks(rungs)
        ax.set_xticklabels([str(r) for r in rungs])
        ax.xaxis.set_minor_locator(NullLocator())
        low, high, n_below, n_above = _limits(history[column], refit)
        ax.set_ylim(low, high)
        note = _off_axis_note(n_below, n_above, history[column], what="point")
        ax.set_xlabel("units of training (resource); ticks at the rungs" + (f"\n{note}" if note else ""))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.set_xlabel("units of training (resource)")
    ax.set_ylabel(_score_label(refit, "validation"))
    ax.set_title(title or "score against resource, every model")
    fig.tight_layout()
    return fig
