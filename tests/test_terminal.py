"""What a user sees: the quiet terminal of a run (logger plugin `snaketune`, set in the workflow
profile) and the `snaketune` command, both used as an installed package from another folder."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests.conftest import BIN, REPO, SNAKEMAKE

# 30 x 2 configurations x 5 folds = 300 trials of kNN on iris: fast, batched (auto).
KNN300 = {
    "study": "knn300",
    "data": {"loader": "iris"},
    "estimator": {"class": "sklearn.neighbors.KNeighborsClassifier"},
    "search": {"grid": {"n_neighbors": {"range": [1, 31]}, "weights": ["uniform", "distance"]}},
    "cv": {"kind": "stratified", "n_splits": 5, "shuffle": True, "seed": 0},
    "scoring": "accuracy",
    "trials_per_job": "auto",
}

SLOW = {
    "study": "slow",
    "data": {"loader": "iris"},
    "estimator": {"class": "tests.estimators.SleepyClassifier"},
    "allowed_modules": ["tests.estimators"],
    "search": {"grid": {"delay": [3.0], "n_neighbors": [1, 3, 5, 7, 9, 11]}},
    "cv": {"n_splits": 2},
    "scoring": "accuracy",
}


def _env(**extra) -> dict:
    """The user's environment: no PYTHONPATH, so only the installed package is importable."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return dict(env, **extra)


def _snakemake(workdir, *args, **kwargs) -> subprocess.CompletedProcess:
    """`snakemake -s /abs/path/Snakefile` run from the study's own folder, as a user would."""
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--cores", "2", *args]
    return subprocess.run(cmd, cwd=workdir, env=_env(), capture_output=True, text=True, timeout=600, **kwargs)


def _snaketune(workdir, *args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "snaketune"), *args], cwd=workdir, env=_env(), capture_output=True, text=True, timeout=300, **kwargs
    )


def _in_a_terminal(workdir, *args) -> str:
    """Run snakemake with a pseudo-terminal as stdout and stderr; everything it wrote."""
    master, slave = pty.openpty()
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--cores", "2", *args]
    proc = subprocess.Popen(cmd, cwd=workdir, env=_env(TERM="xterm"), stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child side closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=600) == 0, b"".join(chunks).decode()[-3000:]
    return b"".join(chunks).decode()


def _grid_search_best() -> float:
    from sklearn import datasets
    from sklearn import model_selection as ms
    from sklearn.neighbors import KNeighborsClassifier

    X, y = datasets.load_iris(return_X_y=True)
    search = ms.GridSearchCV(
        KNeighborsClassifier(),
        {"n_neighbors": list(range(1, 31)), "weights": ["uniform", "distance"]},
        cv=ms.StratifiedKFold(5, shuffle=True, random_state=0),
        scoring="accuracy",
    ).fit(X, y)
    return search.best_score_


@pytest.mark.slow
def test_a_300_trial_run_prints_a_header_progress_and_a_summary(tmp_path):
    workdir = tmp_path / "project"  # a project folder of the user's, not the checkout
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump(KNN300, sort_keys=False))
    proc = _snakemake(workdir)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-4000:]
    lines = text.splitlines()
    assert len(lines) < 60, text
    best = _grid_search_best()

    # Header: study, where the outputs go, trials cached and to run, cores.
    assert "snaketune: study knn300 -> results/knn300/" in lines
    assert "  300 trials (60 configurations x 5 folds): 0 done before, 300 to run on 2 cores" in lines
    # Plain progress lines (not a terminal): counts only grow; the last one has every trial
    # and the best mean over complete configurations, as GridSearchCV finds it.
    progress = [re.match(r"\[\d+:\d\d:\d\d\] (\d+)/300 trials \(\d+%\), (\d+) failed", line) for line in lines]
    counts = [int(m.group(1)) for m in progress if m]
    # (How many lines before the last depends on the machine's speed: a tenth of the run each,
    # at most one per 5 s.)
    assert 1 <= len(counts) <= 15 and counts == sorted(counts) and counts[-1] == 300, text
    assert f"best accuracy {best:.4f}" in [line for line in lines if line.startswith("[")][-1]
    # Summary: trials run, the top 5 (GridSearchCV's best first), where the outputs are.
    assert re.search(r"^ran 300 trials in \d+:\d\d:\d\d \(300 ok, 0 failed\); 0 done before$", text, re.M)
    table = [line for line in lines if line.startswith("| ")]
    assert len(table) == 1 + 5 and table[1].split("|")[2].strip() == f"{best:.4f}", text
    assert "outputs in results/knn300/: leaderboard.md" in text
    # Nothing of Snakemake's per-job listing; its complete log is named for who needs it.
    assert "Job stats" not in text and "rule " not in text and "Finished job" not in text
    log = re.search(r"^Complete log\(s\): (.+)$", text, re.M).group(1)
    assert "localrule all:" in open(log).read()

    # A batch whose Snakemake output is a manifest of its trial files (the batching of #16):
    # the progress counts the trials the manifest names.
    from snaketune.workflow.terminal import Progress, RunInfo

    trials = sorted((workdir / "results" / "knn300" / "trials").glob("*.json"))
    info = RunInfo(
        "knn300",
        "results/knn300",
        str(workdir),
        [f"results/knn300/trials/{p.name}" for p in trials],
        60,
        5,
        "accuracy",
        "2 cores",
    )
    manifest = workdir / "results" / "knn300" / "batches" / "b.json"
    manifest.parent.mkdir(exist_ok=True)
    manifest.write_text(json.dumps({"trials": [p.name for p in trials]}))
    progress = Progress(info)
    for path in progress.trials_of("results/knn300/batches/b.json"):
        progress.add(path)
    assert (progress.done, progress.ok, progress.cached) == (300, 300, 0) and progress.best == pytest.approx(best)

    # `snaketune` is installed: the command works in the project folder and finds the study.
    status = _snaketune(workdir, "status")
    assert status.returncode == 0 and status.stdout.startswith("study knn300 (results/knn300): 300/300 trials done")
    watched = _snaketune(workdir, "status", "--watch", "1", "--json")  # finished: one answer, then it ends
    assert watched.returncode == 0 and json.loads(watched.stdout)["done"] == 300
    report = _snaketune(workdir, "report")  # Snakemake's report of the study in ./config.yaml
    assert report.returncode == 0, report.stderr[-3000:]
    assert report.stdout.strip().endswith("report: results/knn300/report.html")
    assert (workdir / "results" / "knn300" / "report.html").stat().st_size > 10_000

    # In a terminal: one progress line redrawn in place ("\r", erase line), left at its final counts.
    trials = workdir / "results" / "knn300" / "trials"
    victims = sorted(trials.glob("*.json"))[:3]
    for path in victims:
        path.unlink()
    screen = _in_a_terminal(workdir)
    assert "  300 trials (60 configurations x 5 folds): 297 done before, 3 to run on 2 cores" in screen
    redraws = re.findall(r"\r\x1b\[K  (\d+)/300 trials", screen)
    assert redraws and redraws[-1] == "300" and "\r\x1b[K  300/300 trials (100%), 0 failed" in screen
    assert re.search(r"^ran 3 trials in .* 297 done before\r?$", screen, re.M), screen

    # Snakemake's per-job listing on request (a flag; `logger-snaketune-jobs: true` in a profile).
    victims[0].unlink()
    listed = _snakemake(workdir, "--logger-snaketune-jobs")
    text = listed.stdout + listed.stderr
    assert listed.returncode == 0, text[-3000:]
    assert "Job stats:" in text and re.search(r"^(local)?rule trials_\S+:$", text, re.M) and "reason:" in text
    assert "ran 1 trial in" in text and "299 done before" in text


