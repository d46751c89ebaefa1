"""Adaptive searches end to end beyond Hyperband on partial_fit: successive halving with
``resource: n_samples``, and Hyperband with ``patience``.

The expected side is scikit-learn and numpy only: the test samples the configurations with
``ParameterSampler``, holds out and splits with its own ``train_test_split``/``StratifiedKFold``,
writes out the documented training-row order itself (docs/hyperband.md: a seeded permutation of
the fold's training rows, stratified so every prefix holds every class in proportion), refits
every recorded evaluation on the documented rows and compares the fold scores at 1e-12. For
patience it replays the ``partial_fit`` calls, scores after every step and applies the documented
plateau rule to decide where training stops.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn import datasets
from sklearn import model_selection as ms

from tests.conftest import jobs_run

pytestmark = pytest.mark.slow

ATOL = 1e-12


def _order(train, y, seed, fold):
    """The documented training-row order: a permutation seeded with ``[seed, fold]``, then
    stable-sorted by each row's relative position within its class."""
    rng = np.random.default_rng([seed, fold])
    shuffled = np.asarray(train)[rng.permutation(len(train))]
    keys = np.empty(len(shuffled))
    for c in np.unique(y[shuffled]):
        idx = np.flatnonzero(y[shuffled] == c)
        keys[idx] = (np.arange(len(idx)) + 0.5) / len(idx)
    return shuffled[np.argsort(keys, kind="stable")]


def _records(study) -> list[dict]:
    return [json.loads(p.read_text()) for p in study.trial_files()]


# --- successive halving, n_samples ------------------------------------------------------------

HALVING_PARAMS = {"max_depth": [1, 2, 3, None], "min_samples_leaf": [1, 3, 8], "criterion": ["gini", "entropy"]}
HALVING = {
    "study": "halving",
    "seed": 3,
    "data": {"loader": "wine", "test_size": 0.2, "seed": 5},
    "estimator": {"class": "sklearn.tree.DecisionTreeClassifier"},
    "search": {
        "successive_halving": {
            # 4 models on 1 unit (20 rows), the best 2 on 2 units (40 rows), the best on 4 (80 rows).
            "n_candidates": 4,
            "factor": 2,
            "min_resources": 1,
            "resource": "n_samples",
            "chunk_size": 20,
            "seed": 11,
            "params": HALVING_PARAMS,
        }
    },
    "cv": {"kind": "stratified", "n_splits": 3, "shuffle": True, "seed": 1},
    "scoring": ["accuracy", "f1_macro"],
}


def test_successive_halving_on_n_samples(make_study):
    import pandas as pd
    from sklearn.metrics import get_scorer
    from sklearn.tree import DecisionTreeClassifier

    study = make_study(HALVING)
    run = study.snakemake(f"results/{HALVING['study']}/leaderboard.csv")
    assert jobs_run(run, "promote") == 2

    X, y = datasets.load_wine(return_X_y=True)
    X, _, y, _ = ms.train_test_split(X, y, test_size=0.2, random_state=5, stratify=y)
    folds = list(ms.StratifiedKFold(3, shuffle=True, random_state=1).split(X, y))
    sampled = list(ms.ParameterSampler(HALVING_PARAMS, 4, random_state=11))

    records = _records(study)
    assert len(records) == (4 + 2 + 1) * 3
    rung0 = {r["model_id"]: r["params"] for r in records if r["rung"] == 0}
    assert [rung0[f"b0-{j}"] for j in range(4)] == [json.loads(json.dumps(p)) for p in sampled]

    for record in records:
        assert record["status"] == "ok" and record["resource"] == "n_samples"
        units = {0: 1, 1: 2, 2: 4}[record["rung"]]
        assert record["budget"] == units
        train, test = folds[record["fold"]]
        rows = np.sort(_order(train, y, 3, record["fold"])[: units * 20])
        assert record["n_rows"] == len(rows) == units * 20 < len(train)
        model = DecisionTreeClassifier(random_state=3, **record["params"]).fit(X[rows], y[rows])
        for metric in HALVING["scoring"]:
            expected = get_scorer(metric)(model, X[test], y[test])
            assert abs(record["test_scores"][metric] - expected) <= ATOL, (record["trial_id"], metric)

    # Each rung keeps the best ceil(n / 2) of the previous one by mean accuracy.
    def mean(model_id, rung):
        scores = [r["test_scores"]["accuracy"] for r in records if r["model_id"] == model_id and r["rung"] == rung]
        assert len(scores) == 3
        return sum(scores) / 3

    for rung, keep in ((0, 2), (1, 1)):
        here = {r["model_id"] for r in records if r["rung"] == rung}
        kept = {r["model_id"] for r in records if r["rung"] == rung + 1}
        assert len(kept) == keep and kept <= here
        assert min(mean(m, rung) for m in kept) >= max(mean(m, rung) for m in here - kept)

    board = pd.read_csv(study.out / "leaderboard.csv")
    assert board["iter"].tolist() == [0, 0, 0, 0, 1, 1, 2]
    assert board["n_resources"].tolist() == [1, 1, 1, 1, 2, 2, 4]
    for _, row in board.iterrows():
        for k in range(3):
            (record,) = [
                r for r in records if r["model_id"] == row["model_id"] and r["rung"] == row["iter"] and r["fold"] == k
            ]
            assert row[f"split{k}_test_f1_macro"] == record["test_scores"]["f1_macro"]


