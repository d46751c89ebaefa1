"""End-to-end: adaptive searches through real Snakemake (--cores 2), on the shared trial core."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

from tests.configs import mlp_circles
from tests.conftest import REPO, jobs_run

pytestmark = pytest.mark.slow

TINY = mlp_circles(
    "hb-tiny",
    {
        "hyperband": {
            # s_max = 1: bracket 1 = 3 models at 1 unit, the best continues to 3; bracket 0 = 2 at 3.
            "max_iter": 3,
            "aggressiveness": 3,
            "chunk_size": 50,
            "folds": 1,
            "params": {
                "hidden_layer_sizes": [[24], [12, 12], [6, 6, 6, 6]],
                "alpha": {"loguniform": [1e-6, 1e-3]},
                "learning_rate_init": {"loguniform": [1e-3, 3e-1]},
                "momentum": {"uniform": [0.5, 0.99]},
            },
        }
    },
)


def test_tiny_hyperband_study(make_study):
    import pandas as pd

    study = make_study(TINY)
    dry = study.snakemake("-n")
    assert jobs_run(dry, "slot") == 3 + 1 + 2
    assert jobs_run(dry, "promote") == 1

    study.snakemake()
    out = study.out
    # The promoted model continued: 1 call in rung 0, 2 more in rung 1, state carried.
    promotion = json.loads((out / "hyperband/b1/r0/promotion.json").read_text())
    (survivor,) = promotion["survivors"]
    assert survivor["score"] == max(r["score"] for r in promotion["ranking"])
    final = json.loads((out / "trials/b1-r1-s0_0.json").read_text())
    assert final["model_id"] == survivor["model_id"] and final["status"] == "ok"
    assert [h["units"] for h in final["history"]] == [1, 3]
    assert final["budget"] == 3 and final["units_trained"] == 2
    with open(out / "trials/b1-r1-s0_0.pkl", "rb") as fh:
        model = pickle.load(fh)
    assert model.t_ == 3 * 50  # samples seen accumulate over 3 calls of 50 rows

    # Like HalvingRandomSearchCV.cv_results_: one row per model and rung, with iter/n_resources.
    board = pd.read_csv(out / "leaderboard.csv")
    assert len(board) == 3 + 1 + 2
    for column in ("params", "mean_test_accuracy", "std_test_accuracy", "rank_test_accuracy",
                   "split0_test_accuracy", "mean_fit_time", "iter", "n_resources", "bracket"):  # fmt: skip
        assert column in board
    finals = board[board["final_rung"]]
    assert len(finals) == 1 + 2 and (finals["n_resources"] == 3).all()
    assert sorted(board["iter"].tolist()) == [0, 0, 0, 0, 0, 1]
    history = pd.read_csv(out / "history.csv")
    assert len(history) == 6 and set(history["units"]) == {1, 3}
    best = study.best()
    assert best["plan"]["n_models"] == 5 and best["plan"]["units"] == 2 * 1 + 1 * 3 + 2 * 3
    assert best["used"]["units"] == best["plan"]["units"]
    assert best["mean_test_score"] == finals["mean_test_accuracy"].max()
    refit = json.loads((out / "refit.json").read_text())
    assert refit["n_resources"] == 3
    assert (out / "plots/score_vs_resource.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "report/study.html").exists()

    # Nothing changed: a rerun runs no job.
    again = study.snakemake()
    assert "Nothing to be done" in again.stdout + again.stderr


def test_slots_batched_per_rung_give_the_same_search(make_study):
    """trials_per_job: auto runs several slots of a rung per job: fewer jobs, the same results."""
    import copy

    from tests.conftest import without_timings

    # max_iter 27: bracket 3 starts 27 models, more than JOBS_PER_RUNG (16): 2 slots a job there.
    config = copy.deepcopy(TINY)
    config["search"]["hyperband"]["max_iter"] = 27
    one = make_study(config, "one")
    one.snakemake()
    batched = make_study(dict(config, trials_per_job="auto"), "batched")
    dry = batched.snakemake("-n")
    text = dry.stdout + dry.stderr
    assert "slots_b3_r0_s0 " in text and "slots_b3_r0_s2 " in text and "slots_b3_r0_s1 " not in text
    assert jobs_run(dry, "slot") == 0
    batched.snakemake()
    assert len(batched.trial_files()) == len(one.trial_files()) > 27
    drop = ["completed_at", "completion_order"]
    left, right = without_timings(batched.leaderboard()), without_timings(one.leaderboard())
    assert left.drop(columns=drop, errors="ignore").equals(right.drop(columns=drop, errors="ignore"))
    assert batched.best()["params"] == one.best()["params"]


# --- the trial core's guarantees reach adaptive searches ------------------------------------


HYPERBAND = {
    "study": "hb-core",
    "data": {"loader": "iris", "test_size": 0.3, "seed": 3},
    "allowed_modules": ["tests.estimators"],
    "estimator": {"class": "tests.estimators.SleepySGD"},
    "seed": 5,
    "search": {
        "hyperband": {
            # Bracket 1: both configurations at 1 unit, the better continues to 2 units;
            # bracket 0: both at 2 units from scratch (the fast one's is a cached evaluation).
            "max_iter": 2,
            "aggressiveness": 2,
            "resource": "partial_fit",
            "chunk_size": 20,
            "params": {"delay": [0.0, 60.0], "alpha": [0.001]},
        }
    },
    "cv": {"kind": "stratified", "n_splits": 3, "shuffle": True, "seed": 1},
    "scoring": ["accuracy", "balanced_accuracy"],
    "return_train_score": True,
    "trial_timeout": 3,
    "resources": {"threads": 2, "mem_mb": 700, "runtime": 7},
}


def _order(train, y, seed, fold):
    """The documented training-row order, written out here: a seeded permutation of the fold's
    training rows, then stable-sorted by each row's position within its class."""
    rng = np.random.default_rng([seed, fold])
    shuffled = np.asarray(train)[rng.permutation(len(train))]
    keys = np.empty(len(shuffled))
    for c in np.unique(y[shuffled]):
        idx = np.flatnonzero(y[shuffled] == c)
        keys[idx] = (np.arange(len(idx)) + 0.5) / len(idx)
    return shuffled[np.argsort(keys, kind="stable")]


