"""Estimators for tests: slow, failing or noisy on purpose. Configs reach them through
``allowed_modules: [tests.estimators]`` (the workflow puts the repo on PYTHONPATH)."""

from __future__ import annotations

import time
import warnings

from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import KNeighborsClassifier


class SleepyClassifier(ClassifierMixin, BaseEstimator):
    """kNN that sleeps ``delay`` seconds in fit (a slow or hung trial)."""

    def __init__(self, delay=0.0, n_neighbors=5):
        self.delay = delay
        self.n_neighbors = n_neighbors

    def fit(self, X, y):
        time.sleep(self.delay)
        self.model_ = KNeighborsClassifier(n_neighbors=self.n_neighbors).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(X)


class FlakyClassifier(ClassifierMixin, BaseEstimator):
    """Raises in fit when ``fail`` is true; warns (ConvergenceWarning) otherwise."""

    def __init__(self, fail=False, n_neighbors=5):
        self.fail = fail
        self.n_neighbors = n_neighbors

    def fit(self, X, y):
        if self.fail:
            raise FloatingPointError("diverged on purpose")
        warnings.warn("did not converge (on purpose)", ConvergenceWarning, stacklevel=2)
        self.model_ = KNeighborsClassifier(n_neighbors=self.n_neighbors).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(X)