def test_snaketune_help_lists_every_command_in_plain_text(tmp_path):
    proc = _snaketune(tmp_path, "--help")
    assert proc.returncode == 0, proc.stderr
    for command in ("check", "plan", "status", "report"):
        assert re.search(rf"^    {command}\s+\S", proc.stdout, re.M), proc.stdout
    module = subprocess.run(
        [sys.executable, "-m", "snaketune", "--help"], cwd=tmp_path, env=_env(), capture_output=True, text=True
    )
    assert module.stdout == proc.stdout  # one CLI
    helps = [proc.stdout] + [_snaketune(tmp_path, c, "--help").stdout for c in ("check", "plan", "status", "report")]
    for text in helps:
        assert text.startswith("usage: snaketune") and "``" not in text and ":mod:" not in text
    check = subprocess.run(
        [sys.executable, "-m", "snaketune.config", "--help"], cwd=tmp_path, env=_env(), capture_output=True, text=True
    )
    assert check.returncode == 0 and check.stdout.startswith("usage:") and "config error" not in check.stderr


@pytest.mark.slow
def test_status_after_kill_9_says_not_running(make_study):
    # The run is started with --configfile; ./config.yaml declares another study: status must
    # follow the running Snakemake, as Snakemake resolved its config.
    study = make_study(dict(KNN300, study="decoy"))
    (study.workdir / "slow.yaml").write_text(yaml.safe_dump(SLOW))
    study.config = SLOW
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--cores", "2", "--configfile", "slow.yaml"]
    run = subprocess.Popen(
        cmd,
        cwd=study.workdir,
        env=_env(PYTHONPATH=str(REPO)),  # the jobs import tests.estimators
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not list(study.out.glob("trials/*.json")):
            assert run.poll() is None and time.monotonic() < deadline, "no trial finished"
            time.sleep(0.2)
        proc = _snaketune(study.workdir, "status", "--json")
        assert proc.returncode == 0, proc.stderr
        running = json.loads(proc.stdout)
        assert running["study"] == "slow" and running["running"] is True
        assert running["done"] < running["total"] == 12
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # Snakemake and its jobs, as `kill -9` of a whole run
        run.wait(timeout=60)
    deadline = time.monotonic() + 60
    while json.loads(_snaketune(study.workdir, "status", "--json").stdout)["running"]:
        assert time.monotonic() < deadline, "a Snakemake process outlived kill -9"
        time.sleep(0.5)
    proc = _snaketune(study.workdir, "status")  # nothing runs: the study most recently active here
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("study slow (results/slow): ")
    assert re.search(
        r"^  not running, last trial \d+ (s|min) ago: resume with `snakemake --cores N`", proc.stdout, re.M
    )
    assert "left" not in proc.stdout  # no time-left estimate for a run that is not there
    # A reader that goes away early: the installed command ends quietly.
    piped = subprocess.run(
        f"{BIN / 'snaketune'} status | head -1",
        shell=True,
        cwd=study.workdir,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert piped.returncode == 0 and piped.stderr == "" and piped.stdout.startswith("study slow (results/slow):")