def test_hyperband_on_the_trial_core(make_study):
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold, train_test_split

    study = make_study(HYPERBAND)
    dry = study.snakemake("-n", "-p")
    text = dry.stdout + dry.stderr
    # resources and threads of the study reach the slot jobs (what a cluster is asked for)
    assert "mem_mb=700" in text and "runtime=7" in text and "threads: 2" in text
    study.snakemake(timeout=300)
    out = study.out

    # trial_timeout applies to adaptive evaluations: the sleeping model is recorded, not waited for.
    records = [json.loads(p.read_text()) for p in sorted((out / "trials").glob("*.json"))]
    timed_out = [r for r in records if r["status"] == "timeout"]
    assert len(timed_out) == 6 and all(r["params"]["delay"] == 60.0 for r in timed_out)
    assert all(r["fit_time"] == 3 and "trial_timeout" in r["error"] for r in timed_out)

    board = pd.read_csv(out / "leaderboard.csv")
    assert board["iter"].tolist() == [0, 0, 1, 0, 0] and board["n_resources"].tolist() == [1, 1, 2, 2, 2]
    assert board.loc[board["params"].str.contains("60.0"), "n_timeout"].tolist() == [3, 3]
    finals = board[board["final_rung"] & ~board["params"].str.contains("60.0")]
    assert len(finals) == 2 and (finals["n_resources"] == 2).all()
    assert all(json.loads(p) == {"alpha": 0.001, "delay": 0.0} for p in finals["params"])

    # Independent oracle: the same data, held-out split, folds and partial_fit calls, by hand.
    X, y = load_iris(return_X_y=True)
    X, X_test, y, y_test = train_test_split(X, y, test_size=0.3, random_state=3, stratify=y)
    folds = StratifiedKFold(3, shuffle=True, random_state=1).split(X, y)
    classes = np.unique(y)
    for k, (train, test) in enumerate(folds):
        model = SGDClassifier(alpha=0.001, random_state=5)
        order = _order(train, y, 5, k)
        for call in range(2):  # rung 0 trains call 0; the promoted model continues with call 1
            rows = np.sort(order[call * 20 : (call + 1) * 20])
            model.partial_fit(X[rows], y[rows], classes=classes)
        pred = model.predict(X[test])
        train_pred = model.predict(X[train])
        for _, final in finals.iterrows():  # continued from rung 0, and trained from scratch
            assert abs(final[f"split{k}_test_accuracy"] - accuracy_score(y[test], pred)) <= 1e-12
            assert abs(final[f"split{k}_test_balanced_accuracy"] - balanced_accuracy_score(y[test], pred)) <= 1e-12
            assert abs(final[f"split{k}_train_accuracy"] - accuracy_score(y[train], train_pred)) <= 1e-12
        with open(out / f"trials/b1-r1-s0_{k}.pkl", "rb") as fh:
            state = pickle.load(fh)
        assert state.n_jobs == 2  # the job's threads reach the estimator's n_jobs
        np.testing.assert_array_equal(state.model_.coef_, model.coef_)

    # The refit model is scored on the held-out rows the test made itself.
    with open(out / "model.pkl", "rb") as fh:
        refit_model = pickle.load(fh)
    refit = json.loads((out / "refit.json").read_text())
    assert refit["n_resources"] == 2 and refit["n_test"] == len(y_test)
    assert refit["test_scores"]["accuracy"] == accuracy_score(y_test, refit_model.predict(X_test))

    # status counts adaptive trials like any others
    status = subprocess.run(
        [sys.executable, "-m", "snaketune", "status", "--config", "config.yaml", "--json"],
        cwd=study.workdir,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO)},
        check=True,
    )
    counts = json.loads(status.stdout)
    assert (counts["total"], counts["done"], counts["timeout"], counts["ok"]) == (15, 15, 6, 9)
    assert counts["complete_configs"] == 5 and counts["remaining"] == 0

    # ... and the report has its pages
    report = study.snakemake("--report", "report.html", "--cores", "1")
    assert report.returncode == 0 and (study.workdir / "report.html").stat().st_size > 10_000
