"""Process helpers shared by the trial runner and the warm worker (Linux, no-ops elsewhere)."""

from __future__ import annotations

import collections
import contextlib
import ctypes
import heapq
import logging
import os
import select
import signal
import struct
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

# The environment variables that size a new process's native thread pools (OpenMP, OpenBLAS,
# MKL). scripts/job_client.py keeps its own copy: it imports nothing it does not need.
THREAD_POOL_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_thread_pools(threads: int = 1) -> None:
    """Limit every native thread pool loaded in this process to ``threads`` (threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:
        pass


def use_threads(threads: int) -> None:
    """Run this process's native thread pools with ``threads`` threads: those loaded now
    (:func:`limit_thread_pools`) and those loaded later (their environment variables). Nothing
    to do when the variables say so already: they were set with the pools (a warm worker at one
    thread, a job's Python started with them), and threadpoolctl takes 5-8 ms to look."""
    if all(os.environ.get(var) == str(threads) for var in THREAD_POOL_VARS):
        return
    for var in THREAD_POOL_VARS:
        os.environ[var] = str(threads)
    limit_thread_pools(threads)


def set_parent_death_signal(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, sig)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def kill_group(pgid: int) -> None:
    """SIGKILL every process of group ``pgid`` (a worker's handler and the trial it forked; a
    command and what it started). A group already gone is fine."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def fork(child: Callable[[], int | None], name: str | None = None) -> int:
    """Fork; the child runs ``child()`` and exits with the status it returns (0 for None), never
    returning into the caller. An exception in it (BaseException too: a ``sys.exit`` in user
    code) is printed to its stderr (prefixed by ``name``) and exits 1. Returns the child's pid.

    Both sides flush stdout/stderr: the parent so the child does not print the parent's
    buffered text again, the child because ``os._exit`` would drop its own.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            status = child() or 0
        except BaseException:  # noqa: BLE001 - reported, and the parent sees the status
            print(f"{name}: {traceback.format_exc()}" if name else traceback.format_exc(), file=sys.stderr)
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(status)
    return pid


@dataclass(frozen=True)
class Forked:
    """What :func:`fork_with_deadline` saw of its child."""

    output: bytes  # everything the child wrote to its pipe
    status: int | None  # its wait status; None when it was killed at the deadline

    @property
    def timed_out(self) -> bool:
        return self.status is None

    @property
    def ok(self) -> bool:
        return self.status is not None and os.waitstatus_to_exitcode(self.status) == 0

    def how(self) -> str:
        """How the child ended, for a message."""
        if self.status is None:
            return "killed at its deadline"
        if os.WIFSIGNALED(self.status):
            return f"signal {os.WTERMSIG(self.status)}"
        return f"exit status {os.waitstatus_to_exitcode(self.status)}"


def fork_with_deadline(function: Callable[[], bytes | None], timeout: float, *, quiet: bool = False) -> Forked:
    """``function()`` run in a forked child, its bytes returned through a pipe, the child killed
    once ``timeout`` seconds pass before it has written them all and exited.

    A fork (not a thread or an alarm) because code stuck in C (a fit, a probe) can only be stopped
    by a signal, and a fork starts in milliseconds with every import and all data the parent
    loaded. The child dies with its parent (``PR_SET_PDEATHSIG``). With ``quiet`` it runs with
    stdout/stderr discarded, logging off and one thread in native pools (see :func:`call_in_fork`).
    """
    read_fd, write_fd = os.pipe()

    def child() -> int:
        os.close(read_fd)
        set_parent_death_signal(signal.SIGKILL)
        if quiet:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            # Fresh stream objects: the inherited ones' buffer locks may be held by a thread
            # that does not exist here (warnings and prints would block on them forever).
            sys.stdout = sys.stderr = open(devnull, "w", closefd=False)  # noqa: SIM115
            logging.disable(logging.CRITICAL)
            limit_thread_pools(1)
        payload = function() or b""
        with os.fdopen(write_fd, "wb") as fh:
            fh.write(payload)
        return 0

    try:
        pid = fork(child)
    except OSError:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    chunks = []
    deadline = time.monotonic() + timeout
    # The child's exit ends the wait too, not only the pipe's end of file: a process the child
    # started (user code's own helpers) may hold the pipe's write end long after it is done.
    exited = _pidfd(pid)
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            ready = select.select([read_fd, *exited], [], [], remaining)[0]
            if read_fd in ready:
                chunk = os.read(read_fd, 1 << 16)
                if not chunk:  # all written: the child is exiting
                    return Forked(b"".join(chunks), os.waitpid(pid, 0)[1])
                chunks.append(chunk)
            elif ready:  # the child exited: what it wrote is in the pipe already
                os.set_blocking(read_fd, False)
                while chunk := _read_available(read_fd):
                    chunks.append(chunk)
                return Forked(b"".join(chunks), os.waitpid(pid, 0)[1])
    finally:
        os.close(read_fd)
        for fd in exited:
            os.close(fd)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)
    return Forked(b"".join(chunks), None)


