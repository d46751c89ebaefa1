"""Model-based search (search.optuna): Optuna's samplers in rounds through real Snakemake.

Every expected configuration and score is computed in the test: Optuna driven by hand (ask/tell,
or its own ``study.optimize``) with an objective that scores each configuration with
scikit-learn's ``cross_val_score`` on the study's own prepared data and folds.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys

import numpy as np
import optuna
import psutil
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from sklearn.model_selection import cross_val_score
from sklearn.svm import SVC

from snaketune.base.splits import load_splits
from snaketune.config.load import ConfigError, load_config
from snaketune.search.optuna_space import distributions
from tests import killing
from tests.conftest import REPO, SNAKEMAKE, jobs_run, without_timings

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {
    "C": {"loguniform": [1.0e-3, 1.0e3]},
    "gamma": {"loguniform": [1.0e-4, 1.0e1]},
    "tol": [1.0e-4, 1.0e-2],
}


def svc_config(study="tpe", **search):
    spec = {"sampler": "tpe", "n_trials": 10, "batch_size": 4, "seed": 0, "params": SPACE}
    spec.update(search)
    return {
        "study": study,
        "data": {"loader": "iris"},
        "estimator": {"class": "sklearn.svm.SVC"},
        "search": {"optuna": spec},
        "cv": {"kind": "stratified", "n_splits": 3},
        "scoring": "accuracy",
        "trials_per_job": 1,  # one job a trial (tests that batch say so)
    }


class ByHand:
    """The study's prepared data and folds, and an objective scored by scikit-learn."""

    def __init__(self, study):
        (data_dir,) = (study.out / "data").iterdir()
        self.X, self.y = np.load(data_dir / "X.npy"), np.load(data_dir / "y.npy")
        (splits,) = (study.out / "splits").glob("*.npz")
        self.splits = load_splits(splits)

    def fold_scores(self, params: dict) -> np.ndarray:
        key = json.dumps(params, sort_keys=True)  # each configuration fitted once (digits: seconds)
        scores = self.__dict__.setdefault("scores", {})
        if key not in scores:
            scores[key] = cross_val_score(SVC(**params), self.X, self.y, cv=self.splits, scoring="accuracy")
        return scores[key]

    def score(self, params: dict) -> float:
        return float(self.fold_scores(params).mean())

    def objective(self, trial) -> float:
        # Suggested in sorted name order, as snaketune asks them.
        params = {
            "C": trial.suggest_float("C", 1e-3, 1e3, log=True),
            "gamma": trial.suggest_float("gamma", 1e-4, 1e1, log=True),
            "tol": trial.suggest_categorical("tol", [1e-4, 1e-2]),
        }
        return self.score(params)

    def batches(self, sampler, n_trials: int, batch_size: int) -> list[dict]:
        """Optuna's "batch optimization" by hand: ask batch_size, tell them, repeat."""
        study = optuna.create_study(sampler=sampler, direction="maximize")
        dists = {
            "C": FloatDistribution(1e-3, 1e3, log=True),
            "gamma": FloatDistribution(1e-4, 1e1, log=True),
            "tol": CategoricalDistribution([1e-4, 1e-2]),
        }
        asked = []
        while len(asked) < n_trials:
            trials = [study.ask(dists) for _ in range(batch_size)]
            for trial in trials:
                study.tell(trial, self.score(trial.params))
            asked += [t.params for t in trials]
        return asked[:n_trials]


def leaderboard_params(study) -> list[dict]:
    frame = study.leaderboard().sort_values("number")
    return [json.loads(p) for p in frame["params"]]


def asked_files(study) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((study.out / "optuna").glob("round-*.json"))}


# ----------------------------------------------------------------------------------------------
# Fast: the space and config errors


