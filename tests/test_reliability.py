"""Failing, hung and killed trials: nothing lost, nothing wrong in the leaderboard."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time

import psutil
import pytest

from tests.conftest import REPO, SNAKEMAKE, jobs_run, without_timings

pytestmark = pytest.mark.slow

TIMING = ("mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time")


def flaky_config(**extra):
    config = {
        "study": "flaky",
        "data": {"loader": "iris"},
        "estimator": {"class": "tests.estimators.FlakyClassifier"},
        "allowed_modules": ["tests.estimators"],
        "search": {"grid": {"fail": [False, True], "n_neighbors": [3, 5]}},
        "cv": {"n_splits": 3},
    }
    config.update(extra)
    return config


def test_failing_trials_are_recorded_and_ranked_last(make_study):
    study = make_study(flaky_config())
    study.snakemake()
    frame = study.leaderboard()
    failed = frame[frame["param_fail"]]
    assert list(failed["n_failed"]) == [3, 3]
    assert failed["mean_test_accuracy"].isna().all()
    assert (failed["rank_test_accuracy"] == 3).all()  # tied last, after the two that work
    records = [json.loads(p.read_text()) for p in study.trial_files()]
    errors = [r for r in records if r["status"] == "error"]
    assert len(errors) == 6
    assert all("FloatingPointError: diverged on purpose" in r["traceback"] for r in errors)
    oks = [r for r in records if r["status"] == "ok"]
    assert all(
        {"category": "ConvergenceWarning", "message": "did not converge (on purpose)"} in r["warnings"] for r in oks
    )


def test_numeric_error_score_fills_failed_folds(make_study):
    study = make_study(flaky_config(error_score=0))
    study.snakemake()
    frame = study.leaderboard()
    assert (frame[frame["param_fail"]]["mean_test_accuracy"] == 0).all()


def test_error_score_raise_stops_with_a_clear_message(make_study):
    study = make_study(flaky_config(error_score="raise"))
    proc = study.snakemake(check=False)
    assert proc.returncode != 0
    logs = "".join(p.read_text() for p in (study.out / "logs" / "trials").glob("*.log"))
    assert "failed (error_score: raise): configuration {'fail': True" in logs
    assert "fold " in logs and "FloatingPointError: diverged on purpose" in logs
    assert not (study.out / "leaderboard.csv").exists()


@pytest.mark.parametrize("worker", [True, False])
def test_trial_timeout_kills_and_records(make_study, worker):
    config = {
        "study": "slow",
        "data": {"loader": "iris"},
        "estimator": {"class": "tests.estimators.SleepyClassifier"},
        "allowed_modules": ["tests.estimators"],
        "search": {"grid": {"delay": [0.0, 300.0]}},
        "cv": {"n_splits": 2},
        "trial_timeout": 1.5,
        "worker": worker,
    }
    study = make_study(config)
    t0 = time.monotonic()
    study.snakemake()
    assert time.monotonic() - t0 < 200  # the 300 s fits were killed, not waited for
    frame = study.leaderboard()
    assert list(frame["n_timeout"]) == [0, 2]
    assert frame["rank_test_accuracy"].tolist() == [1, 2]
    statuses = sorted(json.loads(p.read_text())["status"] for p in study.trial_files())
    assert statuses == ["ok", "ok", "timeout", "timeout"]


def test_corrupt_trial_file_is_named_with_the_fix(make_study):
    study = make_study(flaky_config(search={"grid": {"fail": [False], "n_neighbors": [3, 5]}}))
    study.snakemake()
    victim = study.out / "trials" / f"{study.leaderboard()['config_key'][1]}_2.json"
    victim.write_text(victim.read_text()[:40])
    (study.out / "leaderboard.csv").unlink()
    proc = study.snakemake(check=False)
    log = (study.out / "logs" / "aggregate.log").read_text()
    assert proc.returncode != 0
    assert f"corrupt trial file {victim.relative_to(study.workdir)}" in log and "Delete it and rerun" in log
    victim.unlink()
    proc = study.snakemake()
    assert jobs_run(proc) == 1 and (study.out / "leaderboard.csv").exists()


def _leaderboard_without_timings(study):
    return without_timings(study.leaderboard())


def test_same_leaderboard_with_one_or_two_cores(make_study):
    config = flaky_config(search={"grid": {"fail": [False], "n_neighbors": [1, 4, 9]}})
    one, two = make_study(config, "one"), make_study(config, "two")
    one.snakemake("--cores", "1")
    two.snakemake("--cores", "2")
    assert _leaderboard_without_timings(one).equals(_leaderboard_without_timings(two))
    assert one.best() | {"versions": None} == two.best() | {"versions": None}


def _workers():
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if "snaketune.runtime.worker" in cmd:
            found.append(p)
    return found


def test_no_worker_left_after_success_failure_or_interrupt(make_study):
    before = {p.pid for p in _workers()}
    ok = make_study(flaky_config(search={"grid": {"fail": [False], "n_neighbors": [3]}}), "ok")
    ok.snakemake()
    bad = make_study(flaky_config(error_score="raise"), "bad")
    assert bad.snakemake(check=False).returncode != 0
    slow = make_study(
        {
            "study": "slow",
            "data": {"loader": "iris"},
            "estimator": {"class": "tests.estimators.SleepyClassifier"},
            "allowed_modules": ["tests.estimators"],
            "search": {"grid": {"delay": [30.0]}},
            "cv": {"n_splits": 2},
        },
        "slow",
    )
    proc = subprocess.Popen(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(slow.workdir), "--cores", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not any(p.pid not in before for p in _workers()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert any(p.pid not in before for p in _workers()), "worker never started"
    time.sleep(1)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    proc.wait(timeout=60)
    time.sleep(1.5)
    assert {p.pid for p in _workers()} <= before


def _kill_random_trial_process(rng) -> bool:
    """kill -9 a trial job's client or a forked trial; False if none is running."""
    victims = []
    for p in psutil.process_iter(["cmdline", "ppid"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "job_client.py trials" in cmd or "snaketune.runtime.calls trials" in cmd:
            victims.append(p)
        elif "snaketune.runtime.worker" in cmd:
            try:
                parent = psutil.Process(p.info["ppid"])
                if "snaketune.runtime.worker" in " ".join(parent.cmdline()):
                    victims.append(p)  # a handler or its forked trial
            except psutil.Error:
                pass
    if not victims:
        return False
    try:
        rng.choice(victims).kill()
    except psutil.Error:
        return False
    return True


def test_kill_and_resume_twenty_times(make_study):
    """Kill Snakemake or a trial process at 20 random moments; resume; same leaderboard."""
    config = {
        "study": "crash",
        "data": {"loader": "iris"},
        "estimator": {"class": "tests.estimators.SleepyClassifier"},
        "allowed_modules": ["tests.estimators"],
        "search": {"grid": {"delay": [0.15, 0.25], "n_neighbors": list(range(1, 21))}},
        "cv": {"n_splits": 2},
    }
    clean = make_study(config, "clean")
    clean.snakemake()
    study = make_study(config, "crashy")
    rng = random.Random(20261123)
    first_seen: dict[str, tuple] = {}
    kills = {"snakemake": 0, "trial": 0}

    def observe():
        for path in study.trial_files():
            record = json.loads(path.read_text())  # never partial: must parse
            assert record["trial_id"] == path.stem
            stat = path.stat()
            first_seen.setdefault(path.name, (stat.st_ino, stat.st_mtime_ns))

    base = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(study.workdir), "--cores", "2"]
    while sum(kills.values()) < 20:
        subprocess.run(base + ["--unlock"], capture_output=True, check=True)
        proc = subprocess.Popen(base + ["--rerun-incomplete"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        n_before = len(study.trial_files())
        target = n_before + rng.randint(0, 3)
        deadline = time.monotonic() + 30
        while len(study.trial_files()) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.4))
        if proc.poll() is not None:
            pytest.fail("the study finished before 20 kills; make it larger")
        if rng.random() < 0.5:
            proc.kill()
            kills["snakemake"] += 1
        elif _kill_random_trial_process(rng):
            kills["trial"] += 1
        else:
            proc.kill()
            kills["snakemake"] += 1
        proc.wait(timeout=60)
        time.sleep(0.3)
        observe()
    subprocess.run(base + ["--unlock"], capture_output=True, check=True)
    final = subprocess.run(base + ["--rerun-incomplete"], capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr[-3000:]
    rerun = [n for n, (ino, mtime) in first_seen.items() if (study.out / "trials" / n).stat().st_ino != ino]
    print(f"kills: {kills}; trial files seen before the end: {len(first_seen)}; rerun: {len(rerun)}")
    assert not rerun, f"finished trials were rerun: {rerun}"
    assert _leaderboard_without_timings(study).equals(_leaderboard_without_timings(clean))
    assert not _workers_for(study)


def _workers_for(study):
    return [p for p in _workers() if str(study.out.name) in " ".join(p.cmdline())]
