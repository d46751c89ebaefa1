"""Package functions a workflow job may run in the warm worker instead of a new Python.

Only the names in :data:`CALLS` can be called, with JSON keyword arguments; nothing else in the
package (or outside it) is reachable through the worker. Each call writes only the paths listed
in its ``outputs`` argument, which the worker checks are inside the study folder.
"""

from __future__ import annotations

import json
import sys


def hyperband_eval(*, spec: dict, outputs: list[str], promotion: str | None = None) -> str:
    from snaketune.evaluation.adaptive import run_eval

    result, state = outputs
    record = run_eval(spec, result, state, promotion=promotion)
    return (
        f"{record['model_id']} ({record['config_key']}): {record['units']} units, status {record['status']}, "
        f"scores {record['mean_test']}{', stopped early' if record['stopped'] else ''}"
        f"{', reused' if record.get('reused') else ''}{', carried' if record.get('carried') else ''}"
    )


def hyperband_promote(*, results: list[str], keep: int, refit: str, outputs: list[str]) -> str:
    from snaketune.evaluation.adaptive import promote

    doc = promote(results, keep, refit, outputs[0])
    return f"promoted {[s['model_id'] for s in doc['survivors']]}"


def prepare_data(*, data: dict, outputs: list[str]) -> str:
    from pathlib import Path

    from snaketune.base.data import prepare

    meta = prepare(data, Path.cwd(), Path(outputs[0]).parent)
    return (
        f"prepared {meta['n_samples']} x {meta['n_features']} ({meta['n_test']} held out), "
        f"fingerprint {meta['fingerprint'][:16]}"
    )


def make_splits(*, cv: dict, classifier: bool, y: str, outputs: list[str]) -> str:
    import numpy as np

    from snaketune.base.splits import compute_splits, save_splits

    target = np.load(y)
    splits = compute_splits(cv, target, classifier)
    save_splits(outputs[0], splits)
    return f"{len(splits)} splits of {len(target)} samples"


def plots(*, leaderboard: str, config: dict, outputs: list[str]) -> str:
    from snaketune.results.plots import make_plots

    make_plots(leaderboard, config, outputs)
    return f"{len(outputs)} plots"


def refit(
    *, data_dir: str, best: str, estimator: dict, allowed_modules: list, seed: int, scoring: list, outputs: list[str]
) -> str:
    from snaketune.evaluation.refit import refit_best

    model, summary = outputs
    refit_best(
        data_dir=data_dir,
        best_path=best,
        estimator=estimator,
        allowed_modules=allowed_modules,
        seed=seed,
        scoring=scoring,
        model_path=model,
        summary_path=summary,
    )
    return f"refit the best configuration -> {model}"


def report_pages(*, leaderboard: str, best: str, refit: str, config: dict, outputs: list[str]) -> str:
    from snaketune.results.report import write_pages

    names = ("leaderboard", "best", "study")
    write_pages(
        leaderboard=leaderboard, best=best, refit=refit, config=config, outputs=dict(zip(names, outputs, strict=True))
    )
    return f"report pages {outputs}"


CALLS = {
    "prepare_data": prepare_data,
    "make_splits": make_splits,
    "plots": plots,
    "refit": refit,
    "report_pages": report_pages,
    "hyperband_eval": hyperband_eval,
    "hyperband_promote": hyperband_promote,
}

# Modules a worker imports up front so forked calls start warm.
PRELOAD = (
    "snaketune.base.data",
    "snaketune.base.splits",
    "snaketune.evaluation.refit",
    "snaketune.evaluation.adaptive",
)


def run_call(name: str, kwargs: dict) -> str:
    """Run a registered call; return its log line."""
    if name not in CALLS:
        raise KeyError(f"unknown call {name!r}; known: {sorted(CALLS)}")
    return CALLS[name](**kwargs)


def main(argv=None) -> int:
    """``python -m snaketune.calls NAME KWARGS_JSON``: run a call in this process."""
    argv = sys.argv[1:] if argv is None else argv
    print(run_call(argv[0], json.loads(argv[1])), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