def test_space_maps_to_optuna_distributions():
    dists = distributions(
        {"b": {"randint": [1, 10]}, "a": {"uniform": [0, 2]}, "c": {"range": [1, 4]}, "d": SPACE["C"]}
    )
    assert list(dists) == ["a", "b", "c", "d"]  # asked in sorted order
    assert dists["a"] == FloatDistribution(0.0, 2.0)
    assert dists["b"] == IntDistribution(1, 9)  # scipy's randint(1, 10) never draws 10
    assert dists["c"] == CategoricalDistribution([1, 2, 3])
    assert dists["d"] == FloatDistribution(1e-3, 1e3, log=True)


def test_config_errors_name_the_key():
    bad = svc_config(sampler="gp", params={"hidden_layer_sizes": [[4], [8, 8]], "C": [1, 1]})
    bad["estimator"] = {"class": "sklearn.neural_network.MLPClassifier"}
    with pytest.raises(ConfigError) as info:
        load_config(bad, REPO, check_data=False)
    problems = info.value.problems
    assert any(p.startswith("search.optuna.params.hidden_layer_sizes: Optuna's categorical choices") for p in problems)
    assert any(p.startswith("search.optuna.params.C: the list has repeated values") for p in problems)
    # torch is not a dependency: gp says which package it needs, in one line, before anything runs.
    assert (
        "search.optuna.sampler: sampler gp needs the package 'torch', which is not installed (pip install torch)"
        in problems
    )
    several = svc_config(params=[SPACE, SPACE])
    with pytest.raises(ConfigError) as info:
        load_config(several, REPO, check_data=False)
    assert info.value.problems == [
        "search.optuna.params: give one space (a mapping); Optuna's samplers take one search space"
    ]


def test_example_plans_ten_rounds_of_six():
    proc = subprocess.run(
        [sys.executable, "-m", "snaketune", "plan", "--json", str(REPO / "examples" / "svc-digits-tpe.yaml")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "rounds": 10, "batch_size": 6, "configurations": 60, "folds": 5, "trials": 300,
    }  # fmt: skip


def test_rounds_are_dealt_fold_by_fold_into_jobs():
    """``auto`` on a local run makes each round one job (its trials on forks); without a core
    count (a cluster) a job holds n_folds trials; the last, partial round too; every trial once,
    dealt fold by fold (consecutive trials are different configurations)."""
    from snaketune.evaluation.rounds import OptunaPlan

    plan = OptunaPlan(out="o", settings={"batch_size": 6, "n_trials": 15}, defining={}, n_folds=5, base={})
    for one_job, sizes in ((True, [[30], [30], [15]]), (False, [[5] * 6, [5] * 6, [5] * 3])):
        groups = plan.trial_groups("auto", one_job_a_round=one_job)
        by_round = [[trials for r2, trials in groups if r2 == r] for r in range(plan.n_rounds)]
        assert [[len(t) for t in jobs] for jobs in by_round] == sizes
        for r, jobs in enumerate(by_round):
            dealt = [trial for job in jobs for trial in job]
            assert sorted(dealt) == sorted((k, f) for k in range(plan.round_size(r)) for f in range(5))
            for job in jobs:  # consecutive trials of a job are different configurations
                assert all(a[0] != b[0] for a, b in itertools.pairwise(job))
    assert plan.trial_groups(4)[0] == (0, [(0, 0), (1, 0), (2, 0), (3, 0)])
    assert plan.trial_groups(4, one_job_a_round=True) == plan.trial_groups(4)  # an explicit size wins


def test_ask_tells_failed_configurations_as_failed(tmp_path):
    """Round 1's ask tells round 0's results: the mean over folds, or FAIL when every fold failed
    (error_score nan: also when one fold failed); the asked trials of round 1 stay RUNNING."""
    import pickle

    from snaketune.base.jsonutil import write_json_atomic
    from snaketune.evaluation.records import TrialRecord, TrialStatus
    from snaketune.evaluation.rounds import ask_round

    def ask(r, previous=None):
        outputs = [str(tmp_path / f"round-{r}.json"), str(tmp_path / f"round-{r}.pkl")]
        ask_round(
            round_index=r, batch_size=3, sampler="tpe", seed=0, space=SPACE, refit="accuracy",
            defining={}, previous=previous, outputs=outputs,
        )  # fmt: skip
        return outputs

    first = ask(0)
    outcomes = [[0.5, 0.75], [None, None], [0.9, None]]  # None: the fold failed
    trials = []
    for k, scores in enumerate(outcomes):
        paths = []
        for fold, score in enumerate(scores):
            path = tmp_path / f"o0-{k}_{fold}.json"
            status = TrialStatus.OK if score is not None else TrialStatus.ERROR
            record = TrialRecord(f"o0-{k}_{fold}", "key", fold, {}, status, {"accuracy": score}, 0.0, 0.0)
            write_json_atomic(path, record.to_dict())
            paths.append(str(path))
        trials.append(paths)
    second = ask(1, {"ask": first[0], "state": first[1], "trials": trials})
    saved = pickle.loads((tmp_path / "round-1.pkl").read_bytes())
    study = optuna.load_study(study_name="snaketune", storage=saved["storage"])
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "FAIL", "FAIL", "RUNNING", "RUNNING", "RUNNING"]
    assert study.trials[0].value == np.mean([0.5, 0.75])
    asked = json.loads((tmp_path / "round-1.json").read_text())["asked"]
    assert [a["number"] for a in asked] == [3, 4, 5] and second[0].endswith("round-1.json")
    assert [a["params"] for a in asked] == [t.params for t in study.trials[3:]]


