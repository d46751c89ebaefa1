"""Find and kill the processes of one running study, and prove that a kill hit something.

Every job's command is ``python -I -S scripts/job_client.py NAME ARGS THREADS``; with the warm
worker the call runs in a handler the worker forks (its own process group, the worker's command
line), without it the client replaces itself with ``python -m snaketune.runtime.calls NAME ...``.
Only descendants of *this* run's Snakemake process are considered, never another study's.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

# Rule calls in workflow order (plots and refit run side by side after aggregate).
PHASES = ("prepare_data", "make_splits", "trials", "aggregate", "plots", "refit", "report_pages")
# Order in which phases run: plots and refit both follow aggregate and may run side by side.
RANK = {"prepare_data": 0, "make_splits": 1, "trials": 2, "aggregate": 3, "plots": 4, "refit": 4, "report_pages": 5}
# At most this long (s) after a phase's job appears, the kill strikes (seeded uniform draw):
# shorter than the phase lasts with the worker on, so most strikes land while it runs.
WINDOW = {
    "prepare_data": 0.1,
    "make_splits": 0.05,
    "trials": 0.6,
    "aggregate": 0.1,
    "plots": 0.2,
    "refit": 0.25,
    "report_pages": 0.15,
}


@dataclass
class Job:
    phase: str
    proc: psutil.Process
    kind: str  # "client" (job_client.py) or "calls" (a new Python running the call)
    created: float


@dataclass
class Kill:
    """One planned kill and what it really hit."""

    phase: str
    victim: str  # "snakemake", "client", "handler" or "calls"
    hit: bool = False
    pid: int | None = None
    detail: str = ""


def call_name(cmdline: list[str]) -> tuple[str, str] | None:
    """(call, kind) of a job process's command line, or None."""
    for i, arg in enumerate(cmdline[:-1]):
        if arg.endswith("job_client.py"):
            return cmdline[i + 1], "client"
        if arg == "snaketune.runtime.calls" and i > 0 and cmdline[i - 1] == "-m":
            return cmdline[i + 1], "calls"
    return None


def _descendants(root: psutil.Process) -> list[psutil.Process]:
    try:
        return root.children(recursive=True)
    except psutil.Error:
        return []


def jobs(root: psutil.Process) -> list[Job]:
    """The job processes (client or call) below a Snakemake process, alive and not zombies."""
    found = []
    for p in _descendants(root):
        try:
            named = call_name(p.cmdline())
            if named and p.status() != psutil.STATUS_ZOMBIE:
                found.append(Job(named[0], p, named[1], p.create_time()))
        except psutil.Error:
            continue
    return found


def handlers(root: psutil.Process) -> list[psutil.Process]:
    """The worker's forked handlers (own process group; the warm-up probe is not one)."""
    found = []
    for p in _descendants(root):
        try:
            if "snaketune.runtime.worker" not in p.cmdline() or p.ppid() == root.pid:
                continue
            if os.getpgid(p.pid) == p.pid and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except (psutil.Error, ProcessLookupError):
            continue
    return found


def freeze(proc: psutil.Process, timeout: float = 5) -> bool:
    """SIGSTOP a process; True once it is stopped (alive, and unable to finish on its own).

    SIGSTOP is delivered asynchronously: wait for the stopped state. A process that ended (or
    never stopped) is resumed again, so a missed strike leaves nothing frozen behind.
    """
    try:
        proc.suspend()
    except psutil.Error:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = proc.status()
        except psutil.Error:
            return False
        if status in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP):
            return True
        if status in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            return False
        time.sleep(0.001)
    thaw(proc)
    return False


def kill_and_confirm(proc: psutil.Process, timeout: float = 30) -> bool:
    """kill -9 a (frozen) process and wait until its pid is gone; True if it died from it."""
    try:
        proc.kill()
    except psutil.NoSuchProcess:
        return False
    try:
        proc.wait(timeout=timeout)
    except psutil.TimeoutExpired:
        raise AssertionError(f"pid {proc.pid} survived kill -9 for {timeout} s") from None
    # Gone for good, or a zombie its parent has not reaped yet: either way no longer running.
    return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE


def thaw(proc: psutil.Process) -> None:
    try:
        proc.resume()
    except psutil.Error:
        pass


