"""What adaptive searches add to a study's results: the score history of every model (every
point at which a fold's model was scored, averaged over folds) and its plot."""

from __future__ import annotations

import numpy as np

PLOT_NAME = "score_vs_resource"


def history_frame(records, refit: str):
    """One row per (bracket, model, units): the mean over folds of the refit metric's history.

    Rows are in the order models reached those units; a model's history carries over from rung
    to rung, so a point is kept once.
    """
    import pandas as pd

    points: dict[tuple, dict] = {}
    for r in sorted(records, key=lambda r: (r.bracket, r.rung, r.slot, r.fold)):
        for h in r.history:
            key = (r.bracket, r.model_id, h["units"])
            entry = points.setdefault(key, {"rung": r.rung, "scores": {}, "end": r.end})
            entry["scores"].setdefault(r.fold, h["score"])
    rows = [
        {
            "bracket": b,
            "model_id": model,
            "rung": e["rung"],
            "units": units,
            f"mean_test_{refit}": float(np.mean([np.nan if s is None else s for s in e["scores"].values()])),
            "n_folds": len(e["scores"]),
        }
        for (b, model, units), e in points.items()
    ]
    columns = ["bracket", "model_id", "rung", "units", f"mean_test_{refit}", "n_folds"]
    return pd.DataFrame(rows, columns=columns)
