"""The package functions a workflow job may run: every rule's command is one of these calls.

Only the names in :data:`CALLS` can be called, with JSON keyword arguments; nothing else in the
package (or outside it) is reachable through the worker. Each call writes only the paths listed
in its ``outputs`` argument, which the worker checks are inside the study folder. A job runs its
call in the warm worker when one is running, else in a new Python
(``python -m snaketune.runtime.calls NAME ARGS THREADS``); the result is the same.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from functools import partial
from pathlib import Path

from snaketune.base.procs import use_threads
from snaketune.evaluation.records import RunSettings
from snaketune.runtime.protocol import ENV_RETRY, ENV_SETTINGS, read_args


def trials(
    *,
    specs: list[dict],
    outputs: list[str],
    settings: RunSettings,
    manifest: str | None = None,
    trial_threads: int | None = None,
    ask: dict | None = None,
) -> tuple[int, str]:
    """A job's trials (one, a batch, or the folds of an adaptive slot), one file each.

    With ``ask`` (the arguments of :func:`ask`), the job is a model-based search's whole round:
    it asks the round's configurations first, which its trials then read from the ask file.

    A batch (``manifest`` given), or any job run again after its worker was lost
    (:data:`~snaketune.runtime.protocol.ENV_RETRY`), keeps trials whose file is already a complete
    record; a batch writes its manifest last, once every trial has its file. With
    ``trial_threads``, the job's threads are shared out: ``threads // trial_threads`` forked
    children run the trials, each trial with ``trial_threads`` threads. (Decided here: the job's
    threads can be the run's cores, and the call's arguments must not depend on them, or a
    resume with other ``--cores`` would rerun the job.)
    """
    from snaketune.evaluation.trial import execute_many, write_manifest

    keep = manifest is not None or bool(os.environ.get(ENV_RETRY))
    parallel = 1
    if trial_threads:
        parallel = max(1, settings.threads // trial_threads)
        settings = replace(settings, threads=own_threads(settings.threads, trial_threads))
        use_threads(settings.threads)
    asked = _ask(ask) + "\n" if ask is not None else ""
    status, log = execute_many(specs, outputs, settings, keep_existing=keep, parallel=parallel)
    if status == 0 and manifest is not None:
        write_manifest(manifest, outputs)
    return status, asked + log


def own_threads(threads: int, trial_threads: int | None) -> int:
    """The threads a job's own process computes with: the job's, or in a job that runs its
    trials on forks (``trial_threads``) a trial's, since it only asks and forks (at two, an Optuna
    round's ask ran 4x slower: BLAS threads spinning)."""
    return min(int(trial_threads), threads) if trial_threads else threads


def promote(*, slots: list[list[str]], keep: int, refit: str, outputs: list[str]) -> str:
    from snaketune.evaluation.slots import promote as promote_slots

    doc = promote_slots(slots, keep, refit, outputs[0])
    return f"promoted {[s['model_id'] for s in doc['survivors']]}"


def ask(**kwargs) -> str:
    """A model-based search's round: tell the previous round's results, ask the next configurations."""
    return _ask(kwargs)


def _ask(kwargs: dict) -> str:
    from snaketune.evaluation.rounds import ask_round

    entries = ask_round(**kwargs)
    return f"round {kwargs['round_index']}: asked trials {[e['number'] for e in entries]}: " + "; ".join(
        str(e["params"]) for e in entries
    )


def step(*, strategy: str, step: str, outputs: list[str], **kwargs) -> str:
    """A search strategy's own step (e.g. BOHB's propose), run by its strategy class."""
    from snaketune.strategies.registry import STRATEGIES

    return STRATEGIES[strategy].run_step(step, outputs=outputs, **kwargs)


def prepare_data(*, data: dict, outputs: list[str], ordered: bool = False, task: str | None = None) -> str:
    from snaketune.base.data import prepare

    meta = prepare(data, Path.cwd(), Path(outputs[0]).parent, ordered=ordered, task=task)
    return (
        f"prepared {meta['n_samples']} x {meta['n_features']} ({meta['n_test']} held out), "
        f"fingerprint {meta['fingerprint'][:16]}"
    )


def make_splits(*, cv: dict, classifier: bool, y: str, outputs: list[str]) -> str:
    import numpy as np

    from snaketune.base.splits import compute_splits, save_splits

    target = np.load(y)
    # Groups, when the data has them, are written beside y by the same prepare job.
    groups_path = Path(y).with_name("groups.npy")
    groups = np.load(groups_path) if groups_path.exists() else None
    splits = compute_splits(cv, target, classifier, groups)
    save_splits(outputs[0], splits)
    return f"{len(splits)} splits of {len(target)} samples"


def aggregate(*, plan: dict, config: dict, outputs: list[str]) -> str:
    from snaketune.results.leaderboard import write_leaderboard

    return write_leaderboard(plan=plan, config=config, outputs=outputs)


def plots(*, leaderboard: str, config: dict, outputs: list[str]) -> str:
    from snaketune.results.optuna_study import PLOT_NAME, plot_history
    from snaketune.results.plots import make_plots

    history = [p for p in outputs if Path(p).stem == PLOT_NAME]  # model-based searches only
    others = {p: partial(plot_history, leaderboard, config, p) for p in history}
    copied = make_plots(leaderboard, config, [p for p in outputs if p not in history], others)
    if copied:
        return f"{len(outputs)} plots: {copied} copied from .cache/plots (what they show did not change)"
    return f"{len(outputs)} plots"