def _pidfd(pid: int) -> list[int]:
    """A descriptor that becomes readable when ``pid`` exits (Linux 5.3+), or none."""
    try:
        return [os.pidfd_open(pid)]
    except (AttributeError, OSError):
        return []


def _read_available(fd: int) -> bytes:
    """What a non-blocking pipe holds now (b"" at its end, or when a writer still holds it)."""
    try:
        return os.read(fd, 1 << 16)
    except BlockingIOError:
        return b""


def call_in_fork(function, timeout: float):
    """``function()`` run in a forked child of this process, killed after ``timeout`` seconds.

    For a short piece of user code (a probe fit, a timing) that must not block or crash the
    calling process (Snakemake's). Returns the JSON value ``function`` returned, or None if it
    raised, crashed, ran out of time, or this process cannot fork.

    The parent is Snakemake's, which has threads (its log listener, our progress line): a lock
    one of them held at the fork stays held in the child. So the child runs ``quiet`` (new
    stdout/stderr objects, logging off, one thread in native pools: an OpenMP pool the parent
    started does not survive a fork), and a result counts once its last byte (a newline) has
    arrived, whatever the child's exit status.
    """
    import json

    try:
        forked = fork_with_deadline(lambda: json.dumps(function()).encode() + b"\n", timeout, quiet=True)
    except OSError:
        return None
    if not forked.output.endswith(b"\n"):  # raised, crashed, or ran out of time before the end
        return None
    try:
        return json.loads(forked.output)
    except ValueError:
        return None


def run_in_forks(tasks: dict, parallel: int | None = None) -> dict[str, int]:
    """Run independent ``tasks`` (name -> callable), each in a forked child, ``parallel`` at a
    time (default: the CPUs this process may use).

    For our own CPU-bound steps that do not share state (figures of the plots job): the children
    inherit every import, so they start in milliseconds. A child's exception goes to stderr
    (the job's log) with its traceback. Returns name -> exit status (0 = done) of every task.
    """
    parallel = parallel or len(os.sched_getaffinity(0))
    pids: dict[int, str] = {}
    statuses = {}

    def wait_one() -> None:
        pid, status = os.wait()
        if pid in pids:
            statuses[pids.pop(pid)] = os.waitstatus_to_exitcode(status)

    def child(task) -> None:
        set_parent_death_signal(signal.SIGKILL)
        task()

    for name, task in tasks.items():
        while len(pids) >= parallel:
            wait_one()
        pids[fork(partial(child, task), name)] = name
    while pids:
        wait_one()
    return statuses


@dataclass(frozen=True)
class PoolChild(Forked):
    """What :func:`fork_pool` saw of one child: its pid, its bytes and its wait status."""

    pid: int = 0


