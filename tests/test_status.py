"""`python -m snaketune status`: progress from the trial files, read-only, during a run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tests.conftest import REPO, SNAKEMAKE

KNN = {
    "study": "st",
    "data": {"loader": "iris"},
    "estimator": {"class": "sklearn.neighbors.KNeighborsClassifier"},
    "search": {"grid": {"n_neighbors": [1, 3, 5]}},
    "cv": {"n_splits": 2},
    "scoring": "accuracy",
}

# Slow trials (SleepyClassifier sleeps in fit) and one configuration that fails (n_neighbors=0).
SLOW = {
    "study": "slow",
    "data": {"loader": "iris"},
    "estimator": {"class": "tests.estimators.SleepyClassifier"},
    "allowed_modules": ["tests.estimators"],
    "search": {"grid": {"delay": [1.5], "n_neighbors": [0, 1, 3, 5, 7, 9]}},
    "cv": {"n_splits": 2},
    "scoring": "accuracy",
}


def _plan(config, workdir):
    from snaketune.config.load import load_config
    from snaketune.search.plan import make_plan

    config = load_config(config, workdir, check_data=False)
    return config, make_plan(config, workdir)


def _record(trial_id, status, score, start, seconds):
    key, fold = trial_id.rsplit("_", 1)
    return {
        "trial_id": trial_id,
        "config_key": key,
        "fold": int(fold),
        "params": {},
        "status": status,
        "test_scores": {"accuracy": score if status == "ok" else None},
        "fit_time": 0.01,
        "score_time": 0.01,
        "start": start.isoformat(),
        "end": (start + timedelta(seconds=seconds)).isoformat(),
    }


def test_status_counts_trials_and_estimates_time_left(tmp_path, monkeypatch):
    from snaketune.results.status import collect, format_status

    monkeypatch.chdir(tmp_path)
    config, plan = _plan(KNN, tmp_path)
    ids = plan.trial_ids  # 3 configurations x 2 folds
    trials = tmp_path / plan.out / "trials"
    trials.mkdir(parents=True)
    old = datetime(2026, 1, 1, tzinfo=UTC)
    now = old + timedelta(hours=5)
    # An earlier run finished one trial; the current run started 40 s ago and finished three.
    (trials / f"{ids[0]}.json").write_text(json.dumps(_record(ids[0], "ok", 0.9, old, 10)))
    start = now - timedelta(seconds=40)
    for i, (tid, status) in enumerate(zip(ids[1:4], ["ok", "error", "timeout"], strict=True)):
        (trials / f"{tid}.json").write_text(
            json.dumps(_record(tid, status, 0.8 + i / 100, start + timedelta(seconds=10 * i), 10))
        )
    # Being written (a temp file) or garbage: not finished; foreign files are ignored.
    (trials / f".{ids[4]}.json.abc.tmp").write_text("{")
    (trials / f"{ids[5]}.json").write_text('{"trial_id": ')
    (trials / "ffffffffffff_0.json").write_text(json.dumps(_record("ffffffffffff_0", "ok", 1.0, old, 1)))

    status = collect(config, plan, now=now.timestamp())
    assert (status.total, status.done, status.ok, status.failed, status.timeout) == (6, 4, 2, 1, 1)
    assert status.elapsed == pytest.approx(40)
    assert status.rate == pytest.approx(3 / 40)
    assert status.remaining == pytest.approx(2 / (3 / 40))
    # Configurations 0 (folds 0, 1) and 1 (folds 0, 1 = ids[2], ids[3]) are complete.
    assert status.complete_configs == 2
    assert [t["config_key"] for t in status.top] == [plan.config_keys[0], plan.config_keys[1]]
    assert status.top[1]["mean"] is None  # a failed or timed-out fold scores nan (error_score: nan)
    text = format_status(status)
    assert (
        "4/6 trials done" in text
        and "ok 2, failed 1, timed out 1" in text
        and "0:00:40" in text
        and "0:00:27 left" in text
    )


def test_status_cli_reads_config_and_study(tmp_path):
    import yaml

    (tmp_path / "config.yaml").write_text(yaml.safe_dump(KNN))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "snaketune", "status", *a],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    proc = run()
    assert proc.returncode == 0, proc.stderr
    assert "study st (results/st): 0/6 trials done" in proc.stdout
    # A study that never ran here and no config declares: an error naming it, not "0/6 done".
    proc = run("--study", "nosuch")
    assert proc.returncode == 2 and "no study 'nosuch' here" in proc.stderr and not proc.stdout
    assert "known studies: st (config.yaml, not run yet)" in proc.stderr
    data = json.loads(run("--config", "config.yaml", "--study", "other", "--json").stdout)
    assert data["out"] == "results/other" and data["total"] == 6  # as snakemake --config study=other
    proc = run("--config", "missing.yaml")
    assert proc.returncode == 2 and "missing.yaml" in proc.stderr


def _status_cli(workdir, *args, shell_tail=""):
    cmd = f"{sys.executable} -m snaketune status {' '.join(args)}{shell_tail}"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(cmd, shell=True, cwd=workdir, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_status_finds_the_active_study_and_tells_a_stopped_run(make_study):
    import yaml

    study = make_study(KNN)
    study.snakemake()
    # A second study of the same folder, run with --configfile: the most recently active one.
    other = dict(KNN, study="other", search={"grid": {"n_neighbors": [7, 9]}})
    (study.workdir / "other.yaml").write_text(yaml.safe_dump(other))
    study.snakemake("--configfile", str(study.workdir / "other.yaml"))
    proc = _status_cli(study.workdir)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("study other (results/other): 4/4 trials done (100%)")
    assert "study st (results/st): 6/6" in _status_cli(study.workdir, "--study", "st").stdout
    unknown = _status_cli(study.workdir, "--study", "nosuch")
    assert unknown.returncode == 2 and "known studies: other, st;" in unknown.stderr
    # A trial lost and no Snakemake running here (as after kill -9): "stopped", no time left.
    next((study.out / "trials").glob("*_1.json")).unlink()
    data = json.loads(_status_cli(study.workdir, "--study", "st", "--json").stdout)
    assert (data["done"], data["total"], data["running"], data["remaining"]) == (5, 6, False, None)
    text = _status_cli(study.workdir, "--study", "st").stdout
    assert "not running, last trial" in text and " ago" in text and "left" not in text
    # A reader that goes away early ends the output quietly.
    piped = _status_cli(study.workdir, "--study", "st", shell_tail=" | head -1")
    assert piped.returncode == 0 and piped.stderr == "" and piped.stdout.startswith("study st")


def _files_on_disk(out):
    return sorted(p.stem for p in (out / "trials").glob("*.json"))


def _complete_configs(out, n_folds=2) -> set[str]:
    stems = _files_on_disk(out) if (out / "trials").exists() else []
    keys = {stem.rsplit("_", 1)[0] for stem in stems}
    return {key for key in keys if all(f"{key}_{k}" in stems for k in range(n_folds))}


@pytest.mark.slow
def test_status_during_a_run(make_study):
    # Slow enough (2 s a trial, 12 trials on 2 cores) that status sees some configurations
    # complete while others are still pending.
    config = dict(SLOW, search={"grid": {"delay": [2.0], "n_neighbors": [0, 1, 3, 5, 7, 9]}})
    study = make_study(config)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    log = open(study.workdir / "snakemake.out", "w")
    run = subprocess.Popen(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(study.workdir), "--cores", "2"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )

    def status(*args):
        proc = subprocess.run(
            [sys.executable, "-m", "snaketune", "status", "--json", *args],
            cwd=study.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    try:
        seen = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and run.poll() is None:
            before = _files_on_disk(study.out) if (study.out / "trials").exists() else []
            complete_before = _complete_configs(study.out)
            data = status("--top", "10")
            after = _files_on_disk(study.out) if (study.out / "trials").exists() else []
            complete_after = _complete_configs(study.out)
            if data["complete_configs"] >= 1 and data["done"] <= data["total"] - 2:
                seen = (before, complete_before, data, after, complete_after)
                break
            time.sleep(0.2)
        assert seen is not None, "never saw the run with a complete configuration and pending ones"
        before, complete_before, data, after, complete_after = seen
        assert data["total"] == 12
        assert len(before) <= data["done"] <= len(after) < 12
        assert data["elapsed"] > 0 and data["remaining"] > 0
        # The top lists exactly the configurations with every fold on disk (all of them: --top 10).
        top_keys = {entry["config_key"] for entry in data["top"]}
        assert len(data["top"]) == data["complete_configs"] >= 1
        assert complete_before <= top_keys <= complete_after, (complete_before, top_keys, complete_after)
        assert data["complete_configs"] < 6  # some configurations still pending
        # ... and their scores are those of the trial files.
        for entry in data["top"]:
            records = [
                json.loads((study.out / "trials" / f"{entry['config_key']}_{k}.json").read_text()) for k in range(2)
            ]
            assert all(r["params"] == entry["params"] for r in records)
            if entry["params"]["n_neighbors"] == 0:  # fails on every fold: no mean, ranked last
                assert entry["mean"] is None and all(r["status"] == "error" for r in records)
                assert entry["rank"] == len(data["top"])
                continue
            scores = [r["test_scores"]["accuracy"] for r in records]
            assert abs(entry["mean"] - sum(scores) / 2) <= 1e-12, (entry, scores)
            assert abs(entry["std"] - float(np.std(scores))) <= 1e-12
        means = [e["mean"] for e in data["top"] if e["mean"] is not None]
        assert means == sorted(means, reverse=True)
        assert [e["rank"] for e in data["top"]] == sorted(e["rank"] for e in data["top"])
        assert run.wait(timeout=300) == 0, (study.workdir / "snakemake.out").read_text()[-3000:]
    finally:
        if run.poll() is None:
            run.terminate()
            run.wait(timeout=30)
        log.close()
    final = status()
    assert (final["done"], final["failed"], final["ok"]) == (12, 2, 10)
    assert final["remaining"] == 0 and final["complete_configs"] == 6
    best = study.best()
    assert final["top"][0]["params"] == best["params"]
    assert final["top"][0]["mean"] == pytest.approx(best["mean_test_score"])


def test_status_through_the_summary_equals_a_full_read(tmp_path, monkeypatch):
    """Status reads through the summary aggregation keeps (issue 28), read-only: after trials
    were rewritten, removed, broken or added since the last aggregation, it says what a read of
    every trial file says, and changes no file."""
    import shutil

    from snaketune.results import summary
    from snaketune.results.status import collect

    monkeypatch.chdir(tmp_path)
    config, plan = _plan(dict(KNN, search={"grid": {"n_neighbors": list(range(1, 41))}}), tmp_path)
    ids = plan.trial_ids  # 40 configurations x 2 folds
    out = tmp_path / plan.out
    (out / "trials").mkdir(parents=True)
    rng = np.random.default_rng(0)
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def write(tid, i):
        status = ["ok", "ok", "ok", "error", "timeout"][i % 5]
        record = _record(tid, status, float(rng.uniform()), start + timedelta(seconds=i), 2)
        (out / "trials" / f"{tid}.json").write_text(json.dumps(record))

    for i, tid in enumerate(ids[:60]):
        write(tid, i)
    summary.read_trials(out, ids[:60])  # what aggregation leaves behind
    for i, tid in enumerate(ids[60:70]):  # finished since
        write(tid, 60 + i)
    write(ids[3], 3)  # rewritten (a rerun)
    (out / "trials" / f"{ids[7]}.json").unlink()  # removed
    (out / "trials" / f"{ids[8]}.json").write_text('{"trial_id": ')  # half-written by hand
    before = {p: p.stat().st_mtime_ns for p in (out / summary.FOLDER).iterdir()}
    now = (start + timedelta(seconds=100)).timestamp()

    through = collect(config, plan, now=now, top_n=10)
    table = summary.read_trials(out, ids, write=False, skip_unreadable=True)
    assert table.n_files_read == 11 and set(table.missing) == {ids[7], ids[8], *ids[70:]}  # new + rewritten
    assert {p: p.stat().st_mtime_ns for p in (out / summary.FOLDER).iterdir()} == before  # read-only
    shutil.rmtree(out / summary.FOLDER)
    full = collect(config, plan, now=now, top_n=10)
    assert not (out / summary.FOLDER).exists()
    assert through.to_json() == full.to_json() and through.top_table == full.top_table
    assert (full.done, full.ok, full.failed, full.timeout) == (68, 41, 13, 14)
    assert full.complete_configs == 33 and len(full.top) == 10
