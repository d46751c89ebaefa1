"""Estimators for tests: slow, failing or noisy on purpose. Configs reach them through
``allowed_modules: [tests.estimators]`` (the workflow puts the repo on PYTHONPATH)."""

from __future__ import annotations

import sys
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
    """Raises in fit when ``fail`` is true (calls ``sys.exit`` when it is "exit"); warns
    (ConvergenceWarning) otherwise."""

    def __init__(self, fail=False, n_neighbors=5):
        self.fail = fail
        self.n_neighbors = n_neighbors

    def fit(self, X, y):
        if self.fail == "exit":  # user code that ends the process it runs in
            sys.exit(3)
        if self.fail:
            raise FloatingPointError("diverged on purpose")
        warnings.warn("did not converge (on purpose)", ConvergenceWarning, stacklevel=2)
        self.model_ = KNeighborsClassifier(n_neighbors=self.n_neighbors).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(X)


class SleepySGD(ClassifierMixin, BaseEstimator):
    """SGDClassifier trained by partial_fit that sleeps ``delay`` seconds per call (a hung
    adaptive-search evaluation)."""

    def __init__(self, delay=0.0, alpha=1e-4, random_state=None, n_jobs=None):
        self.delay = delay
        self.alpha = alpha
        self.random_state = random_state
        self.n_jobs = n_jobs

    def partial_fit(self, X, y, classes=None):
        from sklearn.linear_model import SGDClassifier

        time.sleep(self.delay)
        if not hasattr(self, "model_"):
            self.model_ = SGDClassifier(alpha=self.alpha, random_state=self.random_state, n_jobs=self.n_jobs)
        self.model_.partial_fit(X, y, classes=classes)
        self.classes_ = self.model_.classes_
        return self

    def fit(self, X, y):
        import numpy as np

        return self.partial_fit(X, y, classes=np.unique(y))

    def predict(self, X):
        return self.model_.predict(X)