@pytest.mark.parametrize("sampler", ["cmaes", "qmc", "random"])
def test_ask_rounds_equal_optimize_for_every_sampler(tmp_path, sampler):
    """The ask step round by round (batch_size 1, fold scores by scikit-learn written as trial
    files) proposes what Optuna's own study.optimize does with the same sampler and seed: the
    carried storage keeps CMA-ES's optimizer and QMC's sample counter (system attributes)."""
    from sklearn.datasets import load_iris
    from sklearn.model_selection import StratifiedKFold, cross_validate

    from snaketune.base.jsonutil import write_json_atomic
    from snaketune.evaluation.records import TrialRecord, TrialStatus
    from snaketune.evaluation.rounds import ask_round
    from snaketune.search.optuna_space import make_sampler

    X, y = load_iris(return_X_y=True)
    by_hand = ByHand.__new__(ByHand)
    by_hand.X, by_hand.y, by_hand.splits = X, y, list(StratifiedKFold(3).split(X, y))
    n = 8
    own = optuna.create_study(sampler=make_sampler(sampler, 1), direction="maximize")
    own.optimize(by_hand.objective, n_trials=n)
    previous, asked = None, []
    for r in range(n):
        outputs = [str(tmp_path / f"round-{r}.json"), str(tmp_path / f"round-{r}.pkl")]
        (entry,) = ask_round(
            round_index=r, batch_size=1, sampler=sampler, seed=1, space=SPACE, refit="accuracy",
            defining={}, previous=previous, outputs=outputs,
        )  # fmt: skip
        asked.append(entry["params"])
        scores = cross_validate(SVC(**entry["params"]), X, y, cv=by_hand.splits, scoring="accuracy")["test_score"]
        paths = []
        for fold, score in enumerate(scores):
            path = tmp_path / f"o{r}-0_{fold}.json"
            record = TrialRecord(path.stem, "key", fold, {}, TrialStatus.OK, {"accuracy": float(score)}, 0.0, 0.0)
            write_json_atomic(path, record.to_dict())
            paths.append(str(path))
        previous = {"ask": outputs[0], "state": outputs[1], "trials": [paths]}
    assert asked == [t.params for t in own.trials]


# ----------------------------------------------------------------------------------------------
# End to end


