"""How good is the tuned model? Nested cross-validation's results: each outer fold's inner winner
(chosen as ``GridSearchCV`` chooses: rank 1 on ``refit``, first in search order on ties), its score
on the outer test fold, and ``nested.json``, a plot and a report page over all outer folds.

The best configuration's CV score is an optimistic estimate of the tuned model, because the same
folds chose it; the mean outer score is not (Cawley & Talbot 2010, "On over-fitting in model
selection and subsequent selection bias in performance evaluation", JMLR 11; scikit-learn's
example "Nested versus non-nested cross-validation").
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from snaketune.base.jsonutil import to_jsonable, write_json_atomic
from snaketune.evaluation.records import read_records
from snaketune.results.aggregate import best_index, cv_results
from snaketune.search.space import as_candidate


def outer_fold(
    *, plan: dict, config: dict, outer_splits: str, outer_fold: int, trials_dir: str, outputs: list[str]
) -> str:
    """Pick outer fold ``outer_fold``'s inner winner from its trial files, refit it on the outer
    training rows and score it on the outer test rows; write ``outputs[0]`` (JSON)."""
    from snaketune.base.data import load_prepared
    from snaketune.evaluation.nested import score_outer_fold

    scoring, refit = config["scoring"], config["refit"]
    keys, k = plan["config_keys"], plan["n_folds"]
    records = read_records(Path(trials_dir) / f"{key}_{j}.json" for key in keys for j in range(k))
    candidates = [{n: as_candidate(v) for n, v in c.items()} for c in plan["candidates"]]
    results = cv_results(
        candidates,
        keys,
        records,
        n_folds=k,
        scoring=scoring,
        error_score=config["error_score"],
        return_train_score=config["return_train_score"],
    )
    best = best_index(results, refit)
    scored = score_outer_fold(
        data=load_prepared(plan["data_dir"]),
        outer_splits=outer_splits,
        outer_fold=outer_fold,
        estimator=config["estimator"],
        allowed_modules=config["allowed_modules"],
        seed=config["seed"],
        scoring=scoring,
        params=to_jsonable(candidates[best]),
    )
    doc = {
        "outer_fold": outer_fold,
        "index": best,
        "params": to_jsonable(candidates[best]),
        "config_key": keys[best],
        "inner_best": {m: float(results[f"mean_test_{m}"][best]) for m in scoring},
        "inner_std": float(results[f"std_test_{refit}"][best]),
        "n_inner_folds": k,
        **scored,
    }
    write_json_atomic(outputs[0], doc)
    from snaketune.results.metrics import metric

    shown = metric(refit)
    return (
        f"outer fold {outer_fold}: winner {doc['params']}, outer {shown.label} {shown.text(doc['outer_scores'][refit])}"
    )


def summarize(*, outer: list[str], best: str, config: dict, n_trials: int, outputs: list[str]) -> str:
    """``nested.json`` (outputs[0]), the plot of outer scores against the inner best (outputs[1])
    and the report page (outputs[2]) from the outer folds' results and the study's ``best.json``."""
    folds = [json.loads(Path(p).read_text()) for p in outer]
    scoring, refit = config["scoring"], config["refit"]
    scores = {m: [f["outer_scores"][m] for f in folds] for m in scoring}
    study_best = json.loads(Path(best).read_text())
    mean_inner = float(np.mean([f["inner_best"][refit] for f in folds]))
    winners = {json.dumps(f["params"], sort_keys=True) for f in folds}
    doc = {
        "refit": refit,
        "outer_scores": scores,
        "mean": {m: float(np.mean(v)) for m, v in scores.items()},
        "std": {m: float(np.std(v)) for m, v in scores.items()},
        "outer_folds": folds,
        "n_outer": len(folds),
        "n_inner": folds[0]["n_inner_folds"] if folds else 0,
        "n_candidates": study_best.get("n_candidates"),
        "n_trials": n_trials,
        "n_distinct_winners": len(winners),
        "mean_inner_best": mean_inner,
        "study_cv_best": study_best.get("mean_test_score"),
        "nested": config["nested"],
        "inner_cv": config["cv"],
    }
    doc["sentence"] = sentence(doc)
    write_json_atomic(outputs[0], doc)
    plot_outer_vs_inner(doc, outputs[1], title=f"{config['study']}: nested cross-validation")
    Path(outputs[2]).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{outputs[2]}.tmp")
    tmp.write_text(nested_html(doc, config), encoding="utf-8")
    tmp.replace(outputs[2])
    return doc["sentence"]


def sentence(doc: dict) -> str:
    """The answer in one sentence: the tuned model's estimate, and how optimistic the CV best is."""
    from snaketune.results.metrics import metric

    refit = doc["refit"]
    m = metric(refit)  # a loss said as a loss, positive (doc keeps scikit-learn's signs)
    text = (
        f"Nested CV estimate of the tuned model: {m.label} {m.text(doc['mean'][refit])} ± {doc['std'][refit]:.4f} "
        f"over {doc['n_outer']} outer folds ({doc['n_distinct_winners']} distinct winners)"
    )
    if doc.get("study_cv_best") is not None:
        gap = m.shown(doc["study_cv_best"]) - m.shown(doc["mean"][refit])
        if m.is_loss:  # an optimistic loss is lower: "12.3000 below it", not "-12.3000 above it"
            text += f"; the study's best CV {m.label} {m.text(doc['study_cv_best'])} is {abs(gap):.4f} "
            text += "below it" if gap <= 0 else "above it"
        else:
            text += f"; the study's best CV score {m.text(doc['study_cv_best'])} is {gap:+.4f} above it"
    return text + "."


