"""Process helpers shared by the trial runner and the warm worker (Linux, no-ops elsewhere)."""

from __future__ import annotations

import ctypes
import signal

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


def set_parent_death_signal(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, sig)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def call_in_fork(function, timeout: float):
    """``function()`` run in a forked child of this process, killed after ``timeout`` seconds.

    For a short piece of user code (a probe fit, a timing) that must not block or crash the
    calling process (Snakemake's): a fork starts in milliseconds with every import the parent
    has. The child runs with one thread in native pools (an OpenMP pool the parent started does
    not survive a fork) and with stdout/stderr discarded. Returns the JSON value ``function``
    returned, or None if it raised, crashed, or ran out of time.

    The parent is Snakemake's, which has threads (its log listener, our progress line): a lock
    one of them held at the fork stays held in the child. So the child writes through new
    stdout/stderr objects with logging off, and a result counts once its last byte (a newline)
    has arrived, whatever the child's exit status (it is killed once the pipe closes).
    """
    import json
    import logging
    import os
    import select
    import sys
    import time

    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        return None
    if pid == 0:  # child: never returns into the caller
        status = 1
        try:
            os.close(read_fd)
            set_parent_death_signal(signal.SIGKILL)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            # Fresh stream objects: the inherited ones' buffer locks may be held by a thread
            # that does not exist here (warnings and prints would block on them forever).
            sys.stdout = sys.stderr = open(devnull, "w", closefd=False)  # noqa: SIM115
            logging.disable(logging.CRITICAL)
            limit_thread_pools(1)
            payload = json.dumps(function()).encode() + b"\n"
            with os.fdopen(write_fd, "wb") as fh:
                fh.write(payload)
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            if not select.select([read_fd], [], [], remaining)[0]:
                break
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
    payload = b"".join(chunks)
    if not payload.endswith(b"\n"):  # raised, crashed, or ran out of time before the end
        return None
    try:
        return json.loads(payload)
    except ValueError:
        return None


def run_in_forks(tasks: dict, parallel: int | None = None) -> dict[str, int]:
    """Run independent ``tasks`` (name -> callable), each in a forked child, ``parallel`` at a
    time (default: the CPUs this process may use).

    For our own CPU-bound steps that do not share state (figures of the plots job): the children
    inherit every import, so they start in milliseconds. A child's exception goes to stderr
    (the job's log) with its traceback. Returns name -> exit status (0 = done) of every task.
    """
    import os
    import sys
    import traceback

    parallel = parallel or len(os.sched_getaffinity(0))
    pids: dict[int, str] = {}
    statuses = {}

    def wait_one() -> None:
        pid, status = os.wait()
        if pid in pids:
            statuses[pids.pop(pid)] = os.waitstatus_to_exitcode(status)

    for name, task in tasks.items():
        while len(pids) >= parallel:
            wait_one()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # child: never returns into the caller
            status = 1
            try:
                set_parent_death_signal(signal.SIGKILL)
                task()
                status = 0
            except BaseException:  # noqa: BLE001 - reported, and the parent sees the status
                print(f"{name}: {traceback.format_exc()}", file=sys.stderr)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status)
        pids[pid] = name
    while pids:
        wait_one()
    return statuses
