"""``base.procs.fork_pool``: items handed to forked children as they free up (a round job's
trials, ``evaluation.trial.execute_forked``), a dead child stopping the queue, and signals to
the parent reaching the children. Real forks and signals, no Snakemake (its end-to-end test is
in ``test_optuna.py``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil

from snaketune.base.procs import fork_pool
from tests.conftest import REPO


def test_every_item_runs_once_on_the_first_free_child():
    """More items than the queue's pipe holds (16,384 records of 4 bytes): all of them reach a
    child exactly once; a child held up by a slow item takes fewer of the others meanwhile."""
    n = 40_000

    def child(next_item):
        taken = []
        while (i := next_item()) is not None:
            taken.append(i)
            if i == 0:
                time.sleep(0.5)  # whoever takes item 0 is busy while the others take the rest
        return 0, json.dumps(taken).encode()

    children = fork_pool(n, 3, child)
    assert [c.how() for c in children] == ["exit status 0"] * 3
    taken = [json.loads(c.output) for c in children]
    assert sorted(i for t in taken for i in t) == list(range(n))
    (slow,) = [t for t in taken if 0 in t]
    assert len(slow) < n / 3 and all(len(t) > 0 for t in taken)


def test_with_keys_each_key_runs_once_then_the_rest_longest_first():
    """Items of one key (a configuration's folds) cost about the same: one of each key runs
    first, in order, then the rest by the time their key took, longest first, so a round's last
    items are its shortest. One child: the order is exactly the queue's."""
    seconds = {"a": 0.15, "b": 0.0, "c": 0.3}
    keys = ["a", "b", "c", "a", "b", "c", "c", "a"]

    def child(next_item):
        taken = []
        while (i := next_item()) is not None:
            taken.append(i)
            time.sleep(seconds[keys[i]])
        return 0, json.dumps(taken).encode()

    (only,) = fork_pool(len(keys), 1, child, keys=keys)
    assert json.loads(only.output) == [0, 1, 2, 5, 6, 3, 7, 4]  # a b c, then c c, a a, b
    (plain,) = fork_pool(len(keys), 1, child)  # no keys: in order
    assert json.loads(plain.output) == list(range(len(keys)))


def test_a_child_killed_stops_the_queue_and_the_others_finish_their_item():
    """kill -9 of one child: the others end the item they hold and take no more, the pool
    returns at once and reports the signal; no item ran twice."""

    def child(next_item):
        taken = []
        while (i := next_item()) is not None:
            if i == 50:
                os.kill(os.getpid(), signal.SIGKILL)
            taken.append(i)
            time.sleep(0.002)
        return 0, json.dumps(taken).encode()

    t0 = time.monotonic()
    children = fork_pool(10_000, 2, child)
    assert time.monotonic() - t0 < 10  # 10,000 items x 2 ms on 2 children would be 10 s
    killed = [c for c in children if not c.ok]
    assert [c.how() for c in killed] == ["signal 9"] and killed[0].output == b""
    (survivor,) = [json.loads(c.output) for c in children if c.ok]
    assert 50 not in survivor and len(survivor) == len(set(survivor)) and len(survivor) < 5_000


SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from snaketune.base.procs import fork_pool

    def child(next_item):
        next_item()
        Path(sys.argv[1], str(os.getpid())).touch()
        time.sleep(120)
        return 0, b""

    fork_pool(4, 2, child)
    print("returned", flush=True)
    """
)


def test_sigterm_and_sigint_to_the_parent_reach_the_children(tmp_path):
    """A job stopped by SIGTERM (Snakemake cancelling it) or SIGINT (Ctrl-C): the parent passes
    the signal on, waits for its children, then ends by that signal itself (a KeyboardInterrupt
    for SIGINT, as its own handler does)."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        folder = tmp_path / signum.name
        folder.mkdir()
        proc = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(folder)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # SIGINT at its default, as a terminal starts a job (a suite run in the background
            # inherits it ignored).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.default_int_handler),  # noqa: PLW1509
        )
        deadline = time.monotonic() + 30
        while len(list(folder.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        children = [int(p.name) for p in folder.iterdir()]
        assert len(children) == 2
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == -signum, err  # Python ends by the signal after a KeyboardInterrupt too
        assert "returned" not in out
        if signum == signal.SIGINT:
            assert "KeyboardInterrupt" in err
        assert not any(
            psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in children
        )
