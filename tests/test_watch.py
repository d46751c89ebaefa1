"""``snaketune watch``: a saved edit shows in the leaderboard, a revert too, Ctrl-C stops cleanly.

The latencies are printed (run with -s to see them) and asserted generously: the targets (3 s to
show an added configuration, 2 s for a revert) are measured in bench/, not here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

BIN = Path(sys.executable).parent


def study(ks: list[int]) -> dict:
    return {
        "study": "watched",
        "data": {"loader": "iris"},
        "estimator": {"class": "sklearn.neighbors.KNeighborsClassifier"},
        "search": {"grid": {"n_neighbors": ks}},
        "cv": {"kind": "stratified", "n_splits": 5, "shuffle": True, "seed": 0},
    }


def rows(folder: Path) -> int:
    try:
        return len(pd.read_csv(folder / "results" / "watched" / "leaderboard.csv"))
    except (OSError, ValueError):
        return -1


def wait_for(condition, timeout: float) -> float:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, "timed out"
        time.sleep(0.05)
    return time.monotonic() - start


@pytest.mark.slow
def test_watch_add_one_configuration_revert_and_ctrl_c(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(study([1, 3, 5])))
    proc = subprocess.Popen(
        [str(BIN / "snaketune"), "watch", "--cores", "2"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Ctrl-C as at a terminal: a suite started in the background by a non-interactive shell
        # inherits SIGINT ignored, and Python would keep ignoring it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        waits = lambda: sum("watch: run done" in line for line in lines)  # noqa: E731
        wait_for(lambda: waits() == 1, 300)
        assert rows(tmp_path) == 3

        time.sleep(1.1)  # a new mtime on file systems with one-second stamps
        config.write_text(yaml.safe_dump(study([1, 3, 5, 7])))  # one configuration, 5 trials
        added = wait_for(lambda: rows(tmp_path) == 4, 120)
        wait_for(lambda: waits() == 2, 120)

        time.sleep(1.1)
        config.write_text(yaml.safe_dump(study([1, 3, 5])))  # the revert: no trial runs
        reverted = wait_for(lambda: rows(tmp_path) == 3, 120)
        wait_for(lambda: waits() == 3, 120)
        print(f"watch latencies: add one configuration {added:.2f} s, revert {reverted:.2f} s")
        assert added < 30 and reverted < 30
        assert sum("Top 5" in line for line in lines) >= 3  # each run printed its top 5

        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        reader.join(10)
        assert lines[-1].strip() == "watch: stopped"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
