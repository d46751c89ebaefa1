"""The warm worker dies (kill -9, as the OOM killer would) in the middle of a run: the jobs in flight
run their call in a new Python, the worker is started again, and the run ends by itself with the
leaderboard of a run nobody disturbed."""

from __future__ import annotations

import os
import subprocess
import time

import psutil
import pytest

from tests import killing
from tests.configs import iris
from tests.conftest import REPO, SNAKEMAKE, without_timings

LOST = "worker connection lost before the reply"


def knn_config(**extra) -> dict:
    # 60 configurations x 5 folds = 300 trials; the sleep makes the trials phase last long enough
    # to kill the worker twice while a job is in it.
    search = {"grid": {"delay": [0.01], "n_neighbors": {"range": [1, 61]}}}
    return dict(iris("death", "tests.estimators.SleepyClassifier", search, n_splits=5), **extra)


def hyperband_config() -> dict:
    estimator = {"class": "tests.estimators.SleepySGD", "params": {"delay": 0.02}}
    hyperband = {"max_iter": 9, "aggressiveness": 3, "resource": "partial_fit"}
    return iris("death-hb", estimator, {"hyperband": dict(hyperband, params={"alpha": {"loguniform": [1e-5, 1e-1]}})})


def _worker(root: psutil.Process) -> psutil.Process | None:
    for p in killing._descendants(root):
        try:
            if p.ppid() == root.pid and "snaketune.runtime.worker" in p.cmdline():
                return p
        except psutil.Error:
            continue
    return None


def _handling(worker: psutil.Process) -> bool:
    """The worker has a forked handler (its own process group) running a job's call."""
    for p in worker.children():
        try:
            if os.getpgid(p.pid) == p.pid and p.status() != psutil.STATUS_ZOMBIE:
                return True
        except (psutil.Error, ProcessLookupError):
            continue
    return False


def _kill_worker_twice(study, deadline: float = 240) -> tuple[subprocess.Popen, list[int]]:
    """Start the run, kill -9 its worker twice while a handler runs a job; return the run."""
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(study.workdir), "--cores", "2"]
    run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    root = psutil.Process(run.pid)
    killed: list[int] = []
    end = time.monotonic() + deadline
    while len(killed) < 2 and run.poll() is None and time.monotonic() < end:
        worker = _worker(root)
        if worker is not None and worker.pid not in killed and _handling(worker):
            if killing.freeze(worker):  # no reply can leave it between the look and the kill
                killing.kill_and_confirm(worker)
                killed.append(worker.pid)
        time.sleep(0.02)
    return run, killed


def _check_recovered(study, clean, run, killed) -> None:
    out, _ = run.communicate(timeout=300)
    assert len(killed) == 2, f"the run ended before two kills: {killed}\n{out[-3000:]}"
    assert run.returncode == 0, out[-5000:]
    logs = list((study.out / "logs").rglob("*.log"))
    assert logs and not [p for p in logs if p.stat().st_size == 0]
    fell_back = [p for p in logs if LOST in p.read_text()]
    assert fell_back, "no job lost its worker mid-call"
    worker_log = (study.out / "logs" / "worker.log").read_text()
    assert "killed by SIGKILL); starting another (1 of 3)" in worker_log
    assert "(2 of 3)" in worker_log
    assert without_timings(study.leaderboard()).equals(without_timings(clean.leaderboard()))


@pytest.mark.slow
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "one-trial-a-job"])
def test_killing_the_worker_twice_costs_retries_not_the_run(make_study, batched):
    # One job a trial costs Snakemake ~0.1 s a job: 60 trials (12 configurations) keep the test short
    # and the trials phase still outlasts two kills and a restart.
    extra = (
        {}
        if batched
        else {"trials_per_job": 1, "search": {"grid": {"delay": [0.01], "n_neighbors": {"range": [1, 13]}}}}
    )
    clean = make_study(knn_config(**extra), "clean")
    clean.snakemake()
    study = make_study(knn_config(**extra), "killed")
    run, killed = _kill_worker_twice(study)
    _check_recovered(study, clean, run, killed)
    assert len(study.trial_files()) == (300 if batched else 60)


@pytest.mark.slow
def test_killing_the_worker_twice_in_a_hyperband_study(make_study):
    clean = make_study(hyperband_config(), "clean")
    clean.snakemake()
    study = make_study(hyperband_config(), "killed")
    run, killed = _kill_worker_twice(study)
    _check_recovered(study, clean, run, killed)


