"""BOHB (snaketune/strategies/bohb.py) through real Snakemake: proposals from Optuna's TPE on the
results so far, reproducible across core counts, resumable after a kill mid-bracket."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.configs import mlp_circles
from tests.conftest import REPO, SNAKEMAKE, Study, jobs_run

PARAMS = {
    "hidden_layer_sizes": [[24], [12, 12], [6, 6, 6, 6]],
    "alpha": {"loguniform": [1e-6, 1e-3]},
    "learning_rate_init": {"loguniform": [1e-3, 3e-1]},
    "momentum": {"uniform": [0.5, 0.99]},
}
# max_iter 9, eta 3: brackets 2 (9 models at 1 unit), 1 (5 at 3), 0 (3 at 9); 4 parameters, so
# TPE needs 5 scored models at a budget: bracket 1 is modelled on units 1, bracket 0 on units 3.
BOHB = mlp_circles(
    "bohb-tiny", {"bohb": {"max_iter": 9, "aggressiveness": 3, "chunk_size": 50, "folds": 1, "params": PARAMS}}
)
TIMING = ("fit_time", "score_time", "completed_at", "completion_order")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One run of the study with 2 cores, shared by the tests (a run costs ~15 s)."""
    study = Study(tmp_path_factory.mktemp("bohb-reference"), BOHB)
    study.snakemake()
    return study


def proposals(study) -> dict[int, dict]:
    return {b: json.loads((study.out / f"bohb/b{b}/proposals.json").read_text()) for b in (2, 1, 0)}


def stable(frame):
    return frame[[c for c in frame.columns if not any(t in c for t in TIMING)]]


def hand_driven_tpe(study, bracket: int, doc: dict) -> list[dict]:
    """Optuna's TPESampler(multivariate=True) told, by hand, every earlier bracket's models at the
    budget the proposal says, then asked for the bracket's model-based configurations."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import create_trial

    choices = PARAMS["hidden_layer_sizes"]
    dists = {
        "alpha": FloatDistribution(1e-6, 1e-3, log=True),
        "hidden_layer_sizes": CategoricalDistribution([0, 1, 2]),
        "learning_rate_init": FloatDistribution(1e-3, 3e-1, log=True),
        "momentum": FloatDistribution(0.5, 0.99),
    }
    sampler = optuna.samplers.TPESampler(multivariate=True, seed=bracket, n_startup_trials=0)
    tpe = optuna.create_study(direction="maximize", sampler=sampler)
    earlier = [b for b in (2, 1, 0) if b > bracket]
    for path in sorted(study.out.glob("trials/b*-r*-s*_0.json"), key=lambda p: _slot_order(p.stem)):
        record = json.loads(path.read_text())
        if record["bracket"] in earlier and record["budget"] == doc["budget"] and record["status"] == "ok":
            params = dict(record["params"], hidden_layer_sizes=choices.index(record["params"]["hidden_layer_sizes"]))
            tpe.add_trial(create_trial(params=params, distributions=dists, value=record["test_scores"]["accuracy"]))
    asked = [tpe.ask(dists).params for _ in range(doc["random"].count(False))]
    return [dict(p, hidden_layer_sizes=choices[p["hidden_layer_sizes"]]) for p in asked]


def _slot_order(stem: str):
    b, r, s = (int(part[1:]) for part in stem.split("_")[0].split("-"))
    return (-b, r, s)  # the schedule's order: bracket 2 first


@pytest.mark.slow
def test_bohb_models_reruns_nothing_and_is_the_same_on_one_core(reference, make_study):
    study = reference
    docs = proposals(study)
    assert docs[2]["budget"] is None and all(docs[2]["random"])  # nothing to model yet
    assert (docs[1]["budget"], docs[1]["n_observations"]) == (1, 9)
    assert (docs[0]["budget"], docs[0]["n_observations"]) == (3, 8)
    for b in (1, 0):
        doc = docs[b]
        modelled = [s["params"] for s, rand in zip(doc["survivors"], doc["random"], strict=True) if not rand]
        assert modelled, "the seed gave no model-based proposal: the test would prove nothing"
        expected = hand_driven_tpe(study, b, doc)
        assert json.dumps(modelled, sort_keys=True) == json.dumps(expected, sort_keys=True)
    # Rung 0 of every bracket trained the proposed configurations, in order.
    for b, doc in docs.items():
        for j, survivor in enumerate(doc["survivors"]):
            record = json.loads((study.out / f"trials/b{b}-r0-s{j}_0.json").read_text())
            assert (record["params"], record["model_id"]) == (survivor["params"], survivor["model_id"])
    board = study.leaderboard()
    assert len(board) == 22 and board["final_rung"].sum() == 1 + 1 + 3
    assert json.loads((study.out / "best.json").read_text())["plan"]["kind"] == "bohb"

    again = study.snakemake("-n")
    assert "Nothing to be done" in again.stdout + again.stderr

    other = make_study(BOHB, "b")
    other.snakemake("--cores", "1")
    assert proposals(other) == docs
    assert stable(other.leaderboard()).equals(stable(board))

    # An edited BOHB setting reruns every bracket's proposals (Snakemake's params trigger: the
    # first bracket's propose step has no input that could change).
    import copy

    other.config = copy.deepcopy(BOHB)
    other.config["search"]["bohb"]["seed"] = 1
    other.write()
    assert jobs_run(other.snakemake("-n"), "propose") == 3


@pytest.mark.slow
def test_bohb_killed_mid_bracket_resumes_with_the_same_proposals(reference, make_study):
    study = make_study(BOHB, "killed")
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(study.workdir), "--cores", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    target = study.out / "trials/b1-r0-s1_0.json"  # bracket 1 has begun: its proposals exist
    deadline = time.time() + 120
    while not target.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert target.exists() and not (study.out / "bohb/b0/proposals.json").exists(), "not killed mid-bracket"
    kept = (study.out / "bohb/b1/proposals.json").read_text()
    study.snakemake("--unlock")
    study.snakemake("--rerun-incomplete")
    assert (study.out / "bohb/b1/proposals.json").read_text() == kept
    assert proposals(study) == proposals(reference)
    assert stable(study.leaderboard()).equals(stable(reference.leaderboard()))
    assert jobs_run(study.snakemake("-n"), "slot") == 0
