"""The study on a real single-node SLURM cluster, through Snakemake's SLURM executor plugin.

scripts/slurm-local.sh brings the cluster up once per test session (root or sudo; fixed ports, so
one cluster per machine) and tears it down at the end, whatever happened. Locally the test skips
when SLURM is not installed; in CI (SNAKETUNE_REQUIRE_SYSTEM=1) it fails instead.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, SNAKEMAKE, SYSTEM_DIRS, Study, find_system, require_system, without_timings

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SCRIPT = REPO / "scripts" / "slurm-local.sh"
PROFILE = REPO / "workflow" / "profiles" / "slurm"

# 6 configurations x 3 folds = 18 trials; trials_per_job 9 -> 2 batches, each one SLURM job. A
# random forest with a study seed, so seed handling shows: the cluster (no worker) must equal the
# local run (warm worker) exactly.
CONFIG = {
    "study": "rf-slurm",
    "data": {"loader": "iris"},
    "estimator": {"class": "sklearn.ensemble.RandomForestClassifier", "params": {"n_estimators": 5}},
    "search": {"grid": {"max_features": [1, 2, 3], "bootstrap": [True, False]}},
    "cv": {"kind": "stratified", "n_splits": 3, "shuffle": True, "seed": 0},
    "seed": 3,
    "scoring": ["accuracy", "f1_macro"],
    "refit": "accuracy",
    "resources": {"mem_mb": 300, "runtime": 2, "threads": 1},
    "trials_per_job": 9,
}


def _sh(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [str(SCRIPT), *args]
    if os.geteuid() != 0:
        cmd = [find_system("sudo") or "sudo", "-n", "-E", *cmd]
    # The script finds slurmctld, munged, ... in /usr/sbin even when the caller's PATH lacks it.
    env = dict(os.environ, PATH=os.pathsep.join([os.environ.get("PATH", ""), *SYSTEM_DIRS]))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="session")
def slurm_cluster():
    """A one-node SLURM cluster with accounting (slurmdbd), for the whole session."""
    for tool in ("slurmctld", "slurmd", "sbatch", "sacct", "scancel", "slurmdbd", "munged", "mariadbd"):
        require_system(tool)
    if os.geteuid() != 0:
        require_system("sudo")
    # A cluster the user already started (scripts/slurm-local.sh up) is used and left running.
    already_up = "slurmctld: running" in _sh("status", timeout=60).stdout
    try:
        if not already_up:
            proc = _sh("up")
            if proc.returncode != 0:
                pytest.fail(f"slurm-local.sh up failed:\n{proc.stdout}\n{proc.stderr}")
        yield
    finally:
        if not already_up:
            _sh("down", timeout=120)


def _slurm_snakemake(study: Study, *extra: str, timeout: int = 600, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [
        "timeout", "-k", "10", str(timeout),
        SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(study.workdir),
        "--profile", str(PROFILE),
        "--cores", "1",
        "--slurm-init-seconds-before-status-checks", "2",
        "--slurm-keep-successful-logs",
        "--latency-wait", "5",
        *extra,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake on SLURM failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
        )
    from tests.conftest import full_output  # the quiet terminal leaves the submissions to the log

    proc.stdout += full_output(proc)[len(proc.stdout + proc.stderr) :]
    return proc


def _submissions(proc: subprocess.CompletedProcess) -> list[str]:
    """Log folders of the sbatch submissions Snakemake made (rule_<name>, group_<name>)."""
    text = proc.stdout + proc.stderr
    return [
        line.split("slurm_logs/")[1].split("/")[0]
        for line in text.splitlines()
        if "has been submitted with SLURM jobid" in line
    ]


def _without_timings(frame):
    return without_timings(frame)


def _snapshot(paths) -> dict:
    return {p.name: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest()) for p in paths}


def _batches(study: Study) -> dict[str, list[str]]:
    """The study's batches (batch id -> trial ids), as the workflow forms them."""
    from snaketune.runtime.batching import make_batches

    ids = [p.stem for p in study.trial_files()]
    keys = list(dict.fromkeys(t.rsplit("_", 1)[0] for t in ids))
    return make_batches(keys, len(ids) // len(keys), CONFIG["trials_per_job"])


def _squeue(*args: str) -> list[list[str]]:
    out = subprocess.run(
        [find_system("squeue") or "squeue", "-h", *args], capture_output=True, text=True, timeout=30
    ).stdout
    return [line.split("|") for line in out.splitlines() if line.strip()]


def test_slurm_leaderboard_equals_local_and_survives_scancel(slurm_cluster, make_study):
    import pandas as pd

    started = time.monotonic()
    local = make_study(CONFIG, "local")
    local.snakemake()
    assert "(warm worker)" in next((local.out / "logs" / "batches").glob("*.log")).read_text()

    cluster = make_study(CONFIG, "slurm")
    proc = _slurm_snakemake(cluster)
    submissions = _submissions(proc)
    trial_jobs = [s for s in submissions if "trial" in s]
    n_trials = len(local.trial_files())
    assert n_trials == 18
    # Batching: 18 trials went out as one SLURM job a batch, not 18.
    batches = _batches(cluster)
    assert len(batches) >= 2 and sum(map(len, batches.values())) == n_trials
    assert len(trial_jobs) == len(batches), submissions
    assert len(cluster.trial_files()) == n_trials
    # Same trials (content-addressed names) and the same leaderboard but for timings.
    assert [p.name for p in cluster.trial_files()] == [p.name for p in local.trial_files()]
    # Strict: the same trials give the same bits (not assert_frame_equal's default rtol 1e-5).
    pd.testing.assert_frame_equal(
        _without_timings(cluster.leaderboard()), _without_timings(local.leaderboard()), check_exact=True
    )
    assert cluster.best() == local.best()
    # The trials really ran on SLURM: each batch log is in a batch job's log folder.
    assert list((cluster.workdir / ".snakemake" / "slurm_logs").glob("*trials*/**/*.log"))
    print(f"\nSLURM study: {len(submissions)} submissions, {len(trial_jobs)} for {n_trials} trials")

    # Kill a running trial job, then rerun: nothing finished is lost or redone.
    # The trials of one batch (one SLURM job).
    victim_batch, victim_ids = next(iter(batches.items()))
    victims = [p for p in cluster.trial_files() if p.stem in set(victim_ids)]
    keep = [p for p in cluster.trial_files() if p not in victims]
    for p in victims:
        p.unlink()
    # Without its leaderboard, a rerun must rebuild every missing trial.
    (cluster.out / "leaderboard.csv").unlink()
    before = _snapshot(keep)
    kill_log = cluster.workdir / "killed-run.log"
    cmd_proc = subprocess.Popen(
        [
            "timeout", "-k", "10", "600",
            SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(cluster.workdir),
            "--profile", str(PROFILE), "--cores", "1",
            "--slurm-init-seconds-before-status-checks", "2", "--latency-wait", "5", "--retries", "0",
            # Only the trials: the leaderboard and the rest are the rerun's job.
            # (a batched study's trials are tracked by their batch's manifest)
            f"results/{CONFIG['study']}/batches/{victim_batch}.json",
        ],
        stdout=kill_log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    killed = None
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and killed is None and cmd_proc.poll() is None:
            # The trial job, once it runs (its first trial has started).
            for jobid, state, comment in _squeue("-o", "%i|%T|%k"):
                if state == "RUNNING" and "trial" in comment:
                    time.sleep(2)
                    subprocess.run([find_system("scancel") or "scancel", jobid], check=True, timeout=30)
                    killed = jobid
                    break
            time.sleep(0.5)
        # Snakemake may report the cancelled job and stop, but plugin 2.8.0 polls at growing
        # intervals (2 s, then +10 s a poll) and may keep polling (it ignores SIGTERM). What this
        # test is about is the rerun, so after one poll interval the submit host is lost too.
        try:
            cmd_proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(cmd_proc.pid, 9)
            cmd_proc.wait(timeout=30)
    finally:
        if cmd_proc.poll() is None:
            os.killpg(cmd_proc.pid, 9)
    out = kill_log.read_text()
    assert killed, f"no running trial job to cancel:\n{out[-4000:]}"
    assert cmd_proc.returncode != 0, out[-4000:]
    assert not [job for job in _squeue("-o", "%i") if job[0] == killed]
    survived = [p for p in victims if p.exists()]
    after_kill = _snapshot(keep + survived)
    _slurm_snakemake(cluster, "--unlock")

    rerun = _slurm_snakemake(cluster)
    assert len(cluster.trial_files()) == n_trials
    # Trials finished before the kill (and those of the killed job that had finished) untouched.
    assert _snapshot(keep) == before
    assert _snapshot(keep + survived) == after_kill
    rerun_trials = [s for s in _submissions(rerun) if "trial" in s]
    assert len(rerun_trials) == 1, _submissions(rerun)
    # Strict: the same trials give the same bits (not assert_frame_equal's default rtol 1e-5).
    pd.testing.assert_frame_equal(
        _without_timings(cluster.leaderboard()), _without_timings(local.leaderboard()), check_exact=True
    )
    print(
        f"scancel {killed}: {len(survived)} of {len(victims)} trials of the killed job kept; "
        f"test took {time.monotonic() - started:.0f} s"
    )


def test_error_score_raise_stops_a_slurm_run(slurm_cluster, make_study):
    """error_score: raise on the cluster: the run fails naming configuration, fold and exception,
    and no leaderboard is written."""
    config = {
        "study": "raise-slurm",
        "data": {"loader": "iris"},
        "estimator": {"class": "tests.estimators.FlakyClassifier"},
        "allowed_modules": ["tests.estimators"],
        "search": {"grid": {"fail": [True], "n_neighbors": [3]}},
        "cv": {"n_splits": 2},
        "error_score": "raise",
        "resources": {"mem_mb": 300, "runtime": 2, "threads": 1},
    }
    study = make_study(config, "raise")
    proc = _slurm_snakemake(study, "--retries", "0", timeout=400, check=False)
    assert proc.returncode != 0, proc.stdout[-2000:]
    logs = "".join(p.read_text() for p in (study.out / "logs").rglob("*.log"))
    assert "failed (error_score: raise): configuration {'fail': True, 'n_neighbors': 3}, fold " in logs, logs[-2000:]
    assert "FloatingPointError: diverged on purpose" in logs
    assert not (study.out / "leaderboard.csv").exists()
    assert not list((study.out / "trials").glob("*.json"))  # a raised failure is not recorded


def _iris_study(name: str, estimator: dict, search: dict) -> dict:
    """A small iris study whose jobs fit the one-node cluster's limits."""
    return {
        "study": name,
        "data": {"loader": "iris"},
        "estimator": estimator,
        "search": search,
        "cv": {"kind": "stratified", "n_splits": 2},
        "scoring": "accuracy",
        "resources": {"mem_mb": 300, "runtime": 2, "threads": 1},
    }


def _local_and_cluster(make_study, config: dict, name: str):
    """The same study run locally and on the cluster: (local, cluster, the cluster's submissions)."""
    local = make_study(config, f"{name}-local")
    local.snakemake()
    cluster = make_study(config, f"{name}-cluster")
    return local, cluster, _submissions(_slurm_snakemake(cluster, timeout=500))


def test_optuna_rounds_on_slurm_equal_local(slurm_cluster, make_study):
    """A model-based (TPE) study of 2 rounds on the cluster: each round's trials are one SLURM
    job (packed within the round, never across the ask between rounds), the ask jobs run on the
    submit host; configurations and leaderboard equal a local run's."""
    import pandas as pd

    space = {"C": {"loguniform": [1.0e-3, 1.0e3]}, "gamma": {"loguniform": [1.0e-4, 1.0e1]}}
    search = {"optuna": {"sampler": "tpe", "n_trials": 2, "batch_size": 1, "seed": 0, "params": space}}
    config = _iris_study("tpe-slurm", {"class": "sklearn.svm.SVC"}, search)
    local, cluster, submitted = _local_and_cluster(make_study, config, "optuna")
    assert sum(s.startswith("group_trials") for s in submitted) == 2, submitted  # one per round
    assert not any("rule_ask" in s for s in submitted), submitted  # asking is a local rule

    def asked(study):
        return {p.name: p.read_bytes() for p in sorted((study.out / "optuna").glob("round-*.json"))}

    assert asked(cluster) == asked(local) and len(asked(local)) == 2
    pd.testing.assert_frame_equal(
        _without_timings(cluster.leaderboard()), _without_timings(local.leaderboard()), check_exact=True
    )


def test_bohb_on_slurm_equals_local(slurm_cluster, make_study):
    """A tiny BOHB study on the cluster: its propose steps run on the submit host, its slots as
    SLURM jobs; the proposals (the second bracket's from TPE) and leaderboard equal a local run's."""
    import json

    import pandas as pd

    # max_iter 3: bracket 1 = 3 models at 1 unit, the best to 3; bracket 0 = 2 models at 3,
    # proposed by TPE fitted on bracket 1's three models at 1 unit (1 parameter: 2 needed).
    search = {"bohb": {"max_iter": 3, "folds": 1, "params": {"alpha": {"loguniform": [1.0e-5, 1.0e-1]}}}}
    estimator = {"class": "sklearn.linear_model.SGDClassifier", "params": {"random_state": 0}}
    local, cluster, submitted = _local_and_cluster(make_study, _iris_study("bohb-slurm", estimator, search), "bohb")
    assert submitted and not any("rule_propose" in s for s in submitted), submitted  # a local rule

    def proposed(study):
        return {p.parent.name: p.read_bytes() for p in sorted((study.out / "bohb").glob("b*/proposals.json"))}

    assert proposed(cluster) == proposed(local) and len(proposed(local)) == 2
    assert json.loads(proposed(local)["b0"])["budget"] == 1  # the model was used
    pd.testing.assert_frame_equal(
        _without_timings(cluster.leaderboard()), _without_timings(local.leaderboard()), check_exact=True
    )


def test_snaketune_run_with_the_slurm_profile_from_a_user_folder(slurm_cluster, installed, tmp_path):
    """The installed package on the cluster: `snaketune run --profile slurm` in a folder of the
    user's (the shipped profile, by name) gives the trials and leaderboard of a local run."""
    import pandas as pd
    import yaml

    from tests.conftest import full_output

    folders = {}
    for name in ("local", "cluster"):
        folders[name] = tmp_path / name
        folders[name].mkdir()
        (folders[name] / "study.yaml").write_text(yaml.safe_dump(CONFIG))
    installed.run("snaketune", "run", "study.yaml", "--cores", "2", cwd=folders["local"])
    proc = installed.run(
        "snaketune", "run", "study.yaml", "--profile", "slurm", "--cores", "1",
        "--slurm-init-seconds-before-status-checks", "2", "--latency-wait", "5",
        cwd=folders["cluster"], timeout=600,
    )  # fmt: skip
    assert "workflow/profiles/slurm" in proc.stderr  # Snakemake names the profile it applied
    submitted = [
        line
        for line in full_output(proc).splitlines()
        if "has been submitted with SLURM jobid" in line and "trials" in line
    ]
    out = {name: folder / "results" / CONFIG["study"] for name, folder in folders.items()}
    trials = {name: sorted(p.name for p in (o / "trials").glob("*.json")) for name, o in out.items()}
    assert trials["cluster"] == trials["local"] and len(trials["local"]) == 18
    assert len(submitted) == len(list((out["cluster"] / "batches").glob("*.json"))) >= 2, submitted
    frames = [without_timings(pd.read_csv(o / "leaderboard.csv", dtype={"config_key": str})) for o in out.values()]
    pd.testing.assert_frame_equal(frames[0], frames[1], check_exact=True)


def test_a_search_with_the_slurm_profile_runs_its_trials_as_slurm_jobs(slurm_cluster, tmp_path):
    """``snaketune.GridSearchCV(..., profile=...)`` with the shipped SLURM profile through the warm
    engine: its trials are SLURM jobs, and its results are scikit-learn's."""
    import numpy as np
    import yaml
    from sklearn import model_selection as ms
    from sklearn.datasets import load_iris
    from sklearn.svm import SVC

    import snaketune
    from snaketune.api import resolve_profile

    assert Path(resolve_profile("slurm")) == PROFILE  # what profile="slurm" runs with
    # The shipped profile with the waits the other tests here pass on the command line (its
    # first status poll after 20 s, a 60 s latency wait): four SLURM jobs would take ~90 s.
    settings = yaml.safe_load((PROFILE / "config.yaml").read_text())
    settings.update({"slurm-init-seconds-before-status-checks": 2, "latency-wait": 5})
    profile = tmp_path / "slurm-profile"
    profile.mkdir()
    (profile / "config.yaml").write_text(yaml.safe_dump(settings))

    X, y = load_iris(return_X_y=True)
    cv = ms.StratifiedKFold(2, shuffle=True, random_state=0)
    grid = {"C": [0.5], "gamma": [0.1]}  # 2 trials of a few ms: too few to batch, one SLURM job each
    study_dir = tmp_path / "searches"
    ours = snaketune.GridSearchCV(SVC(), grid, cv=cv, profile=str(profile), study_dir=study_dir).fit(X, y)
    theirs = ms.GridSearchCV(SVC(), grid, cv=cv).fit(X, y)
    for key in [k for k in theirs.cv_results_ if "_test_" in k]:
        np.testing.assert_allclose(ours.cv_results_[key], theirs.cv_results_[key], rtol=0, atol=1e-12, err_msg=key)
    assert ours.best_params_ == theirs.best_params_
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    (log,) = (study_dir / ".snakemake" / "log").glob("*.snakemake.log")
    submitted = [line for line in log.read_text().splitlines() if "has been submitted with SLURM jobid" in line]
    trial_jobs = [line for line in submitted if "rule_trials" in line or "group_trials" in line]
    assert trial_jobs, log.read_text()[-4000:]
    assert len(list(study_dir.glob("results/search-*/trials/*.json"))) == 2