@pytest.mark.slow
def test_tpe_rounds_rerun_nothing_and_repeat_exactly(make_study):
    """Rounds of 4 equal Optuna's batch optimisation by hand; a second run does nothing; raising
    n_trials only adds; a fresh folder on one core (batched jobs) gives the same configurations,
    scores and files; the journal opens with optuna.load_study."""
    study = make_study(svc_config(n_trials=10), "a")
    proc = study.snakemake()
    assert "  30 trials (10 configurations x 3 folds): 0 done before, 30 to run on 2 cores" in proc.stderr.splitlines()
    by_hand = ByHand(study)
    expected = by_hand.batches(optuna.samplers.TPESampler(seed=0), 14, 4)
    frame = study.leaderboard().sort_values("number")
    assert list(frame["number"]) == list(range(10)) and list(frame["round"]) == [0] * 4 + [1] * 4 + [2] * 2
    assert leaderboard_params(study) == expected[:10]
    hand_scores = [by_hand.score(p) for p in expected[:10]]
    np.testing.assert_allclose(frame["mean_test_accuracy"], hand_scores, rtol=0, atol=1e-12)
    best = study.best()
    assert best["mean_test_score"] == max(hand_scores) and best["round"] == int(np.argmax(hand_scores)) // 4
    assert (study.out / "plots" / "optimization_history.png").stat().st_size > 0
    assert (study.out / "report" / "study.html").exists() and (study.out / "model.pkl").exists()

    # The journal is an Optuna study: same configurations, values = mean CV scores.
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(study.out / "optuna" / "journal.log"))
    )
    loaded = optuna.load_study(study_name="snaketune", storage=storage)
    assert [t.params for t in loaded.trials] == expected[:10]
    np.testing.assert_allclose([t.value for t in loaded.trials], hand_scores, rtol=0, atol=1e-12)
    assert loaded.best_value == max(hand_scores)

    # A second run does nothing.
    assert "Nothing to be done" in study.snakemake().stdout + study.snakemake().stderr

    # Raising n_trials adds rounds and reruns nothing: round 2's last 2 configurations and round
    # 3 (one ask, 2 configurations); no finished trial or ask file is touched.
    before = {p.name: p.stat().st_mtime_ns for p in study.trial_files()}
    asks_before = {p.name: p.stat().st_mtime_ns for p in (study.out / "optuna").glob("round-*")}
    study.config["search"]["optuna"]["n_trials"] = 14
    study.write()
    run = study.snakemake()
    assert jobs_run(run, "ask") == 1 and jobs_run(run, "optuna_trial") == 4 * 3
    assert {p.name: p.stat().st_mtime_ns for p in study.trial_files() if p.name in before} == before
    assert {n: t for n, t in asks_before.items()} == {
        p.name: p.stat().st_mtime_ns for p in (study.out / "optuna").glob("round-*") if p.name in asks_before
    }
    assert leaderboard_params(study) == expected

    # A fresh folder, one core, each round's trials batched (dealt fold by fold): the same study.
    fresh_config = svc_config(n_trials=14)
    fresh_config["trials_per_job"] = "auto"
    fresh = make_study(fresh_config, "b")
    fresh.snakemake("--cores", "1")
    assert asked_files(fresh) == asked_files(study)
    assert without_timings(fresh.leaderboard()).equals(without_timings(study.leaderboard()))
    assert sorted(p.name for p in fresh.trial_files()) == sorted(p.name for p in study.trial_files())
    # A round is one job whatever the cores (only its threads follow them, which Snakemake does
    # not check): a run on two cores finds nothing to do. (A dry run has one core, as this run.)
    again = fresh.snakemake("--cores", "2")
    assert "Nothing to be done" in again.stdout + again.stderr, again.stderr[-3000:]

    # Asking again (round 2's ask file deleted) asks the same configurations; their trials are
    # restored from the content-addressed cache, not fitted again. (Here each round is one job
    # that asks, then runs its trials: trials_per_job auto on a local run.)
    (fresh.out / "optuna" / "round-2.json").unlink()
    run = fresh.snakemake("--cores", "1")
    assert jobs_run(run, "ask") == 0 and jobs_run(run, "optuna_trial") == 0
    assert jobs_run(run, "optuna_trials_r2_0_0") == 1 and jobs_run(run, "optuna_trials_r3_0_0") == 1
    assert "round 2: asked trials [8, 9, 10, 11]" in (fresh.out / "logs" / "trials" / "o2-0_0-batch.log").read_text()
    assert asked_files(fresh) == asked_files(study)
    restored = [json.loads(p.read_text()) for p in fresh.trial_files()]
    assert {r["trial_id"] for r in restored if r["reused"]} == {
        f"o{r}-{k}_{f}" for r, n in ((2, 4), (3, 2)) for k in range(n) for f in range(3)
    }
    assert without_timings(fresh.leaderboard()).equals(without_timings(study.leaderboard()))

    # status reads the same trial files.
    status = subprocess.run(
        [sys.executable, "-m", "snaketune", "status", "--json"],
        cwd=fresh.workdir,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["done"] == 14 * 3


@pytest.mark.slow
def test_batch_size_one_is_optunas_own_optimize(make_study):
    """batch_size 1: the configurations Optuna's own study.optimize proposes with the same sampler
    and seed, for an objective that computes the same mean CV score (TPE's model takes over from
    its 10 random start-up trials at trial 10)."""
    config = svc_config("sequential", n_trials=12, batch_size=1, seed=3)
    config["trials_per_job"] = "auto"
    study = make_study(config)
    study.snakemake()
    by_hand = ByHand(study)
    own = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=3), direction="maximize")
    own.optimize(by_hand.objective, n_trials=12)
    assert leaderboard_params(study) == [t.params for t in own.trials]
    frame = study.leaderboard().sort_values("number")
    np.testing.assert_allclose(frame["mean_test_accuracy"], [t.value for t in own.trials], rtol=0, atol=1e-12)