# A child's request (the item it ended, or _NO_ITEM, and how long that took) and the parent's
# answer (the next item's index). Each is far below PIPE_BUF: written and read whole.
_REQUEST = struct.Struct("<id")
_ITEM = struct.Struct("<I")
_NO_ITEM = -1
# A running child's descriptors in the parent: [output, requests, items, pidfd...]; None once closed.
_REQUESTS, _ITEMS = 1, 2


class _Queue:
    """The order a pool hands its items out in. Without keys: their order. With ``keys`` (items
    of one key cost about the same: a configuration's folds): items whose key has not ended
    once yet, in order, then the others longest first by the longest time an item of their key
    took so far (a trial restored from the cache takes ~0 s), so a round's last items are its
    shortest and its children end together (longest processing time first, the classic rule
    for a short idle tail)."""

    def __init__(self, n_items: int, keys=None):
        self.keys = keys
        self.order = collections.deque(range(n_items))
        self.known: dict = {}  # key -> the longest time an ended item of it took
        self.ready: list[tuple[float, int]] = []  # (-seconds, item) of known keys: a heap

    def ended(self, item: int, seconds: float) -> None:
        if self.keys is not None and 0 <= item < len(self.keys):
            key = self.keys[item]
            self.known[key] = max(self.known.get(key, 0.0), seconds)

    def next(self) -> int | None:
        while self.order:
            item = self.order.popleft()
            if self.keys is None or self.keys[item] not in self.known:
                return item
            heapq.heappush(self.ready, (-self.known[self.keys[item]], item))
        while self.ready:
            seconds, item = heapq.heappop(self.ready)
            if -seconds == self.known[self.keys[item]]:
                return item
            heapq.heappush(self.ready, (-self.known[self.keys[item]], item))  # its key took longer since
        return None

    def clear(self) -> None:
        self.order.clear()
        self.ready.clear()


