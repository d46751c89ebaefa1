"""Ctrl-C at any moment of `snaketune run`: one line saying what was kept and how to go on, no
traceback, exit status 130; a rerun finishes the study without redoing a kept trial."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.configs import iris

pytestmark = pytest.mark.slow

SNAKETUNE = str(Path(sys.executable).parent / "snaketune")
CONFIG = iris(
    "sleepy",
    "tests.estimators.SleepyClassifier",
    {"grid": {"delay": [0.5], "n_neighbors": [1, 3, 5, 7]}},
    trials_per_job=1,
)


def start(folder: Path) -> subprocess.Popen:
    # As a shell starts it: its own process group, of which a terminal's Ctrl-C signals only it.
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    return subprocess.Popen(
        [SNAKETUNE, "run", "--cores", "2"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def interrupted(proc: subprocess.Popen) -> str:
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal sends to the foreground group
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "Traceback" not in out and "Error in rule" not in out and "Exception" not in out, out
    lines = [line for line in out.splitlines() if line.startswith("interrupted")]
    assert len(lines) == 1, out
    return lines[0]


def trial_files(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (folder / "results" / "sleepy" / "trials").glob("*.json")}


@pytest.mark.parametrize("moment", ["start", "parse", "trials"])
def test_ctrl_c_says_one_line_and_a_rerun_goes_on(tmp_path, moment):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    proc = start(tmp_path)
    if moment == "start":
        # Our command running, Snakemake not yet (Python's own start-up, the first ~50 ms, prints
        # its traceback for any program: no human Ctrl-C lands there).
        time.sleep(0.3)
    elif moment == "parse":
        time.sleep(1.0)  # Snakemake imported or importing, the workflow being parsed
    elif moment == "trials":
        deadline = time.monotonic() + 120
        while len(trial_files(tmp_path) if (tmp_path / "results").exists() else {}) < 2:
            assert time.monotonic() < deadline and proc.poll() is None, "no trial finished"
            time.sleep(0.05)
    line = interrupted(proc)
    kept = trial_files(tmp_path) if (tmp_path / "results" / "sleepy" / "trials").exists() else {}
    if moment == "trials":
        assert line.startswith(f"interrupted: {len(kept)} of 12 trials done and kept"), line
        assert 2 <= len(kept) < 12
    else:
        assert line.startswith("interrupted"), line

    rerun = subprocess.run([SNAKETUNE, "run", "--cores", "2"], cwd=tmp_path, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    after = trial_files(tmp_path)
    assert len(after) == 12
    assert {name: after[name] for name in kept} == kept  # kept trials were not computed again
    assert (tmp_path / "results" / "sleepy" / "leaderboard.csv").exists()