# --- Hyperband with patience ------------------------------------------------------------------

SGD_PARAMS = {
    "alpha": {"loguniform": [1e-5, 1e-1]},
    "loss": ["hinge", "log_loss", "modified_huber"],
    "penalty": ["l2", "l1"],
}
PATIENCE, TOL, CHUNK, SEED = 2, 0.01, 15, 2
PATIENT = {
    "study": "patient",
    "seed": SEED,
    "data": {"loader": "iris"},
    "estimator": {"class": "sklearn.linear_model.SGDClassifier"},
    "search": {
        "hyperband": {
            # Rungs of 1, 3 and 9 units; scored every 2 units at most.
            "max_iter": 9,
            "aggressiveness": 3,
            "resource": "partial_fit",
            "chunk_size": CHUNK,
            "patience": PATIENCE,
            "tol": TOL,
            "folds": 2,
            "seed": 4,
            "params": SGD_PARAMS,
        }
    },
    "cv": {"kind": "stratified", "n_splits": 3, "shuffle": True, "seed": 0},
    "scoring": "accuracy",
}


def plateau(history: list[tuple[int, float]]) -> bool:
    """The documented rule: stop when no score of the last ``PATIENCE`` units beats the first
    score of that window by more than ``TOL`` (a window needs two scores)."""
    current = history[-1][0]
    if current < PATIENCE:
        return False
    window = [score for units, score in history if current - units <= PATIENCE]
    return len(window) >= 2 and all(score - window[0] <= TOL for score in window[1:])


def test_hyperband_patience_stops_on_the_documented_plateau(make_study):
    import pandas as pd
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import accuracy_score

    study = make_study(PATIENT)
    study.snakemake(f"results/{PATIENT['study']}/leaderboard.csv")
    X, y = datasets.load_iris(return_X_y=True)
    folds = list(ms.StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    classes = np.unique(y)
    records = _records(study)
    by_slot = {(r["model_id"], r["rung"], r["fold"]): r for r in records}
    assert {r["fold"] for r in records} == {0, 1}

    counts = {"stopped early": 0, "stopped at budget": 0, "trained to budget": 0, "carried": 0}
    for record in records:
        assert record["status"] == "ok"
        fold, rung = record["fold"], record["rung"]
        previous = by_slot.get((record["model_id"], rung - 1, fold)) if rung else None
        budget = (9 // 3 ** record["bracket"]) * 3**rung  # bracket b starts at 9 // 3**b units
        if previous is not None and previous["stopped"]:
            # A model stopped on its plateau keeps its place and score, trained no further.
            assert record["carried"] and record["stopped"] and record["units_trained"] == 0
            assert record["history"] == previous["history"]
            assert record["test_scores"] == previous["test_scores"]
            counts["carried"] += 1
            continue

        # Replay: the same partial_fit calls on the documented blocks of rows, scored after each
        # step of at most PATIENCE units, stopping on a plateau.
        train, test = folds[fold]
        order = _order(train, y, SEED, fold)
        n_blocks = math.ceil(len(order) / CHUNK)
        model = SGDClassifier(random_state=SEED, **record["params"])
        history = [(h["units"], h["score"]) for h in previous["history"]] if previous else []
        done = previous["budget"] if previous else 0
        for call in range(done):  # the previous rung's calls (its saved model, rebuilt)
            k = call % n_blocks
            rows = np.sort(order[k * CHUNK : (k + 1) * CHUNK])
            model.partial_fit(X[rows], y[rows], classes=classes)
        start = done
        stopped = False
        while done < budget and not stopped:
            step = min(PATIENCE, budget - done)
            for call in range(done, done + step):
                k = call % n_blocks
                rows = np.sort(order[k * CHUNK : (k + 1) * CHUNK])
                model.partial_fit(X[rows], y[rows], classes=classes)
            done += step
            history.append((done, accuracy_score(y[test], model.predict(X[test]))))
            stopped = plateau(history)
        recorded = [(h["units"], h["score"]) for h in record["history"]]
        assert [u for u, _ in recorded] == [u for u, _ in history], record["trial_id"]
        np.testing.assert_allclose([s for _, s in recorded], [s for _, s in history], rtol=0, atol=ATOL)
        assert record["stopped"] == stopped, record["trial_id"]
        assert record["budget"] == done and record["units_trained"] == done - start
        assert abs(record["test_scores"]["accuracy"] - history[-1][1]) <= ATOL
        if stopped:
            counts["stopped early" if done < budget else "stopped at budget"] += 1
        else:
            counts["trained to budget"] += 1
    print(counts)
    # The run exercised the rule both ways, and a stopped model went on as a carried one.
    assert counts["stopped early"] > 0 and counts["trained to budget"] > 0, counts
    assert counts["carried"] > 0, counts

    board = pd.read_csv(study.out / "leaderboard.csv")
    for _, row in board.iterrows():
        folds_of = [by_slot[(row["model_id"], row["iter"], k)] for k in (0, 1)]
        assert bool(row["stopped_early"]) == all(r["stopped"] for r in folds_of)
    assert board["stopped_early"].any()
