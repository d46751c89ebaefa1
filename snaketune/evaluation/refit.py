"""Refit the best configuration on all training data; score it on the held-out test set."""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path

from snaketune.base.data import load_prepared
from snaketune.base.estimator import build_estimator
from snaketune.base.jsonutil import write_json_atomic
from snaketune.evaluation.trial import search_parameters, versions


def refit_best(*, data_dir, best_path, estimator, allowed_modules, seed, scoring, model_path, summary_path):
    """Fit the best configuration on all training rows and save it with pickle.

    Loading a pickle runs code: only load models you produced yourself.
    """
    from sklearn.metrics import get_scorer

    data = load_prepared(data_dir, mmap=False)
    best = json.loads(Path(best_path).read_text())
    model = build_estimator(estimator, allowed_modules, seed).set_params(**search_parameters(best["params"]))
    t0 = time.perf_counter()
    model.fit(data["X"], data["y"])
    fit_time = time.perf_counter() - t0
    tmp = Path(model_path).with_suffix(".pkl.tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(model_path)
    test_scores = {}
    if len(data["y_test"]):
        test_scores = {m: float(get_scorer(m)(model, data["X_test"], data["y_test"])) for m in scoring}
    write_json_atomic(
        summary_path,
        {
            "params": best["params"],
            "fit_time": fit_time,
            "n_train": int(len(data["y"])),
            "n_test": int(len(data["y_test"])),
            "test_scores": test_scores,
            "data_fingerprint": data["meta"]["fingerprint"],
            "model_format": f"pickle (protocol {pickle.HIGHEST_PROTOCOL}); loading it runs code",
            "versions": versions(),
        },
    )
