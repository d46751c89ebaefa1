"""Hyperband and successive halving as a static Snakemake DAG of *slots*.

The schedule (:mod:`snaketune.search.hyperband`) fixes, before anything runs, how many models every
rung of every bracket holds. So the DAG is static and ``snakemake -n`` lists every job:

* ``hyperband_eval`` for slot ``j`` of rung ``i`` of bracket ``b``: in rung 0 it trains the
  ``j``-th sampled configuration of the bracket; in rung ``i > 0`` it trains the ``j``-th best
  survivor of rung ``i - 1``, read from that rung's promotion file. With ``resource:
  partial_fit`` it loads the survivor's pickled state and continues training (a promoted model's
  calls accumulate); with ``n_samples`` it refits on a larger nested subsample. It writes
  ``hyperband/b<b>/r<i>/s<j>.json`` (+ ``.pkl``, the model state) atomically.
* ``hyperband_promote`` ranks a rung's results and writes the survivors in order:
  mean test score of the refit metric, descending (failed = last), then config key, then model
  id, ascending. The rule is deterministic, so a rerun promotes the same models.
* ``hyperband_aggregate``, ``hyperband_plot``, ``hyperband_refit`` write the final outputs.

Lower slots hold better models, so evaluation jobs get priority ``1000 * rung - slot``: promoted
models first, the best of them first (the "high scores" scheme of Sievert et al.).

Every evaluation is also stored content-addressed as ``hyperband/evals/<config_key>_<units>``
(never overwritten): if Snakemake reruns a slot whose model was already trained that far (a
touched input, a repeated configuration), the job copies the stored result instead of training.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from snaketune.base.jsonutil import digest, to_jsonable, write_json_atomic
from snaketune.search.hyperband import Schedule, schedule_from_config

EVAL_FORMAT = 1
PLOT_NAME = "score_vs_resource"
TIE_RULE = "mean test score of the refit metric descending (failed last), then config_key, then model_id ascending"


@dataclass
class AdaptivePlan:
    """Everything the rules need at parse time: schedule, sampled models, paths, job specs."""

    out: str
    schedule: Schedule
    settings: dict
    models: dict  # bracket id -> list of {"model_id", "config_key", "params"}
    base: dict = field(repr=False)

    @property
    def root(self) -> str:
        return f"{self.out}/hyperband"

    def result_path(self, b: int, i: int, j: int) -> str:
        return f"{self.root}/b{b}/r{i}/s{j}.json"

    def state_path(self, b: int, i: int, j: int) -> str:
        return f"{self.root}/b{b}/r{i}/s{j}.pkl"

    def promotion_path(self, b: int, i: int) -> str:
        return f"{self.root}/b{b}/r{i}/promotion.json"

    def rung_results(self, b: int, i: int) -> list[str]:
        n = self.schedule.bracket(b).rungs[i].n_models
        return [self.result_path(b, i, j) for j in range(n)]

    def rung_states(self, b: int, i: int) -> list[str]:
        n = self.schedule.bracket(b).rungs[i].n_models
        return [self.state_path(b, i, j) for j in range(n)]

    @property
    def all_results(self) -> list[str]:
        return [p for b in self.schedule.brackets for r in b.rungs for p in self.rung_results(b.id, r.index)]

    def eval_spec(self, b: int, i: int, j: int) -> dict:
        """The params of one evaluation job (what its result depends on, besides its inputs)."""
        bracket = self.schedule.bracket(b)
        spec = dict(self.base)
        spec.update(
            bracket=b,
            rung=i,
            slot=j,
            units=bracket.rungs[i].units,
            final_rung=i == len(bracket.rungs) - 1,
        )
        if i == 0:
            spec["model"] = self.models[b][j]
        return spec

    def priority(self, b: int, i: int, j: int) -> int:
        return 1000 * i - j

    def final_outputs(self) -> list[str]:
        out = self.out
        return [
            f"{out}/leaderboard.csv",
            f"{out}/leaderboard.md",
            f"{out}/history.csv",
            f"{out}/best.json",
            f"{out}/model.pkl",
            f"{out}/refit.json",
            f"{out}/plots/{PLOT_NAME}.png",
        ]

    def summary(self) -> str:
        s = self.schedule
        return (
            f"snaketune {s.kind}: {len(s.brackets)} bracket(s), {s.n_models} models, {s.units} units "
            f"({s.resource}), {s.n_evaluations} evaluation jobs; table: python -m snaketune plan <config>"
        )


_PLANS: dict[int, AdaptivePlan] = {}


def adaptive_settings(search: dict, schedule: Schedule) -> dict:
    """Resolved settings of the ``hyperband`` / ``successive_halving`` section."""
    ((kind, spec),) = search.items()
    patience = spec.get("patience")
    if patience is True:
        # dask-ml's patience=True: max(max_iter // aggressiveness, 1).
        top = max(r.units for b in schedule.brackets for r in b.rungs)
        eta = spec.get("aggressiveness", spec.get("factor", 3))
        patience = max(top // eta, 1)
    elif patience is False:
        patience = None
    max_units = max(r.units for b in schedule.brackets for r in b.rungs)
    return {
        "kind": kind,
        "resource": spec.get("resource", schedule.resource),
        "chunk_size": spec.get("chunk_size"),
        "patience": patience,
        "tol": float(spec.get("tol", 1e-3)),
        "folds": spec.get("folds"),
        "seed": int(spec.get("seed", 0)),
        "max_units": max_units,
    }


def sample_models(config: dict, plan, schedule: Schedule, settings: dict) -> dict:
    """Sample each bracket's configurations (``ParameterSampler``, seed ``seed + bracket``) and
    name them by a content hash of everything that determines their results."""
    from sklearn.model_selection import ParameterSampler

    from snaketune.search.space import expand_space

    ((kind, spec),) = config["search"].items()
    (dists,) = expand_space(spec["params"])
    defining = {
        "estimator": config["estimator"],
        "data": plan.data_key,
        "cv": plan.cv_key,
        "scoring": config["scoring"],
        "seed": config["seed"],
        "error_score": config["error_score"],
        "adaptive": {k: settings[k] for k in ("resource", "chunk_size", "patience", "tol", "folds")},
    }
    if settings["resource"] == "n_samples" and not settings["chunk_size"]:
        defining["adaptive"]["max_units"] = settings["max_units"]  # sets the default chunk size
    models = {}
    for bracket in schedule.brackets:
        n = bracket.n_models
        sampled = list(ParameterSampler(dists, n, random_state=settings["seed"] + bracket.id))
        if len(sampled) < n:
            from snaketune.config.load import ConfigError

            raise ConfigError(
                [
                    f"search.{kind}.params: the space has only {len(sampled)} configurations but bracket "
                    f"{bracket.id} needs {n}; add values or a distribution, or lower the budget"
                ]
            )
        models[bracket.id] = [
            {
                "model_id": f"b{bracket.id}-{j}",
                "config_key": digest(dict(defining, params=to_jsonable(p))),
                "params": to_jsonable(p),
            }
            for j, p in enumerate(sampled)
        ]
    return models


def setup(study) -> AdaptivePlan:
    """Build (once per Study) the adaptive plan of a validated config."""
    key = id(study)
    if key in _PLANS:
        return _PLANS[key]
    config, plan = study.config, study.plan
    schedule = schedule_from_config(config["search"])
    settings = adaptive_settings(config["search"], schedule)
    models = sample_models(config, plan, schedule, settings)
    base = {
        "estimator": config["estimator"],
        "allowed_modules": config["allowed_modules"],
        "seed": config["seed"],
        "scoring": config["scoring"],
        "refit": config["refit"],
        "error_score": config["error_score"],
        "classifier": plan.classifier,
        "data_dir": plan.data_dir,
        "splits": plan.splits_path,
        "cache_dir": f"{plan.out}/hyperband/evals",
        **{k: settings[k] for k in ("resource", "chunk_size", "patience", "tol", "folds", "max_units")},
    }
    result = AdaptivePlan(plan.out, schedule, settings, models, base)
    _PLANS[key] = result
    return result


def final_outputs(study) -> list[str]:
    """Targets of an adaptive study (``Study.final_outputs`` delegates here)."""
    return setup(study).final_outputs()


# --------------------------------------------------------------------------------------------
# One evaluation


def row_order(train: np.ndarray, y: np.ndarray, seed, stratify: bool) -> np.ndarray:
    """A seeded order of the training rows whose every prefix is (nearly) stratified.

    The first ``m`` rows are the subsample of size ``m`` (so subsamples are nested), and
    ``partial_fit`` blocks are consecutive slices of it.
    """
    train = np.asarray(train)
    rng = np.random.default_rng(seed)
    shuffled = train[rng.permutation(len(train))]
    if not stratify:
        return shuffled
    labels = y[shuffled]
    keys = np.empty(len(shuffled))
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        keys[idx] = (np.arange(len(idx)) + 0.5) / len(idx)
    return shuffled[np.argsort(keys, kind="stable")]


def chunk_size(spec: dict, n_train: int) -> int:
    """Training rows per unit (see the schema's ``chunk_size``)."""
    if spec.get("chunk_size"):
        return int(spec["chunk_size"])
    if spec["resource"] == "partial_fit":
        return n_train
    return max(1, math.ceil(n_train / spec["max_units"]))


def block(order: np.ndarray, call: int, size: int) -> np.ndarray:
    """Rows of partial_fit call ``call`` (0-based): the next block, cycling through ``order``."""
    n_blocks = math.ceil(len(order) / size)
    k = call % n_blocks
    return order[k * size : (k + 1) * size]


def _partial_fit_kwargs(estimator, y) -> dict:
    import inspect

    try:
        accepts = "classes" in inspect.signature(estimator.partial_fit).parameters
    except (TypeError, ValueError):
        accepts = False
    return {"classes": np.unique(y)} if accepts else {}


def plateau(history: list[dict], patience: int, tol: float) -> bool:
    """dask-ml's rule: stop if no score in the last ``patience`` units beats the window's first
    score by more than ``tol``."""
    if not history:
        return False
    current = history[-1]["units"]
    if current < patience:
        return False
    window = [h["score"] for h in history if current - h["units"] <= patience]
    if len(window) < 2 or any(s is None for s in window):
        return False
    return max(window[1:]) - window[0] <= tol


def _read(path) -> dict:
    return json.loads(Path(path).read_text())


def _atomic_pickle(path, obj) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _copy_atomic(src, dst) -> None:
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _slot_fields(spec: dict, model: dict) -> dict:
    return {
        "model_id": model["model_id"],
        "config_key": model["config_key"],
        "params": model["params"],
        "bracket": spec["bracket"],
        "rung": spec["rung"],
        "slot": spec["slot"],
        "final_rung": spec["final_rung"],
    }


def run_eval(spec: dict, output: str, state_output: str, promotion: str | None = None) -> dict:
    """Train one model of one slot up to ``spec["units"]`` units, score it, write its record.

    Parameters
    ----------
    spec : dict
        :meth:`AdaptivePlan.eval_spec` of the slot.
    output, state_output : str
        The slot's result JSON and model-state pickle (``None`` for n_samples).
    promotion : str, optional
        The previous rung's promotion file (rungs > 0): slot ``j`` takes its ``j``-th survivor.

    Returns
    -------
    dict
        The record written to ``output``.
    """
    start = datetime.now(UTC)
    prev, prev_state = None, None
    if spec["rung"] == 0:
        model = spec["model"]
    else:
        entry = _read(promotion)["survivors"][spec["slot"]]
        model = {k: entry[k] for k in ("model_id", "config_key", "params")}
        prev = _read(entry["result"])
        prev_state = entry["state"]
    cache = Path(spec["cache_dir"]) / f"{model['config_key']}_{spec['units']}"
    cached_json, cached_state = cache.with_suffix(".json"), cache.with_suffix(".pkl")

    if prev is not None and (prev["status"] != "ok" or prev["stopped"]):
        # Failed or stopped on a plateau: it keeps its place and score but trains no further.
        record = dict(prev, **_slot_fields(spec, model), units_trained=0, points=[], carried=True)
        _copy_atomic(prev_state, state_output)
    elif cached_json.exists() and cached_state.exists():
        record = dict(_read(cached_json), **_slot_fields(spec, model), reused=True)
        _copy_atomic(cached_state, state_output)
    else:
        record, state = _train(spec, model, prev, prev_state)
        record.update(_slot_fields(spec, model))
        _atomic_pickle(state_output, state)
        # Content-addressed copy first (state before JSON: a JSON there means both are whole).
        if not cached_json.exists():
            _copy_atomic(state_output, cached_state)
            write_json_atomic(cached_json, record)
    ident = {k: record[k] for k in ("model_id", "config_key", "bracket", "rung")}
    record["points"] = [dict(p, **ident) for p in record["points"]]
    record.update(start=start.isoformat(), end=datetime.now(UTC).isoformat())
    write_json_atomic(output, record)
    return record


def _train(spec: dict, model: dict, prev: dict | None, prev_state: str | None):
    """Fit (or continue fitting) one configuration on every fold; return (record, state)."""
    import traceback
    import warnings

    from sklearn.base import clone
    from sklearn.metrics import get_scorer

    from snaketune.base.data import load_prepared
    from snaketune.base.estimator import build_estimator
    from snaketune.base.splits import load_splits
    from snaketune.evaluation.trial import error_value, search_parameters, versions

    data = load_prepared(spec["data_dir"])
    X, y = data["X"], data["y"]
    splits = load_splits(spec["splits"])
    if spec.get("folds"):
        splits = splits[: spec["folds"]]
    scorers = {m: get_scorer(m) for m in spec["scoring"]}
    refit = spec["refit"]
    target = spec["units"]
    partial = spec["resource"] == "partial_fit"
    done = prev["units"] if prev else 0
    history = list(prev["history"]) if prev else []
    cum_fit = list(prev["cum_fit_time"]) if prev else [0.0] * len(splits)
    orders = [row_order(tr, y, [spec["seed"], k], spec["classifier"]) for k, (tr, _) in enumerate(splits)]
    sizes = [chunk_size(spec, len(tr)) for tr, _ in splits]
    fit_time = [0.0] * len(splits)
    score_time = [0.0] * len(splits)
    points, status, error, stopped = [], "ok", None, False
    test_scores = {m: [None] * len(splits) for m in scorers}
    n_rows = None
    caught: list = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if partial:
                if prev_state:
                    with open(prev_state, "rb") as fh:
                        estimators = pickle.load(fh)
                else:
                    base = build_estimator(spec["estimator"], spec["allowed_modules"], spec["seed"])
                    params = search_parameters(model["params"])
                    estimators = [clone(base).set_params(**params) for _ in splits]
                kwargs = _partial_fit_kwargs(estimators[0], y)
                patience = spec.get("patience")
                while done < target and not stopped:
                    step = target - done if not patience else min(patience, target - done)
                    for k, est in enumerate(estimators):
                        t0 = time.perf_counter()
                        for call in range(done, done + step):
                            rows = np.sort(block(orders[k], call, sizes[k]))
                            est.partial_fit(X[rows], y[rows], **kwargs)
                        fit_time[k] += time.perf_counter() - t0
                    done += step
                    scores = _score(estimators, X, y, splits, scorers, score_time)
                    test_scores = scores
                    mean = {m: float(np.mean(v)) for m, v in scores.items()}
                    history.append({"units": done, "score": mean[refit]})
                    points.append(_point(done, mean, sum(cum_fit) + sum(fit_time)))
                    if patience and plateau(history, patience, spec["tol"]):
                        stopped = True
                n_rows = [min(len(o), done * s) for o, s in zip(orders, sizes, strict=False)]
                state = estimators
            else:
                base = build_estimator(spec["estimator"], spec["allowed_modules"], spec["seed"])
                params = search_parameters(model["params"])
                estimators = []
                n_rows = []
                for k, order in enumerate(orders):
                    rows = np.sort(order[: min(len(order), target * sizes[k])])
                    n_rows.append(int(len(rows)))
                    t0 = time.perf_counter()
                    estimators.append(clone(base).set_params(**params).fit(X[rows], y[rows]))
                    fit_time[k] += time.perf_counter() - t0
                test_scores = _score(estimators, X, y, splits, scorers, score_time)
                mean = {m: float(np.mean(v)) for m, v in test_scores.items()}
                done = target
                history.append({"units": done, "score": mean[refit]})
                points.append(_point(done, mean, sum(fit_time)))
                cum_fit = [0.0] * len(splits)  # each rung refits from scratch
                state = None  # nothing to continue from
    except Exception as exc:  # noqa: BLE001 - a failing fit is a result, not a crash
        if spec.get("error_score") == "raise":
            raise
        status, error = "error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
        fill = error_value(spec.get("error_score"))
        test_scores = {m: [fill] * len(splits) for m in scorers}
        state = None
        done = target
    cum_fit = [a + b for a, b in zip(cum_fit, fit_time, strict=False)]
    means = {m: _nanmean(v) for m, v in test_scores.items()}
    warned = []
    for w in caught:
        item = {"category": w.category.__name__, "message": str(w.message)[:300]}
        if item not in warned:
            warned.append(item)
    record = {
        "format": EVAL_FORMAT,
        "status": status,
        "error": error,
        "resource": spec["resource"],
        "units": int(done),
        "units_trained": int(done - (prev["units"] if prev and partial else 0)),
        "stopped": stopped,
        "n_rows": n_rows,
        "chunk_size": sizes,
        "test_scores": test_scores,
        "mean_test": means,
        "fit_time": fit_time,
        "cum_fit_time": cum_fit,
        "score_time": score_time,
        "history": history,
        "points": points,
        "warnings": warned[:10],
        "versions": versions(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "data_fingerprint": data["meta"]["fingerprint"],
        "carried": False,
        "reused": False,
    }
    return record, state


def _nanmean(values) -> float | None:
    vals = [np.nan if v is None else float(v) for v in values]
    if all(math.isnan(v) for v in vals):
        return None
    return float(np.mean(vals))


def _score(estimators, X, y, splits, scorers, score_time) -> dict:
    scores = {m: [] for m in scorers}
    for k, (est, (_, test)) in enumerate(zip(estimators, splits, strict=False)):
        t0 = time.perf_counter()
        for m, scorer in scorers.items():
            scores[m].append(float(scorer(est, X[test], y[test])))
        score_time[k] += time.perf_counter() - t0
    return scores


def _point(units: int, mean: dict, fit_time: float) -> dict:
    return {
        "units": int(units),
        "time": time.time(),
        "fit_time": fit_time,
        **{f"mean_test_{m}": v for m, v in mean.items()},
    }


# --------------------------------------------------------------------------------------------
# Promotion


def rank_key(record: dict, refit: str):
    """Sort key of the documented promotion rule (see :data:`TIE_RULE`)."""
    score = record["mean_test"].get(refit) if record.get("status") == "ok" else None
    if score is None or (isinstance(score, float) and math.isnan(score)):
        score = -math.inf
    return (-score, record["config_key"], record["model_id"])


def promote(result_paths: list[str], keep: int, refit: str, output: str) -> dict:
    """Rank a rung's results and write the ``keep`` survivors, best first.

    Slot ``j`` of the next rung trains ``survivors[j]``.
    """
    records = [(p, _read(p)) for p in result_paths]
    ranked = sorted(records, key=lambda pr: rank_key(pr[1], refit))
    survivors = [
        {
            "model_id": r["model_id"],
            "config_key": r["config_key"],
            "params": r["params"],
            "score": r["mean_test"].get(refit),
            "units": r["units"],
            "stopped": r["stopped"],
            "result": p,
            "state": str(Path(p).with_suffix(".pkl")),
        }
        for p, r in ranked[:keep]
    ]
    doc = {
        "rule": TIE_RULE,
        "refit": refit,
        "keep": keep,
        "survivors": survivors,
        "ranking": [
            {"model_id": r["model_id"], "config_key": r["config_key"], "score": r["mean_test"].get(refit)}
            for _, r in ranked
        ],
    }
    write_json_atomic(output, doc)
    return doc


def refit_best(*, data_dir, best_path, spec: dict, model_path, summary_path) -> dict:
    """Train the best configuration on all training rows the way the search trained it.

    partial_fit: the same number of units (calls), cycling through all training rows in blocks
    of ``chunk_size``; n_samples: one ``fit`` on every training row. Loading a pickle runs code:
    only load models you produced yourself.
    """
    from sklearn.base import clone
    from sklearn.metrics import get_scorer

    from snaketune.base.data import load_prepared
    from snaketune.base.estimator import build_estimator
    from snaketune.evaluation.trial import search_parameters, versions

    data = load_prepared(data_dir, mmap=False)
    X, y = data["X"], data["y"]
    best = _read(best_path)
    model = clone(build_estimator(spec["estimator"], spec["allowed_modules"], spec["seed"]))
    model.set_params(**search_parameters(best["params"]))
    t0 = time.perf_counter()
    if spec["resource"] == "partial_fit":
        order = row_order(np.arange(len(y)), y, [spec["seed"], 2**31 - 1], spec["classifier"])
        size = chunk_size(spec, len(y))
        kwargs = _partial_fit_kwargs(model, y)
        for call in range(best["n_resources"]):
            rows = np.sort(block(order, call, size))
            model.partial_fit(X[rows], y[rows], **kwargs)
    else:
        model.fit(X, y)
    fit_time = time.perf_counter() - t0
    _atomic_pickle(model_path, model)
    test_scores = {}
    if len(data["y_test"]):
        test_scores = {m: float(get_scorer(m)(model, data["X_test"], data["y_test"])) for m in spec["scoring"]}
    summary = {
        "params": best["params"],
        "resource": spec["resource"],
        "n_resources": best["n_resources"],
        "fit_time": fit_time,
        "n_train": int(len(y)),
        "n_test": int(len(data["y_test"])),
        "test_scores": test_scores,
        "data_fingerprint": data["meta"]["fingerprint"],
        "model_format": f"pickle (protocol {pickle.HIGHEST_PROTOCOL}); loading it runs code",
        "versions": versions(),
    }
    write_json_atomic(summary_path, summary)
    return summary
