"""Training on a budget: the part of a trial that adaptive searches (Hyperband, successive
halving) add to a plain fit.

A budget is a number of *units* of a *resource*:

* ``partial_fit``: ``units`` calls of ``partial_fit``, each on the next block of ``chunk_size``
  training rows (cycling through a seeded order of the fold's training rows). A promoted model
  continues from its saved state, so its calls accumulate across rungs.
* ``n_samples``: one ``fit`` on the first ``units * chunk_size`` rows of that order (nested
  subsamples: every rung's rows contain the previous rung's).

With ``patience`` the model is scored every ``patience`` units and stops on a plateau (dask-ml's
rule); each fold's model decides on its own scores.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from snaketune.base.data import take_rows


@dataclass(frozen=True)
class Budget:
    """How far one trial trains. JSON-able through :meth:`to_dict`/:meth:`from_dict`."""

    resource: str  # "partial_fit" | "n_samples"
    units: int
    max_units: int
    chunk_size: int | None = None
    patience: int | None = None
    tol: float = 1e-3
    stratify: bool = True
    metric: str | None = None  # the score history follows this metric (the study's refit)

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict | None) -> Budget | None:
        return None if data is None else cls(**data)


@dataclass
class BudgetedFit:
    """What :func:`train` leaves behind: the model, its score history and how it got there."""

    estimator: object
    units: int
    units_trained: int
    n_rows: int
    stopped: bool
    history: list[dict] = field(default_factory=list)
    fit_time: float = 0.0
    score_time: float = 0.0


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


def chunk_size(budget: Budget, n_train: int) -> int:
    """Training rows per unit (see the schema's ``chunk_size``)."""
    if budget.chunk_size:
        return int(budget.chunk_size)
    if budget.resource == "partial_fit":
        return n_train
    return max(1, math.ceil(n_train / budget.max_units))


def block(order: np.ndarray, call: int, size: int) -> np.ndarray:
    """Rows of partial_fit call ``call`` (0-based): the next block, cycling through ``order``."""
    n_blocks = math.ceil(len(order) / size)
    k = call % n_blocks
    return order[k * size : (k + 1) * size]


def partial_fit_kwargs(estimator, y) -> dict:
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


def train(model, X, y, *, train_rows, budget: Budget, seed, score, done: int = 0, history=()) -> BudgetedFit:
    """Train ``model`` (fresh, or a saved ``partial_fit`` state that has ``done`` units) up to
    ``budget.units``; ``score(model) -> float`` is the refit metric on the fold's test rows."""
    order = row_order(train_rows, y, seed, budget.stratify)
    size = chunk_size(budget, len(order))
    history = list(history)
    fit_time = score_time = 0.0
    stopped = False
    if budget.resource == "partial_fit":
        kwargs = partial_fit_kwargs(model, y)
        start = done
        while done < budget.units and not stopped:
            step = budget.units - done if not budget.patience else min(budget.patience, budget.units - done)
            t0 = time.perf_counter()
            for call in range(done, done + step):
                rows = np.sort(block(order, call, size))
                model.partial_fit(take_rows(X, rows), y[rows], **kwargs)
            fit_time += time.perf_counter() - t0
            done += step
            t0 = time.perf_counter()
            history.append({"units": done, "score": score(model)})
            score_time += time.perf_counter() - t0
            stopped = bool(budget.patience) and plateau(history, budget.patience, budget.tol)
        trained = done - start
        n_rows = min(len(order), done * size)
    else:
        rows = np.sort(order[: min(len(order), budget.units * size)])
        t0 = time.perf_counter()
        model.fit(take_rows(X, rows), y[rows])
        fit_time = time.perf_counter() - t0
        done = trained = budget.units
        n_rows = len(rows)
        t0 = time.perf_counter()
        history.append({"units": done, "score": score(model)})
        score_time = time.perf_counter() - t0
    return BudgetedFit(model, int(done), int(trained), int(n_rows), stopped, history, fit_time, score_time)


@dataclass
class BudgetedTraining:
    """A budgeted trial's training, handed to :func:`~snaketune.evaluation.trial.fit_and_score`
    as its ``fit`` (which knows nothing of budgets): ``budget.units`` units, from ``state`` (a
    saved model that has ``done`` units and this score ``history``) when given, else from the
    fresh model ``fit_and_score`` configured. Keeps the trained model in :attr:`model`, to save."""

    budget: Budget
    seed: object
    state: object = None
    done: int = 0
    history: Sequence[dict] = ()
    model: object = field(default=None, init=False, repr=False)

    def __call__(self, model, X, y, train_rows, score) -> tuple[object, dict]:
        fitted = train(
            self.state if self.state is not None else model,
            X,
            y,
            train_rows=train_rows,
            budget=self.budget,
            seed=self.seed,
            score=score,
            done=self.done,
            history=self.history,
        )
        self.model = fitted.estimator
        return fitted.estimator, {
            "budget": fitted.units,
            "resource": self.budget.resource,
            "units_trained": fitted.units_trained,
            "n_rows": fitted.n_rows,
            "stopped": fitted.stopped,
            "history": fitted.history,
        }
