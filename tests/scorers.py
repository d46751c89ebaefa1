"""Scorers the scoring tests pickle in two Pythons: a module pytest does not rewrite (its assertion
rewriting compiles test modules differently from a plain import, so their functions pickle differently)."""

from __future__ import annotations

import numpy as np


def plain_scorer():
    """A plain ``def scorer(estimator, X, y)``, as a notebook defines one (pickled by value)."""

    def margin(estimator, X, y):
        predicted = estimator.predict(X)
        return float(np.mean(predicted == y)) - 0.5 * float(np.mean(predicted == 0))

    return margin
