"""What a model-based (Optuna) search adds to a study's results: the study as Optuna storage (a
``JournalFileBackend`` log that ``optuna-dashboard`` and ``optuna.load_study`` open), the round and
trial number of the best configuration, and the optimisation-history plot."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import numpy as np

PLOT_NAME = "optimization_history"
TITLE = "Optimisation history: score per configuration and best so far"


def write_journal(plan: dict, config: dict, records: dict, path: str) -> None:
    """Write every evaluated configuration as a finished trial of an Optuna study in ``path``.

    Values are what the sampler was told (:func:`~snaketune.evaluation.rounds.objective_value`);
    a configuration whose folds all failed is a ``FAIL`` trial. The log is written under a
    temporary name and renamed, so a reader never sees half a study.
    """
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import FrozenTrial, TrialState

    from snaketune.evaluation.rounds import objective_value
    from snaketune.search.optuna_space import STUDY_NAME, distributions

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = plan["settings"]
    dists = distributions(settings["params"])
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    storage = JournalStorage(JournalFileBackend(str(tmp)))
    study = optuna.create_study(storage=storage, study_name=STUDY_NAME, direction="maximize")
    for key in ("sampler", "seed", "batch_size", "n_trials", "refit"):
        study.set_user_attr(key, settings[key])
    study.set_user_attr("study", config["study"])
    trials = []
    for row in plan["rows"]:
        recs = [records[t] for t in row["trial_ids"]]
        value = objective_value(recs, settings["refit"], settings["error_score"])
        starts = [datetime.fromisoformat(r.start) for r in recs if r.start]
        ends = [datetime.fromisoformat(r.end) for r in recs if r.end]
        trials.append(
            FrozenTrial(
                number=row["number"],
                state=TrialState.FAIL if value is None else TrialState.COMPLETE,
                value=value,
                datetime_start=min(starts) if starts else None,
                datetime_complete=max(ends) if ends else None,
                params={name: recs[0].params[name] for name in dists},
                distributions=dists,
                user_attrs={
                    "config_key": recs[0].config_key,
                    "round": row["round"],
                    "trial_ids": row["trial_ids"],
                    "fold_scores": [r.test_scores.get(settings["refit"]) for r in recs],
                },
                system_attrs={},
                intermediate_values={},
                trial_id=row["number"],
            )
        )
    study.add_trials(trials)
    os.replace(tmp, target)


def plot_history(leaderboard_csv: str, config: dict, output: str) -> None:
    """Mean CV score of every configuration in the order Optuna asked them, the best so far as a
    step line and round boundaries; failed configurations are crosses at the bottom (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = draw_history(plt, leaderboard_csv, config)
    fig.savefig(output, bbox_inches="tight")
    plt.close(fig)


def draw_history(plt, leaderboard_csv: str, config: dict):
    """The figure of :func:`plot_history` (tests read it); the legend sits right of the axes."""
    import pandas as pd

    from snaketune.results.metrics import metric
    from snaketune.results.plots import BEST, MUTED, PALETTE

    refit = config["refit"]
    m = metric(refit)  # a loss drawn as a loss: positive, its best so far going down
    frame = pd.read_csv(leaderboard_csv).sort_values("number")
    numbers = frame["number"].to_numpy()
    scores = m.shown(frame[f"mean_test_{refit}"].to_numpy(dtype=float))
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ok = ~np.isnan(scores)
    ax.scatter(numbers[ok], scores[ok], s=18, color=PALETTE[0], label="configuration (mean CV score)")
    if ok.any():
        best = m.running_best(scores)
        shown = np.isfinite(best)
        ax.step(numbers[shown], best[shown], where="post", color=BEST, label="best so far")
        if (~ok).any():
            worst = np.nanmax(scores) if m.is_loss else np.nanmin(scores)
            ax.scatter(numbers[~ok], np.full((~ok).sum(), worst), marker="x", color=MUTED, label="failed")
    rounds = frame["round"].to_numpy()
    for start in numbers[1:][np.diff(rounds) != 0]:
        ax.axvline(start - 0.5, color=MUTED, alpha=0.3, linewidth=0.8)
    ax.grid(alpha=0.3)
    ax.set_xlabel("configuration (Optuna trial number; vertical lines: rounds)")
    ax.set_ylabel(f"mean test {m.label}" + (f" ({m.direction})" if m.is_loss else ""))
    ax.set_title(f"{config['study']}: {next(iter(config['search'].values()))['sampler']} sampler", fontweight="bold")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)  # off the points
    fig.tight_layout()
    return fig