def fork_pool(
    n_items: int,
    workers: int,
    child: Callable[[Callable[[], int | None]], tuple[int, bytes]],
    keys: list | None = None,
) -> list[PoolChild]:
    """Items ``0 .. n_items - 1`` run by ``workers`` forked children, each taking the next item
    when it is free (dynamic dispatch: a child with short items takes more of them).

    ``child(next_item)`` runs in each child: ``next_item()`` is the next index, or None when the
    queue is empty; it returns (exit status, bytes for the parent). Each call asks this process
    through a pipe, saying how long the child's last item took; the answer follows ``keys``
    (:class:`_Queue`). Once a child fails (a non-zero status, an exception, a signal such as
    ``kill -9``) the queue is emptied: the others finish the item they hold and stop, so nothing
    waits on a dead child. SIGTERM and SIGINT reaching this process are passed on to the
    children; once they have ended, the signal is raised here again with the handler this
    process had. Children die with this process (``PR_SET_PDEATHSIG``). The caller must have no
    other thread (it would not exist in the children, holding whatever lock it held). Returns
    every child's outcome, in the order they were forked.
    """
    if n_items <= 0:
        return []
    queue = _Queue(n_items, keys)
    # pid -> [its output's read end, its requests' read end (None at their end), its items'
    # write end (None once closed: the child reads their end), its pidfd if any]
    running: dict[int, list] = {}
    chunks: dict[int, list[bytes]] = {}
    ended: dict[int, PoolChild] = {}
    received: list[int] = []

    def forward(signum, frame) -> None:
        received.append(signum)
        for pid in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    previous = {}
    with contextlib.suppress(ValueError):  # not the main thread: signals are not ours to handle
        previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}

    def run_child(out_w: int, request_w: int, item_r: int, inherited: list[int], mask) -> int:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if mask is not None:  # blocked from before the fork until its own handlers are back
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        set_parent_death_signal(signal.SIGKILL)
        for fd in inherited:
            os.close(fd)
        last = [None, time.monotonic()]  # its first item is in the pipe already: no request

        def next_item() -> int | None:
            if last[0] is not None:
                os.write(request_w, _REQUEST.pack(last[0], time.monotonic() - last[1]))
            answer = os.read(item_r, _ITEM.size)
            last[:] = [_ITEM.unpack(answer)[0] if answer else _NO_ITEM, time.monotonic()]
            return last[0] if answer else None

        status, payload = child(next_item)
        with os.fdopen(out_w, "wb") as fh:
            fh.write(payload)
        return status

    def parent_fds(pid: int) -> list[int]:
        return [fd for fd in running[pid] if fd is not None]

    def stop_giving(pid: int) -> None:
        fds = running[pid]
        if fds[_ITEMS] is not None:
            os.close(fds[_ITEMS])
            fds[_ITEMS] = None

    def answer(pid: int) -> None:
        fds = running[pid]
        try:
            data = os.read(fds[_REQUESTS], _REQUEST.size)  # one request: whole (below PIPE_BUF)
        except BlockingIOError:
            return
        if not data:  # the end of its requests: it exited, or was killed
            os.close(fds[_REQUESTS])
            fds[_REQUESTS] = None
            stop_giving(pid)
            return
        item, seconds = _REQUEST.unpack(data)
        queue.ended(item, seconds)
        following = queue.next() if fds[_ITEMS] is not None else None
        if following is None:
            stop_giving(pid)
            return
        try:
            os.write(fds[_ITEMS], _ITEM.pack(following))
        except BrokenPipeError:  # killed meanwhile: its exit empties the queue below
            stop_giving(pid)

    order = []
    try:
        for _ in range(min(workers, n_items)):
            if received:  # stopped while forking: no more children
                break
            out_r, out_w = os.pipe()
            request_r, request_w = os.pipe()
            item_r, item_w = os.pipe()
            inherited = [fd for pid in running for fd in parent_fds(pid)] + [out_r, request_r, item_w]
            first = queue.next()
            os.write(item_w, _ITEM.pack(first))  # there when it starts: no request for it
            # A signal between the fork and the child's own handlers would reach ours (forward):
            # held until the child has them, and here until it is in `running`.
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, previous) if previous else None
            try:
                try:
                    pid = fork(partial(run_child, out_w, request_w, item_r, inherited, mask))
                except OSError:
                    for fd in (out_r, request_r, item_w):
                        os.close(fd)
                    queue.order.appendleft(first)  # for the children there are
                    if running:
                        break  # fewer children than asked: they take every item all the same
                    raise
                finally:
                    for fd in (out_w, request_w, item_r):
                        os.close(fd)
                os.set_blocking(request_r, False)
                order.append(pid)
                running[pid] = [out_r, request_r, item_w, *_pidfd(pid)]
                chunks[pid] = []
            finally:
                if mask is not None:
                    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        while running:
            watched = [fd for pid in running for i, fd in enumerate(running[pid]) if i != _ITEMS and fd is not None]
            ready = set(select.select(watched, [], [])[0])
            for pid in list(running):
                out_r, request_r, _, *pidfd = running[pid]
                if request_r in ready:
                    answer(pid)
                if out_r in ready and (chunk := os.read(out_r, 1 << 16)):
                    chunks[pid].append(chunk)
                    continue
                if out_r not in ready and not ready.intersection(pidfd):
                    continue
                # Its output's end or its exit: what it wrote is in the pipe already.
                os.set_blocking(out_r, False)
                while chunk := _read_available(out_r):
                    chunks[pid].append(chunk)
                for fd in parent_fds(pid):
                    os.close(fd)
                del running[pid]
                ended[pid] = PoolChild(b"".join(chunks.pop(pid)), os.waitpid(pid, 0)[1], pid)
                if not ended[pid].ok:
                    queue.clear()
                    for other in running:
                        stop_giving(other)
    finally:
        for pid in running:  # only after an error here
            kill_and_reap(pid)
            for fd in parent_fds(pid):
                os.close(fd)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        os.kill(os.getpid(), received[0])  # this process's own handler, now restored
    return [ended[pid] for pid in order]


def kill_and_reap(pid: int) -> None:
    """SIGKILL a child and reap it (one already gone is fine)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