def refit(
    *,
    data_dir: str,
    best: str,
    estimator: dict,
    allowed_modules: list,
    seed: int,
    scoring: list,
    outputs: list[str],
    budget: dict | None = None,
    trial_timeout: float | None = None,
    refit_timeout: float | None = None,
) -> str:
    from snaketune.evaluation.refit import refit_best

    model, summary = outputs
    done = refit_best(
        data_dir=data_dir,
        best_path=best,
        estimator=estimator,
        allowed_modules=allowed_modules,
        seed=seed,
        scoring=scoring,
        model_path=model,
        summary_path=summary,
        budget=budget,
        trial_timeout=trial_timeout,
        refit_timeout=refit_timeout,
    )
    if done.get("skipped"):
        return f"no refit ({done['status']}): {done['reason']}"
    if "reused" in done:
        return f"refit the best configuration -> {model}: copied from {done['reused']} (fitted before)"
    return f"refit the best configuration -> {model}"


def refit_command(*, best: str, spec: dict, template, seed: int, budget: dict | None, outputs: list[str]) -> str:
    """A command study's refit: the best configuration's command on all data, or a noted skip."""
    from snaketune.evaluation.command import refit_command as run_refit

    return run_refit(best=best, spec=spec, template=template, seed=seed, budget=budget, outputs=outputs)


def report_pages(
    *, leaderboard: str, best: str, refit: str, config: dict, outputs: list[str], landing_template: str | None = None
) -> str:
    from snaketune.results.report import write_pages

    names = ("leaderboard", "best", "study", "failures", "landing")
    write_pages(
        leaderboard=leaderboard,
        best=best,
        refit=refit,
        config=config,
        outputs=dict(zip(names, outputs, strict=False)),
        landing_template=landing_template,
    )
    return f"report pages {outputs}"


def nested_splits(*, cv: dict, classifier: bool, y: str, outer_splits: str, outer_fold: int, outputs: list[str]) -> str:
    import numpy as np

    from snaketune.evaluation.nested import make_inner_splits

    n, rows = make_inner_splits(
        cv=cv, classifier=classifier, y=np.load(y), outer_splits=outer_splits, outer_fold=outer_fold, output=outputs[0]
    )
    return f"{n} inner splits of outer fold {outer_fold}'s {rows} training rows"


def nested_outer(
    *, plan: dict, config: dict, outer_splits: str, outer_fold: int, trials_dir: str, outputs: list[str]
) -> str:
    from snaketune.results.nested import outer_fold as score_outer

    return score_outer(
        plan=plan,
        config=config,
        outer_splits=outer_splits,
        outer_fold=outer_fold,
        trials_dir=trials_dir,
        outputs=outputs,
    )


def nested_summary(*, outer: list[str], best: str, config: dict, n_trials: int, outputs: list[str]) -> str:
    from snaketune.results.nested import summarize

    return summarize(outer=outer, best=best, config=config, n_trials=n_trials, outputs=outputs)


CALLS = {
    "trials": trials,
    "promote": promote,
    "ask": ask,
    "step": step,
    "prepare_data": prepare_data,
    "make_splits": make_splits,
    "aggregate": aggregate,
    "plots": plots,
    "refit": refit,
    "refit_command": refit_command,
    "report_pages": report_pages,
    "nested_splits": nested_splits,
    "nested_outer": nested_outer,
    "nested_summary": nested_summary,
}

# What the warm worker imports for its forked children (runtime/worker.py): first what the
# calls after the last trial need (no scikit-learn: 0.4 s), then the rest (0.5 s more), which a
# call outside LIGHT_CALLS waits for. A refit that is not copied from the cache imports
# scikit-learn in its own fork if the worker has not yet.
LIGHT_MODULES = (
    "numpy",
    "pandas",
    "scipy.special",
    "snaketune.results.aggregate",
    "snaketune.results.compare",
    "snaketune.results.leaderboard",
    "snaketune.results.report",
    "snaketune.results.plots",
    "snaketune.evaluation.refit",
)
HEAVY_MODULES = (
    "scipy.sparse",
    "scipy.linalg",
    "scipy.optimize",
    "scipy.stats",
    "joblib",
    "sklearn.base",
    "sklearn.metrics",
    "snaketune.base.data",
    "snaketune.base.splits",
    "snaketune.evaluation.trial",
    "snaketune.evaluation.slots",
)
LIGHT_CALLS = frozenset({"aggregate", "plots", "refit", "report_pages"})


def run_call(name: str, kwargs: dict, settings: RunSettings) -> tuple[int, str]:
    """Run a registered call; return (exit status, log text)."""
    if name not in CALLS:
        raise KeyError(f"unknown call {name!r}; known: {sorted(CALLS)}")
    if name == "trials":
        return trials(**kwargs, settings=settings)
    return 0, CALLS[name](**kwargs) + "\n"


def main(argv=None) -> int:
    """``python -m snaketune.runtime.calls NAME ARGS [THREADS]``: run a call in this process."""
    argv = sys.argv[1:] if argv is None else argv
    threads = int(argv[2]) if len(argv) > 2 else 1
    settings = RunSettings.from_json(os.environ.get(ENV_SETTINGS), threads)
    status, log = run_call(argv[0], read_args(argv[1]), settings)
    sys.stderr.write(log)
    return status


if __name__ == "__main__":
    sys.exit(main())