def _target(root, phase: str, round_file):
    """A running job of ``phase``: a trial once round 1 is asked, or an ask job."""
    if phase == "trials" and not round_file.exists():
        return None
    found = [j for j in killing.jobs(root) if j.phase == phase]
    return found[0] if found else None


@pytest.mark.slow
def test_kill_mid_round_resumes_with_the_same_configurations(make_study):
    """kill -9 Snakemake while a round-1 trial runs, then a job client while round 2's ask runs;
    resume as the README says; the configurations are Optuna's by hand and no finished trial
    file changed."""
    study = make_study(svc_config("killed", n_trials=6, batch_size=2))
    base = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(study.workdir), "--cores", "2"]
    rng = random.Random(20261126)
    tracker = killing.TrialTracker(study.out / "trials")
    plan = [killing.Kill("trials", "snakemake"), killing.Kill("ask", "client")]
    resume = []
    round_file = study.out / "optuna" / "round-1.json"
    for kill in plan:
        proc = subprocess.Popen(base + resume, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        root = psutil.Process(proc.pid)

        def ready(root=root, phase=kill.phase, proc=proc):
            return _target(root, phase, round_file) is not None or proc.poll() is not None

        assert killing.wait_for(ready, timeout=120, step=0.005)
        job = _target(root, kill.phase, round_file)
        assert job is not None, "the run ended before the phase to strike"
        killing.strike(proc, kill, job, rng)
        assert kill.hit, kill.detail
        if kill.victim == "snakemake":
            subprocess.run(base + ["--unlock"], capture_output=True, check=True)
            resume = ["--rerun-incomplete"]
        else:
            assert proc.wait(timeout=120) != 0  # the killed job failed; Snakemake stopped
            resume = []
        tracker.observe()
    final = subprocess.run(base + resume, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr[-3000:]
    tracker.observe()
    assert not tracker.changed(), tracker.changed()
    expected = ByHand(study).batches(optuna.samplers.TPESampler(seed=0), 6, 2)
    assert leaderboard_params(study) == expected


def _forks_of_round_job(root: psutil.Process) -> list[psutil.Process]:
    """The forked children that run a trials job's trials: children of the warm worker's handler
    of the job, or of the job's own Python when it runs without the worker."""
    parents = {h.pid for h in killing.handlers(root)} | {j.proc.pid for j in killing.jobs(root) if j.kind == "calls"}
    forks = []
    for p in root.children(recursive=True):
        try:
            if p.ppid() in parents and p.status() != psutil.STATUS_ZOMBIE:
                forks.append(p)
        except psutil.Error:
            continue
    return forks


def _overlap(a: dict, b: dict) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]  # ISO times in UTC compare as text


@pytest.mark.slow
def test_round_job_runs_its_trials_on_forks_and_a_killed_fork_fails_it(make_study):
    """``trials_per_job: auto`` on 2 cores: each round is one job whose trials ran on two forked
    children at once (different pids, overlapping times, one job log). kill -9 of one child
    (frozen while the other takes every remaining trial) fails the job; the rerun restores every
    trial finished before the kill from the trial cache, and every configuration and fold score
    is Optuna's batch optimisation and scikit-learn's by hand. (Up to the trials: the steps
    after them are the same for any search.)"""
    config = svc_config("forks", n_trials=4, batch_size=2)
    config.update(data={"loader": "digits"}, trials_per_job="auto")  # fits of 10-500 ms
    study = make_study(config)
    until = ["--until", "optuna_trials_r1_0_0"]
    base = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(study.workdir), "--cores", "2", *until]
    proc = subprocess.Popen(base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = psutil.Process(proc.pid)
    round_file = study.out / "optuna" / "round-1.json"
    forks: list[psutil.Process] = []

    def ready() -> bool:
        nonlocal forks
        forks = _forks_of_round_job(root) if round_file.exists() else []
        return len(forks) == 2 or proc.poll() is not None

    try:
        assert killing.wait_for(ready, timeout=120, step=0.005) and len(forks) == 2, "round 1 ended unseen"
        victim, other = forks
        assert killing.freeze(victim), "the fork ended before the strike"
        other.wait(timeout=60)  # it takes every trial left, then the queue is empty
        finished = {p.stem: json.loads(p.read_text()) for p in (study.out / "trials").glob("o1-*.json")}
        assert killing.kill_and_confirm(victim)
        assert proc.wait(timeout=120) != 0  # the job failed; Snakemake stopped
    finally:
        if proc.poll() is None:
            proc.kill()
    log = (study.out / "logs" / "trials" / "o1-0_0-batch.log").read_text()
    assert f"trial process {victim.pid}: 0 trial(s), signal 9; its log is lost" in log, log
    assert f"trial process {other.pid}: {len(finished)} trial(s), exit status 0" in log, log
    assert 5 <= len(finished) <= 6  # all but (at most) the one the victim held

    study.snakemake(*until)
    records = {p.stem: json.loads(p.read_text()) for p in study.trial_files()}
    assert len(records) == 12
    for trial_id, before in finished.items():  # restored, not fitted again
        assert records[trial_id]["reused"] and records[trial_id]["test_scores"] == before["test_scores"]
    round0 = [r for t, r in records.items() if t.startswith("o0-")]
    assert len({r["pid"] for r in round0}) == 2
    assert any(_overlap(a, b) for a, b in itertools.combinations(round0, 2) if a["pid"] != b["pid"])
    log0 = (study.out / "logs" / "trials" / "o0-0_0-batch.log").read_text()
    assert all(f"trial {t}: ok" in log0 for t in sorted(t for t in records if t.startswith("o0-")))

    by_hand = ByHand(study)
    expected = by_hand.batches(optuna.samplers.TPESampler(seed=0), 4, 2)
    asked = [e["params"] for r in range(2) for e in json.loads(asked_files(study)[f"round-{r}.json"])["asked"]]
    assert asked == expected
    for t, record in records.items():
        r, k, fold = (int(x) for x in t[1:].replace("_", "-").split("-"))
        assert record["test_scores"]["accuracy"] == by_hand.fold_scores(expected[r * 2 + k])[fold]