@pytest.mark.slow
def test_a_worker_that_keeps_dying_leaves_the_run_without_one(make_study):
    """After MAX_RESTARTS restarts the run goes on with a new Python a job."""
    from snaketune.runtime import worker

    # 4 one-trial jobs: after the last restart each costs a new Python (1-2 s).
    grid = {"delay": [0.01], "n_neighbors": [1, 2]}
    study = make_study(knn_config(search={"grid": grid}, cv={"n_splits": 2}, trials_per_job=1))
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(study.workdir), "--cores", "2"]
    run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    root = psutil.Process(run.pid)
    killed: list[int] = []
    end = time.monotonic() + 120
    while len(killed) <= worker.MAX_RESTARTS and run.poll() is None and time.monotonic() < end:
        found = _worker(root)
        # Only once jobs run: the worker started during the parse is not yet the Keeper's.
        if found is not None and found.pid not in killed and killing.jobs(root):
            killing.kill_and_confirm(found)
            killed.append(found.pid)
        time.sleep(0.01)
    out, _ = run.communicate(timeout=300)
    assert run.returncode == 0, out[-5000:]
    assert len(killed) == worker.MAX_RESTARTS + 1
    assert "the rest of the run runs each call in a new Python" in (study.out / "logs" / "worker.log").read_text()
    assert len(study.trial_files()) == 4


def test_a_job_run_again_after_losing_its_worker_keeps_the_trials_already_written(monkeypatch):
    from snaketune.evaluation import trial
    from snaketune.runtime import calls
    from snaketune.runtime.protocol import ENV_RETRY

    seen = []
    monkeypatch.setattr(
        trial,
        "execute_many",
        lambda specs, outputs, settings, keep_existing, parallel=1: seen.append(keep_existing) or (0, ""),
    )
    calls.trials(specs=[], outputs=[], settings=None)
    monkeypatch.setenv(ENV_RETRY, "1")
    calls.trials(specs=[], outputs=[], settings=None)
    assert seen == [False, True]


def test_the_client_falls_back_with_one_line_and_fails_when_the_run_is_gone(tmp_path, monkeypatch, capsys):
    import importlib.util
    import socket
    import threading

    spec = importlib.util.spec_from_file_location("job_client", REPO / "scripts" / "job_client.py")
    monkeypatch.setenv("SNAKETUNE_HOME", str(REPO))
    monkeypatch.setenv("SNAKETUNE_PACKAGE_PARENT", str(REPO))  # what the isolated client imports from
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)
    monkeypatch.delenv("SNAKETUNE_RETRY", raising=False)
    # Nobody listens: refused, one line, fall back.
    assert client.ask_worker(f"snaketune-test-nobody-{os.getpid()}", {"call": "trials"}) is None
    assert "no worker at" in capsys.readouterr().err and os.environ["SNAKETUNE_RETRY"] == "1"

    def accept_and_drop(listener):
        conn, _ = listener.accept()
        conn.recv(1 << 16)
        conn.close()  # closed before the reply, as when the worker dies mid-job

    for owner, expected in ((os.getpid(), None), (2**22 + 1, 1)):  # a live run's pid; a pid no process has
        address = f"snaketune-test-{os.getpid()}-{owner}"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind("\0" + address)
            listener.listen(1)
            thread = threading.Thread(target=accept_and_drop, args=(listener,))
            thread.start()
            assert client.ask_worker(address, {"call": "trials"}) == expected
            thread.join()
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "worker connection lost" in err


@pytest.mark.slow
def test_user_code_that_calls_sys_exit_fails_its_job_with_a_log(make_study):
    """The worker's handler used to end with no reply (an empty job log, as seen under load)."""
    search = {"grid": {"fail": ["exit"], "n_neighbors": [3]}}
    config = iris("exits", "tests.estimators.FlakyClassifier", search, n_splits=2, trials_per_job=1)
    study = make_study(config)
    proc = study.snakemake(check=False)
    assert proc.returncode != 0
    logs = list((study.out / "logs" / "trials").glob("*.log"))
    assert logs and all("SystemExit: 3" in p.read_text() for p in logs), [p.read_text() for p in logs]