def plot_outer_vs_inner(doc: dict, path: str, title: str) -> None:
    """Each outer fold's winner: its inner CV score (what chose it) against its outer test score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = draw_outer_vs_inner(plt, doc, title)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def draw_outer_vs_inner(plt, doc: dict, title: str):
    """The figure of :func:`plot_outer_vs_inner` (tests read it); the legend sits below the axes."""
    from snaketune.results.metrics import metric

    refit = doc["refit"]
    m = metric(refit)  # a loss drawn as a loss
    inner = [m.shown(f["inner_best"][refit]) for f in doc["outer_folds"]]
    outer = [m.shown(v) for v in doc["outer_scores"][refit]]
    fig, ax = plt.subplots(figsize=(5.2, 4.9), dpi=110, layout="constrained")
    lo, hi = min(inner + outer), max(inner + outer)
    pad = (hi - lo) * 0.08 or 0.01
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="#999999", lw=1, ls="--", label="outer = inner")
    ax.scatter(inner, outer, color="#0072B2", zorder=3, label="outer fold")
    for f, x, y in zip(doc["outer_folds"], inner, outer, strict=True):
        ax.annotate(str(f["outer_fold"]), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.axhline(m.shown(doc["mean"][refit]), color="#D55E00", lw=1.2, label=f"mean outer {m.text(doc['mean'][refit])}")
    if doc.get("study_cv_best") is not None:
        best = m.shown(doc["study_cv_best"])
        ax.axvline(best, color="#009E73", lw=1.2, ls=":", label=f"study's best CV {best:.4f} (optimistic)")
    ax.set_xlabel(f"inner CV {m.label} of the fold's winner (chose it)")
    ax.set_ylabel(f"outer test {m.label} (unbiased" + (f", {m.direction})" if m.is_loss else ")"))
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.legend(*ax.get_legend_handles_labels(), fontsize=8, loc="outside lower left", ncol=2)  # off the points
    return fig


def nested_html(doc: dict, config: dict) -> str:
    """A self-contained report page: the estimate, and each outer fold's winner and scores."""
    from html import escape

    from snaketune.results.metrics import label, metric, titled

    refit, scoring = doc["refit"], config["scoring"]
    head = ["outer fold", f"inner CV {label(refit)}"] + [f"outer {label(m)}" for m in scoring] + ["winner"]
    rows = "".join(
        "<tr>"
        + f"<td>{f['outer_fold']}</td><td>{metric(refit).text(f['inner_best'][refit])}</td>"
        + "".join(f"<td>{metric(m).text(f['outer_scores'][m])}</td>" for m in scoring)
        + f"<td><code>{escape(json.dumps(f['params'], sort_keys=True))}</code></td></tr>"
        for f in doc["outer_folds"]
    )
    means = "".join(
        f"<li>{escape(titled(m))}: {metric(m).text(doc['mean'][m])} ± {doc['std'][m]:.4f}</li>" for m in scoring
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Nested CV: {escape(config['study'])}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:1.2rem;font-size:14px}"
        "td,th{border-bottom:1px solid #e4e7eb;padding:.25rem .6rem;text-align:left}"
        "table{border-collapse:collapse}p.note{color:#52606d}</style></head><body>"
        f"<h1>How good is the tuned model? Study {escape(config['study'])}</h1>"
        f"<p>{escape(doc['sentence'])}</p><ul>{means}</ul>"
        f'<p class="note">Nested cross-validation: {doc["n_outer"]} outer folds '
        f"(<code>{escape(json.dumps(doc['nested'], sort_keys=True))}</code>); in each outer training fold "
        f"the whole search ({doc['n_candidates']} candidates × {doc['n_inner']} inner folds) ran again, and "
        "its winner, refit on the outer training rows, was scored on the outer test rows no part of "
        f"that search saw ({doc['n_trials']} inner trials in all). The mean outer score estimates how "
        "well the tuning procedure generalizes; the leaderboard's best CV score is optimistic because "
        "the same folds chose it.</p>"
        f"<table><thead><tr>{''.join(f'<th>{escape(h)}</th>' for h in head)}</tr></thead>"
        f"<tbody>{rows}</tbody></table></body></html>\n"
    )