def strike(snakemake, kill: Kill, target: Job, rng: random.Random) -> None:
    """Kill ``kill.victim`` while ``target`` (a job of ``kill.phase``) runs; fill in what was hit.

    The target job is frozen first, so the kill provably happens while its phase is running:
    a job that already ended cannot be frozen and the strike counts as a miss.
    """
    root = psutil.Process(snakemake.pid)
    if kill.victim == "snakemake":
        if not freeze(target.proc):
            kill.detail = f"{kill.phase} job {target.proc.pid} ended before the strike"
            return
        try:
            snakemake.kill()
            code = snakemake.wait(timeout=30)
            assert code == -9, f"snakemake exited {code}, not by kill -9"
            # The job was frozen across the kill: it was still running when Snakemake died.
            kill.hit = target.proc.is_running() and target.proc.status() != psutil.STATUS_ZOMBIE
            kill.pid = snakemake.pid
            kill.detail = f"snakemake {snakemake.pid} killed while {target.kind} {target.proc.pid} ran {kill.phase}"
        finally:
            thaw(target.proc)  # an orphan now, as after a real kill -9 of Snakemake
        return
    victim = target.proc
    if kill.victim == "handler":
        # The handler is forked once the worker accepts the client (after a warm-up probe of up
        # to 3 s for the first trials): wait for one that is surely this phase's, i.e. forked
        # after this phase's clients while only they run.
        deadline = time.monotonic() + 5
        mine: list[psutil.Process] = []
        running: list[Job] = []
        while not mine and time.monotonic() < deadline and snakemake.poll() is None:
            running = jobs(root)
            if running and all(j.phase == kill.phase for j in running):
                since = min(j.created for j in running)
                mine = [h for h in handlers(root) if _created(h) >= since]
            if not mine:
                time.sleep(0.005)
        if mine:
            victim = rng.choice(sorted(mine, key=lambda p: p.pid))
        else:
            # None attributable to this phase: kill one of its clients instead.
            kill.detail = "no attributable handler; "
            kill.victim = target.kind
            current = [j for j in running if j.phase == kill.phase]
            victim = (rng.choice(current) if current else target).proc
    if kill.victim == "client" and target.kind == "calls":
        kill.victim = "calls"
    if not freeze(victim):
        kill.detail += f"{kill.victim} {victim.pid} of {kill.phase} ended before the strike"
        return
    kill.pid = victim.pid
    kill.hit = kill_and_confirm(victim)
    kill.detail += f"{kill.victim} {victim.pid} of {kill.phase} killed"


def _created(p: psutil.Process) -> float:
    try:
        return p.create_time()
    except psutil.Error:
        return -1.0


@dataclass
class TrialTracker:
    """Every trial file's identity from the first time it is seen after a run ended."""

    folder: Path
    first: dict[str, tuple] = field(default_factory=dict)
    relinked: set[str] = field(default_factory=set)

    def observe(self) -> None:
        for path in sorted(self.folder.glob("*.json")):
            try:
                stat = path.stat()
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            now = (stat.st_ino, stat.st_mtime_ns, hashlib.sha256(data).hexdigest())
            seen = self.first.setdefault(path.name, now + (stat.st_ctime_ns,))
            if stat.st_ctime_ns != seen[3]:
                self.relinked.add(path.name)  # inode metadata changed: unlinked + re-linked, or touched

    def changed(self, *, mtime: bool = True) -> dict[str, tuple]:
        """Files whose content or inode (and, with ``mtime``, mtime) differ from their first
        sighting, or that vanished."""
        out = {}
        for name, (ino, mtime_ns, sha, _) in self.first.items():
            path = self.folder / name
            if not path.exists():
                out[name] = ("missing",)
                continue
            stat = path.stat()
            was = (ino, mtime_ns if mtime else None, sha)
            now = (stat.st_ino, stat.st_mtime_ns if mtime else None, hashlib.sha256(path.read_bytes()).hexdigest())
            if now != was:
                out[name] = ((was[0], was[1], was[2][:12]), (now[0], now[1], now[2][:12]))
        return out

    def touched(self) -> set[str]:
        """Files whose mtime changed (with the same inode and content)."""
        return {
            n for n, (ino, mtime_ns, _, _) in self.first.items() if (self.folder / n).stat().st_mtime_ns != mtime_ns
        }


def wait_for(predicate, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
