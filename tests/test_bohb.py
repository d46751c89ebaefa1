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


def hand_driven_tpe(study, bracket: int, doc: dict, dists=None, metric: str = "accuracy", seed: int = 0) -> list[dict]:
    """Optuna's TPESampler(multivariate=True) told, by hand, every earlier bracket's models at the
    budget the proposal says, then asked for the bracket's model-based configurations."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import create_trial

    choices = PARAMS["hidden_layer_sizes"] if dists is None else None
    dists = dists or {
        "alpha": FloatDistribution(1e-6, 1e-3, log=True),
        "hidden_layer_sizes": CategoricalDistribution([0, 1, 2]),
        "learning_rate_init": FloatDistribution(1e-3, 3e-1, log=True),
        "momentum": FloatDistribution(0.5, 0.99),
    }
    sampler = optuna.samplers.TPESampler(multivariate=True, seed=seed + bracket, n_startup_trials=0)
    tpe = optuna.create_study(direction="maximize", sampler=sampler)
    earlier = [b for b in (2, 1, 0) if b > bracket]
    for path in sorted(study.out.glob("trials/b*-r*-s*_0.json"), key=lambda p: _slot_order(p.stem)):
        record = json.loads(path.read_text())
        if record["bracket"] in earlier and record["budget"] == doc["budget"] and record["status"] == "ok":
            params = dict(record["params"])
            if choices:
                params["hidden_layer_sizes"] = choices.index(params["hidden_layer_sizes"])
            tpe.add_trial(create_trial(params=params, distributions=dists, value=record["test_scores"][metric]))
    asked = [tpe.ask(dists).params for _ in range(doc["random"].count(False))]
    return [dict(p, hidden_layer_sizes=choices[p["hidden_layer_sizes"]]) if choices else p for p in asked]


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


# Your own script as the trial, trained {budget} units: a score known in closed form, so every
# trial's number is checked by hand (the script is the oracle), and BOHB's proposals against TPE.
SCRIPT = """
import argparse, json
ap = argparse.ArgumentParser()
for name in ("--x", "--y"):
    ap.add_argument(name, type=float, required=True)
ap.add_argument("--budget", type=int, required=True)
ap.add_argument("--out", required=True)
a = ap.parse_args()
json.dump({"score": score(a.x, a.y, a.budget)}, open(a.out, "w"))
"""


def score(x: float, y: float, budget: int) -> float:
    """Better near (0.3, 0.7); more training (budget) brings every configuration closer to its limit."""
    return -((x - 0.3) ** 2 + (y - 0.7) ** 2) - 1.0 / budget


@pytest.mark.slow
def test_bohb_in_a_command_study(make_study):
    import inspect

    from optuna.distributions import FloatDistribution

    study = make_study(
        {
            "study": "cmd-bohb",
            "command": {
                "run": "python score.py --x {x} --y {y} --budget {budget} --out {output}",
                "inputs": ["score.py"],
                "metrics": ["score"],
            },
            "folds": 1,
            "search": {
                "bohb": {
                    "max_iter": 9,
                    "aggressiveness": 3,
                    "seed": 3,
                    "params": {"x": {"uniform": [0.0, 1.0]}, "y": {"uniform": [0.0, 1.0]}},
                }
            },
            "trials_per_job": "auto",
        }
    )
    (study.workdir / "score.py").write_text(inspect.getsource(score) + SCRIPT)
    study.snakemake()
    records = [json.loads(p.read_text()) for p in study.trial_files()]
    assert len(records) == 22 and all(r["status"] == "ok" for r in records)
    for r in records:  # the script's number, computed here
        assert r["test_scores"]["score"] == score(r["params"]["x"], r["params"]["y"], r["budget"])
    # Two parameters: TPE needs 3 scored models at a budget, and the largest such budget is used.
    # Bracket 1 is modelled on bracket 2's 3 models at 3 units (not its 9 at 1 unit); bracket 0 on
    # the 3 + 5 at 3 units (the 2 at 9 units are too few).
    docs = proposals(study)
    assert docs[2]["budget"] is None and all(docs[2]["random"])
    assert (docs[1]["budget"], docs[1]["n_observations"]) == (3, 3)
    assert (docs[0]["budget"], docs[0]["n_observations"]) == (3, 8)
    dists = {"x": FloatDistribution(0.0, 1.0), "y": FloatDistribution(0.0, 1.0)}
    for b in (1, 0):
        modelled = [s["params"] for s, rand in zip(docs[b]["survivors"], docs[b]["random"], strict=True) if not rand]
        assert modelled, "the seed gave no model-based proposal: the test would prove nothing"
        expected = hand_driven_tpe(study, b, docs[b], dists, "score", seed=3)
        assert json.dumps(modelled, sort_keys=True) == json.dumps(expected, sort_keys=True)
    # The best is the final rungs' highest score (max_iter units), found by hand.
    final = [r for r in records if r["budget"] == 9]
    best = max(final, key=lambda r: r["test_scores"]["score"])
    assert study.best()["params"] == best["params"]
    assert study.leaderboard()["final_rung"].sum() == len(final) == 1 + 1 + 3
    again = study.snakemake("-n")
    assert "Nothing to be done" in again.stdout + again.stderr
