"""Run a command as a whole process and measure it: wall time, CPU of the process tree, memory.

Memory is measured two ways:

* ``peak_tree_rss_mb``: the largest *sum* of RSS over the command's process tree, sampled with
  psutil every ``interval`` seconds (50 ms). Forked children share pages with their parent
  (copy-on-write), so the sum over-counts shared memory; it is an upper bound.
* ``max_rss_mb``: ``ru_maxrss`` from ``wait4`` — the largest single process of the tree (the
  command itself or any descendant it waited for), exact, not sampled.

Processes whose command line contains ``snaketune.runtime.worker`` (the warm worker and the handlers and
trials it forks, which keep its command line) are also tracked on their own.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field

import psutil

MB = 1024 * 1024
WORKER_MARK = "snaketune.runtime.worker"


@dataclass
class Measurement:
    cmd: list[str]
    returncode: int
    wall_s: float
    cpu_s: float  # user + system of the command and every descendant it waited for
    max_rss_mb: float  # ru_maxrss: largest single process of the tree
    peak_tree_rss_mb: float  # sampled: largest sum of RSS over the tree
    peak_single_rss_mb: float  # sampled: largest single process
    peak_worker_rss_mb: float  # sampled: the warm worker process itself (0 without one)
    peak_worker_family_rss_mb: float  # sampled: sum over the worker and its forks
    peak_worker_single_rss_mb: float  # sampled: largest process of the worker family
    peak_processes: int
    samples: int
    sampler_cpu_s: float
    loadavg_before: list[float] = field(default_factory=list)
    loadavg_after: list[float] = field(default_factory=list)
    start_epoch: float = 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cmd"] = " ".join(self.cmd)
        return d


class _Sampler(threading.Thread):
    def __init__(self, pid: int, interval: float):
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.stop_event = threading.Event()
        self.peak_tree = self.peak_single = 0
        self.peak_worker = self.peak_worker_family = self.peak_worker_single = 0
        self.peak_processes = 0
        self.samples = 0
        self.cpu = 0.0
        self._is_worker: dict[int, bool] = {}

    def _worker(self, proc: psutil.Process) -> bool:
        known = self._is_worker.get(proc.pid)
        if known is None:
            try:
                known = any(WORKER_MARK in part for part in proc.cmdline())
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                known = False
            self._is_worker[proc.pid] = known
        return known

    def sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
            procs = [root] + root.children(recursive=True)
        except psutil.NoSuchProcess:
            return
        total = single = worker = family = family_single = 0
        n = 0
        for proc in procs:
            try:
                rss = proc.memory_info().rss
                ppid = proc.ppid()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            n += 1
            total += rss
            single = max(single, rss)
            if self._worker(proc):
                family += rss
                family_single = max(family_single, rss)
                parent_is_worker = self._is_worker.get(ppid, False)
                if not parent_is_worker:
                    worker = max(worker, rss)
        self.samples += 1
        self.peak_tree = max(self.peak_tree, total)
        self.peak_single = max(self.peak_single, single)
        self.peak_worker = max(self.peak_worker, worker)
        self.peak_worker_family = max(self.peak_worker_family, family)
        self.peak_worker_single = max(self.peak_worker_single, family_single)
        self.peak_processes = max(self.peak_processes, n)

    def run(self) -> None:
        c0 = time.thread_time()
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(self.interval)
        self.cpu = time.thread_time() - c0


def epoch(iso: str) -> float:
    """Seconds since the epoch of an ISO 8601 time (a trial record's ``start``/``end``)."""
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def timeline(out, t0: float) -> dict:
    """Seconds after ``t0`` at which each step of the study in ``out`` (a Path) last wrote its
    output (file mtimes; negative: not written since ``t0``)."""
    marks = {
        "prepare_data": next(iter(sorted((out / "data").glob("*/meta.json"))), None),
        "make_splits": next(iter(sorted((out / "splits").glob("*.npz"))), None),
        "aggregate": out / "leaderboard.csv",
        "plots": max((out / "plots").glob("*.png"), key=lambda p: p.stat().st_mtime, default=None),
        "refit": out / "refit.json",
        "report_pages": out / "report" / "study.html",
    }
    return {name: round(p.stat().st_mtime - t0, 3) for name, p in marks.items() if p is not None and p.exists()}


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def run(
    cmd: list[str],
    *,
    cwd=None,
    env=None,
    log_path=None,
    timeout: float = 3600,
    interval: float = 0.05,
) -> Measurement:
    """Run ``cmd`` to completion (stdout+stderr to ``log_path``) and measure it."""
    before = loadavg()
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    try:
        start_epoch = time.time()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        sampler = _Sampler(proc.pid, interval)
        sampler.start()
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop_event.set()
        sampler.join()
    finally:
        if log_path:
            log.close()
    return Measurement(
        cmd=[str(c) for c in cmd],
        returncode=proc.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        max_rss_mb=usage.ru_maxrss / 1024,  # kB on Linux
        peak_tree_rss_mb=sampler.peak_tree / MB,
        peak_single_rss_mb=sampler.peak_single / MB,
        peak_worker_rss_mb=sampler.peak_worker / MB,
        peak_worker_family_rss_mb=sampler.peak_worker_family / MB,
        peak_worker_single_rss_mb=sampler.peak_worker_single / MB,
        peak_processes=sampler.peak_processes,
        samples=sampler.samples,
        sampler_cpu_s=sampler.cpu,
        loadavg_before=before,
        loadavg_after=loadavg(),
        start_epoch=start_epoch,
    )
