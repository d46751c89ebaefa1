"""Results of an adaptive (Hyperband / successive halving) study: leaderboard, history, plot."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from snaketune.base.jsonutil import write_json_atomic
from snaketune.evaluation.adaptive import TIE_RULE, rank_key
from snaketune.results.aggregate import rank_scores


def _columns(records: list[dict], scoring: list[str], refit: str):
    """cv_results_-like rows for records (one model each)."""
    import pandas as pd

    names = sorted({p for r in records for p in r["params"]})
    n_folds = max(len(r["fit_time"]) for r in records)
    rows = []
    for r in records:
        row = {"model_id": r["model_id"], "bracket": r["bracket"], "iter": r["rung"], "n_resources": r["units"]}
        row["params"] = json.dumps(r["params"], sort_keys=True)
        for name in names:
            value = r["params"].get(name)
            row[f"param_{name}"] = json.dumps(value) if isinstance(value, list) else value
        for m in scoring:
            vals = [np.nan if v is None else v for v in r["test_scores"][m]]
            for k in range(n_folds):
                row[f"split{k}_test_{m}"] = vals[k] if k < len(vals) else np.nan
            row[f"mean_test_{m}"] = np.mean(vals) if vals else np.nan
            row[f"std_test_{m}"] = np.std(vals) if vals else np.nan
        row["mean_fit_time"] = float(np.mean(r["cum_fit_time"]))
        row["std_fit_time"] = float(np.std(r["cum_fit_time"]))
        row["mean_score_time"] = float(np.mean(r["score_time"]))
        row["std_score_time"] = float(np.std(r["score_time"]))
        row["status"] = r["status"]
        row["n_failed"] = int(r["status"] != "ok")
        row["stopped_early"] = bool(r["stopped"])
        row["config_key"] = r["config_key"]
        rows.append(row)
    frame = pd.DataFrame(rows)
    for m in scoring:
        frame[f"rank_test_{m}"] = rank_scores(frame[f"mean_test_{m}"].to_numpy(dtype=float))
    return frame


def write_results(result_paths, *, plan_meta: dict, settings: dict, scoring, refit, outputs) -> dict:
    """All results -> ``leaderboard.csv``/``.md`` (the final rung of every bracket),
    ``history.csv`` (every scored point of every model) and ``best.json``."""
    import pandas as pd

    records = [json.loads(Path(p).read_text()) for p in result_paths]
    finals = [r for r in records if r["final_rung"]]
    finals.sort(key=lambda r: rank_key(r, refit))
    board = _columns(finals, scoring, refit)
    board.to_csv(outputs["leaderboard"], index=False)
    _markdown(board, scoring, refit, outputs["markdown"])
    points = [p for r in records for p in r["points"]]
    history = pd.DataFrame(points)
    if len(history):
        first = history["time"].min()
        history["elapsed"] = history["time"] - first
        history = history.sort_values(["time", "model_id"]).reset_index(drop=True)
    history.to_csv(outputs["history"], index=False)
    best = finals[0]
    models = {(r["bracket"], r["model_id"]) for r in records}
    top_units = {}
    for r in records:
        key = (r["bracket"], r["model_id"])
        top_units[key] = max(top_units.get(key, 0), r["units"])
    doc = {
        "params": best["params"],
        "config_key": best["config_key"],
        "model_id": best["model_id"],
        "bracket": best["bracket"],
        "rung": best["rung"],
        "n_resources": best["units"],
        "refit_metric": refit,
        "mean_test_scores": best["mean_test"],
        "test_scores": best["test_scores"],
        "stopped_early": best["stopped"],
        "settings": settings,
        "plan": plan_meta,
        "used": {
            "n_models": len(models),
            "units": int(sum(top_units.values())),
            "units_trained": int(sum(r["units_trained"] for r in records)),
            "n_evaluations": len(records),
            "stopped_early": sum(1 for r in records if r["stopped"] and not r.get("carried")),
            "failed": sum(1 for r in records if r["status"] != "ok"),
            "reused": sum(1 for r in records if r.get("reused")),
        },
        "selection": "best of the final rung of every bracket; " + TIE_RULE,
    }
    write_json_atomic(outputs["best"], doc)
    return doc


def _markdown(board, scoring, refit, path) -> None:
    header = ["rank", "bracket", "units"] + [f"mean {m}" for m in scoring] + ["stopped", "params"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in board.iterrows():
        cells = [str(row[f"rank_test_{refit}"]), str(row["bracket"]), str(row["n_resources"])]
        cells += [_fmt(row[f"mean_test_{m}"]) for m in scoring]
        cells += ["yes" if row["stopped_early"] else "", _params_text(json.loads(row["params"]))]
        lines.append("| " + " | ".join(cells) + " |")
    Path(path).write_text("\n".join(lines) + "\n")


def _fmt(v) -> str:
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def _params_text(params: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(params.items()))


def plot_history(history_csv: str, refit: str, output: str, title: str = "") -> None:
    """Score against resource for every model, coloured by bracket (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from snaketune.results.plots import PALETTE

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


