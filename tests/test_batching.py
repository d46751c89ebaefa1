"""Batching end to end (``trials_per_job``): real Snakemake, real kills.

* an integer ``trials_per_job`` gives the leaderboard of one trial per job (all columns but
  timings and completion order);
* a batch job killed (``kill -9``) mid-batch is rerun as a whole, and the trials it had finished
  come back from ``results/<study>/.cache/trials`` (same inode, same bytes, same start/end: not
  recomputed); the leaderboard equals a clean run's;
* changing ``trials_per_job`` reruns the jobs but restores every batched trial from that cache;
* ``error_score: raise`` stops the study naming configuration, fold and exception, in a batch
  and without the warm worker.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import psutil
import pytest

from tests.configs import iris
from tests.conftest import REPO, SNAKEMAKE, full_output, jobs_run, without_timings

pytestmark = pytest.mark.slow

DELAY = 0.4  # seconds per trial: a batch (3 or 6 trials) lasts over 1 s, long enough to be killed in

SLEEPY = {
    "study": "batches",
    "data": {"loader": "iris"},
    "estimator": {"class": "tests.estimators.SleepyClassifier"},
    "allowed_modules": ["tests.estimators"],
    "search": {"grid": {"delay": [DELAY], "n_neighbors": [1, 3, 5, 7, 9, 11]}},
    "cv": {"kind": "stratified", "n_splits": 3, "shuffle": True, "seed": 2},
    "scoring": ["accuracy", "f1_macro"],
}
LEADERBOARD = f"results/{SLEEPY['study']}/leaderboard.csv"


def _snapshot(study) -> dict[str, tuple[int, bytes]]:
    """Trial file name -> (inode, bytes) for every trial file on disk."""
    found = {}
    for path in study.trial_files():
        try:
            found[path.name] = (path.stat().st_ino, path.read_bytes())
        except FileNotFoundError:
            pass
    return found


def _is_worker_child(pid: int) -> bool:
    """``pid`` is a handler forked by the study's warm worker (where a batch's trials run)."""
    try:
        proc = psutil.Process(pid)
        parent = proc.parent()
        return (
            parent is not None
            and "snaketune.runtime.worker" in proc.cmdline()
            and "snaketune.runtime.worker" in parent.cmdline()
        )
    except psutil.Error:
        return False


def _kill_a_batch_mid_way(study) -> tuple[int, dict[str, tuple[int, bytes]]]:
    """Run the study and ``kill -9`` the process running a batch once it has written its first
    trial. Returns the killed pid and that batch's finished trial files (inode, bytes)."""
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(study.workdir), "--cores", "2", LEADERBOARD]
    log = open(study.workdir / "killed-run.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    victim, finished = None, {}
    try:
        deadline = time.monotonic() + 120
        while victim is None and proc.poll() is None and time.monotonic() < deadline:
            for path in study.trial_files():
                try:
                    record = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue
                # The record names the process that ran it: the worker's forked handler of the batch.
                if _is_worker_child(record["pid"]):
                    victim = record["pid"]
                    # Its finished trials, read before the kill (Snakemake deletes the outputs of
                    # a failed job right after): the batch is still running, so these are final.
                    finished = {
                        name: entry for name, entry in _snapshot(study).items() if json.loads(entry[1])["pid"] == victim
                    }
                    psutil.Process(victim).kill()
                    break
            else:
                time.sleep(0.02)
        assert victim is not None, "never saw a batch running in the warm worker"
        gone, alive = psutil.wait_procs([psutil.Process(victim)] if psutil.pid_exists(victim) else [], timeout=10)
        assert not alive, "the batch process survived kill -9"
        assert proc.wait(timeout=120) != 0, "Snakemake did not notice the killed batch"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    return victim, finished


def test_batches_equal_one_trial_per_job_and_survive_a_kill(make_study):
    one = make_study(dict(SLEEPY, trials_per_job=1), "one")
    clean = one.snakemake(LEADERBOARD)  # the leaderboard and best.json (no plots, refit, report)
    assert jobs_run(clean, "trial") == 18
    reference = without_timings(one.leaderboard())

    study = make_study(dict(SLEEPY, trials_per_job=4), "batched")
    victim, finished = _kill_a_batch_mid_way(study)
    assert finished, "the killed batch had written no trial"

    resumed = study.snakemake(LEADERBOARD)
    assert jobs_run(resumed, "aggregate") == 1 and jobs_run(resumed, "trial") == 0
    n_batches = len(list((study.out / "logs" / "batches").glob("*.log")))
    assert 1 < n_batches < 18, n_batches
    cache = study.out / ".cache" / "trials"
    for name, (inode, content) in finished.items():
        path = study.out / "trials" / name
        # Restored, not recomputed: the very file the killed batch wrote (same inode as before
        # the kill and as the cache entry), byte for byte (start, end, pid of the killed run).
        assert path.read_bytes() == content, name
        assert path.stat().st_ino == inode == (cache / name).stat().st_ino, name
        assert json.loads(content)["pid"] == victim
    # The killed batch did run again: its unfinished trials (other folds of the same
    # configurations) were written by another process.
    keys = {json.loads(content)["config_key"] for _, content in finished.values()}
    batch = [json.loads(p.read_text()) for p in study.trial_files() if p.name.split("_")[0] in keys]
    assert len(batch) == 3 * len(keys) > len(finished)
    assert {r["pid"] for r in batch} - {victim}, "the killed batch was not rerun"
    # Every ok trial of a batch is in the cache, as a hard link to its trial file.
    for path in study.trial_files():
        assert (cache / path.name).stat().st_ino == path.stat().st_ino, path.name
    board = without_timings(study.leaderboard())
    assert board.equals(reference), (board, reference)
    assert study.best() | {"versions": None} == one.best() | {"versions": None}

    # Another trials_per_job: other batches (2 buckets instead of 8), so Snakemake reruns their
    # jobs; every trial comes back from the cache unchanged.
    before = _snapshot(study)
    assert len(before) == 18
    study.config["trials_per_job"] = 9
    study.write()
    rerun = study.snakemake(LEADERBOARD)
    text = full_output(rerun)
    rerun_batches = sum(int(n) for n in re.findall(r"^\s*trials_b\S+\s+(\d+)\s*$", text, re.M))
    assert rerun_batches > 0, text
    after = _snapshot(study)
    assert after == before, "a trial was recomputed instead of restored from .cache/trials"
    assert without_timings(study.leaderboard()).equals(reference)


def _batch_jobs(proc) -> int:
    text = full_output(proc)
    return sum(int(n) for n in re.findall(r"^\s*trials_b\S+\s+(\d+)\s*$", text, re.M))


def test_removing_configurations_reruns_no_batch_and_a_new_one_only_its_own(make_study):
    """An edit that removes configurations (some batches lose members) runs no batch job and
    the leaderboard keeps the remaining rows' scores; putting them back computes nothing; one
    new configuration reruns only the batch it hashes into, which computes only its trials."""
    config = {
        "study": "shrink",
        "data": {"loader": "iris"},
        "estimator": {"class": "sklearn.neighbors.KNeighborsClassifier"},
        "search": {"grid": {"n_neighbors": [1, 3, 5, 7, 9, 11, 13, 15]}},
        "cv": {"kind": "stratified", "n_splits": 3},
        "scoring": "accuracy",
        "trials_per_job": 6,  # 24 trials -> 4 buckets; 18 or 21 trials -> still 4
    }
    target = "results/shrink/leaderboard.csv"
    study = make_study(config)
    first = study.snakemake(target)
    assert _batch_jobs(first) == len(list((study.out / "batches").glob("*.json"))) > 1
    scores = ["params", "mean_test_accuracy", "std_test_accuracy"] + [f"split{k}_test_accuracy" for k in range(3)]
    full = study.leaderboard()[scores].set_index("params")
    files = {p.name: p.stat().st_mtime_ns for p in study.trial_files()}

    def edit(values):
        study.config["search"]["grid"]["n_neighbors"] = values
        study.write()
        return study.snakemake(target)

    shrunk = edit([1, 3, 5, 7, 9, 11])
    assert _batch_jobs(shrunk) == 0 and jobs_run(shrunk, "aggregate") == 1, full_output(shrunk)
    board = study.leaderboard()[scores].set_index("params")
    assert len(board) == 6 and board.equals(full.loc[board.index])

    back = edit([1, 3, 5, 7, 9, 11, 13, 15])
    assert _batch_jobs(back) == 0, full_output(back)
    assert study.leaderboard()[scores].set_index("params").loc[full.index].equals(full)

    grown = edit([1, 3, 5, 7, 9, 11, 17])
    assert _batch_jobs(grown) == 1, full_output(grown)
    now = {p.name: p.stat().st_mtime_ns for p in study.trial_files()}
    assert {n: now[n] for n in files} == files  # nothing recomputed or rewritten
    assert len(set(now) - set(files)) == 3  # the new configuration's folds
    assert len(study.leaderboard()) == 7


FLAKY = iris(
    "raising",
    "tests.estimators.FlakyClassifier",
    {"grid": {"fail": [False, True], "n_neighbors": [3]}},
    error_score="raise",
)


@pytest.mark.parametrize(
    ("extra", "logs"),
    [({"trials_per_job": 3}, "batches"), ({"worker": False, "trials_per_job": 1}, "trials")],
    ids=["batched", "no-worker"],
)
def test_error_score_raise_names_configuration_fold_and_exception(make_study, extra, logs):
    study = make_study(dict(FLAKY, **extra))
    proc = study.snakemake(check=False)
    assert proc.returncode != 0
    text = "".join(p.read_text() for p in (study.out / "logs" / logs).glob("*.log"))
    pattern = (
        r"trial [0-9a-f]{12}_(\d) failed \(error_score: raise\): configuration "
        r"\{'fail': True, 'n_neighbors': 3\}, fold (\d): FloatingPointError: diverged on purpose"
    )
    found = re.findall(pattern, text)
    assert found, text
    assert all(a == b for a, b in found), found  # the fold named is the trial's own
    assert "Traceback" in text  # the exception's traceback follows
    assert not (study.out / "leaderboard.csv").exists()
    # A failed trial is not recorded as a result: a rerun with error_score: nan computes it.
    for path in study.trial_files():
        assert json.loads(path.read_text())["status"] == "ok"


def test_a_local_auto_run_is_one_pooled_job_that_a_dry_run_and_report_leave_alone(make_study):
    """auto batching on a local run: one batch job (up to MAX_TRIALS_PER_JOB trials) takes the
    run's cores and hands its trials to forks as they free up. A dry run and --report parse with
    one core and cannot tell they are not real: they must find that job done, not regroup it."""
    config = {
        "study": "auto-batches",
        "data": {"loader": "iris"},
        "estimator": {"class": "sklearn.neighbors.KNeighborsClassifier"},
        "search": {"grid": {"n_neighbors": list(range(1, 31)), "weights": ["uniform", "distance"]}},
        "cv": {"n_splits": 5},
    }
    study = make_study(config)
    study.snakemake("--cores", "2")
    batches = sorted(p.name for p in (study.out / "batches").glob("*.json"))
    assert batches == ["b1x0.json"]
    log = (study.out / "logs" / "batches" / "b1x0.log").read_text()
    children = re.findall(r"^trial process (\d+): (\d+) trial\(s\), exit status 0", log, re.M)
    assert len(children) == 2 and sum(int(n) for _, n in children) == 300, log[-2000:]
    records = [json.loads(p.read_text()) for p in study.trial_files()]
    assert {r["pid"] for r in records} == {int(pid) for pid, _ in children}
    spans = {pid: (min(r["start"] for r in records if r["pid"] == pid), max(r["end"] for r in records if r["pid"] == pid))
             for pid in {r["pid"] for r in records}}  # fmt: skip
    (a_start, a_end), (b_start, b_end) = spans.values()
    assert a_start < b_end and b_start < a_end  # the two forks ran at once

    dry = study.snakemake("-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-2000:]
    report = study.snakemake("--report", "report.html", "--cores", "1")
    assert "Missing metadata" not in report.stdout + report.stderr
    assert sorted(p.name for p in (study.out / "batches").glob("*.json")) == batches
    assert "Nothing to be done" in (p := study.snakemake("--cores", "1")).stdout + p.stderr
