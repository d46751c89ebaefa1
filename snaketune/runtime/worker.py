"""The warm worker: one long-lived process per study run that has Python, scikit-learn and the
prepared data loaded, and runs each trial in a forked child.

A job's command (``scripts/job_client.py``) connects over an abstract Unix socket, hands over a
registered call (:mod:`snaketune.runtime.calls`) and waits; the worker forks a handler for the
connection, which runs the call (trials fork once more under ``trial_timeout``) and replies with
the exit status and log. Forking a process that already imported scikit-learn costs
milliseconds; a new Python costs 1-2 s.

The accept loop never runs user code: a slow, hanging or crashing configuration can delay only its
own job. The one exception is bounded: the first time an estimator is seen, a forked probe fits it
with the config's fixed parameters (never a searched configuration) on a few rows; only if that
finishes within :data:`WARM_UP_SECONDS` does the worker repeat it itself, so lazy imports and caches
of a first fit are paid once, not in every forked trial.

Lifecycle: started while the main Snakemake process parses the workflow, so its imports overlap
the parse, adopted by the Snakefile's ``onstart`` on local runs (else stopped there, or ended by
:data:`ADOPT_SECONDS` without a connection), stopped by ``onsuccess`` / ``onerror``, and tied to the Snakemake process with ``PR_SET_PDEATHSIG`` plus a parent-pid poll,
so it never outlives the run — not even a ``kill -9`` of Snakemake. It serves only the study
folder it was started for; the client falls back to running in-process when no worker answers.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
import traceback
from pathlib import Path

from snaketune.base.procs import (
    THREAD_POOL_VARS,
    fork,
    fork_with_deadline,
    kill_group,
    limit_thread_pools,
    set_parent_death_signal,
    use_threads,
)
from snaketune.runtime.protocol import ENV_ADDRESS, read_args, recv_message, send_message

WARM_UP_SECONDS = 3.0
# A worker started while Snakemake parses the workflow is adopted at onstart (a first connection);
# one nobody connects to within this time belongs to a run that will not use it.
ADOPT_SECONDS = 120.0


class Worker:
    """Accept trial requests for one study and run each in a forked child.

    Parameters
    ----------
    address : str
        Abstract Unix socket name (no file is created).
    study_dir : str
        ``<output_dir>/<study>``, relative to ``cwd``; requests for other folders are refused.
    parent_pid : int
        The Snakemake process; the worker exits when it is gone.
    imports : sequence of str
        The study's own modules (its estimator's, Optuna's), imported after scikit-learn while
        Snakemake builds the DAG, so the first trial job does not import them.
    """

    def __init__(self, address: str, study_dir: str, parent_pid: int, imports=()):
        self.address = address
        self.imports = list(imports)
        self.study_dir = study_dir.rstrip("/") + "/"
        self.parent_pid = parent_pid
        self.cwd = os.getcwd()
        # Handler pid -> the client's connection; a client that hangs up cancels its handler.
        self.children: dict[int, socket.socket] = {}
        self.cancelled: set[int] = set()  # handlers the worker killed itself (their client hung up)
        self.warmed: set = set()
        self.to_import: list[str] = []

    def serve(self) -> None:
        set_parent_death_signal()
        # What the last steps need first (0.4 s), then listen; scikit-learn (0.5 s more) one
        # module at a time between requests, so a run with no trial to compute (an edit
        # reverted) has its leaderboard, figures and report served without waiting for it.
        # Every forked child inherits what was imported.
        from snaketune.runtime.calls import HEAVY_MODULES, LIGHT_MODULES

        # One thread for every pool: those loaded later start so (and base.procs.use_threads
        # reads these variables as the pools' state), those loaded so far are limited below.
        for pool in THREAD_POOL_VARS:
            os.environ[pool] = "1"
        for module in LIGHT_MODULES:
            _import(module)
        # One thread for every pool loaded so far (see _warm_up: no pool may exist at fork time);
        # numpy's BLAS is loaded now, so a light call's fork inherits one thread.
        limit_thread_pools(1)
        self.to_import = list(HEAVY_MODULES) + [m for m in self.imports if m not in HEAVY_MODULES]

        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind("\0" + self.address)
        listener.listen(64)
        signal.signal(signal.SIGTERM, self._terminate)
        print(f"worker {os.getpid()} serving {self.study_dir} at @{self.address}", flush=True)
        adopt_by = time.monotonic() + ADOPT_SECONDS
        try:
            while self._parent_alive() and (adopt_by is None or time.monotonic() < adopt_by):
                wait = 0 if self.to_import else 0.5
                ready, _, _ = select.select([listener, *self.children.values()], [], [], wait)
                self._reap()
                for pid, conn in list(self.children.items()):
                    if conn in ready and not _peek(conn):
                        # The client hung up (its job died, or it has its reply): stop the handler.
                        kill_group(pid)
                        self.cancelled.add(pid)
                if listener not in ready and self.to_import:
                    self._import_next()
                if listener in ready:
                    adopt_by = None
                    try:
                        conn, _ = listener.accept()
                    except OSError as exc:  # e.g. out of file descriptors: the client retries in-process
                        print(f"accept failed: {exc}", flush=True)
                        continue
                    try:
                        self._handle(conn, listener)
                    except Exception:  # noqa: BLE001 - one request's failure must not end the worker
                        # The client reads EOF and runs its call in a new Python.
                        print(f"request not handled:\n{traceback.format_exc()}", flush=True)
                        if conn not in self.children.values():
                            conn.close()
            why = "Snakemake is gone" if not self._parent_alive() else f"not adopted within {ADOPT_SECONDS:g} s"
            print(f"worker {os.getpid()} exiting: {why}", flush=True)
        finally:
            listener.close()
            self._kill_children()

    def _import_next(self) -> None:
        _import(self.to_import.pop(0))
        if not self.to_import:
            limit_thread_pools(1)  # scikit-learn's OpenMP is loaded now

    def _parent_alive(self) -> bool:
        return os.getppid() == self.parent_pid

    def _terminate(self, signum, frame):
        # stop() at the end of the run, or PR_SET_PDEATHSIG: the Snakemake thread that started us ended.
        print(f"worker {os.getpid()} stopping: {signal.Signals(signum).name}", flush=True)
        self._kill_children()
        os._exit(0)

    def _kill_children(self) -> None:
        for pid in list(self.children):
            kill_group(pid)
        self._reap()

    def _reap(self) -> None:
        for pid in list(self.children):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if done:
                conn = self.children.pop(pid)
                if os.WIFSIGNALED(status) and pid not in self.cancelled:
                    _report_killed(conn, pid, os.WTERMSIG(status))
                self.cancelled.discard(pid)
                conn.close()

    def _handle(self, conn: socket.socket, listener: socket.socket) -> None:
        try:
            conn.settimeout(10)
            request = recv_message(conn)
            conn.settimeout(None)
        except (OSError, ValueError, ConnectionError):
            conn.close()
            return
        reason = self._refusal(request) or foreign_peer(conn)
        if reason:
            send_message(conn, {"refused": reason})
            conn.close()
            return
        from snaketune.runtime.calls import LIGHT_CALLS

        while self.to_import and request["call"] not in LIGHT_CALLS:
            self._import_next()
        args = _trials_args(request)
        # A job that runs its trials on forks takes every core: one that waited for the warm-up
        # would idle them all (0.12 s, the first job of a run), and its own process loads the
        # inputs its forks share anyway. Its warm-up comes after the fork, for the next jobs.
        pooled = bool(args and args.get("trial_threads"))
        if args and not pooled:
            self._warm_up(args)

        def handler() -> int:
            listener.close()
            # Not the worker's: its SIGTERM handler (which kills the handlers) and the other jobs'
            # connections (held open here, their clients would wait for this handler too).
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            for other in self.children.values():
                other.close()
            os.setpgid(0, 0)  # own process group: the worker can kill a handler and its trial
            return handle_request(request, conn, self.study_dir)

        try:
            pid = fork(handler)
        except OSError as exc:  # no process to spare: the client runs the call itself
            send_message(conn, {"refused": f"worker cannot fork: {exc}"})
            conn.close()
            return
        self.children[pid] = conn
        if pooled:
            self._warm_up(args)

    def _warm_up(self, args: dict) -> None:
        """Warm the estimator of a trials request (its arguments) up once, if a probe shows that
        is quick. Never fatal: it is an optimisation.

        Thread pools are limited to one thread in the worker (see serve), so no OpenMP pool
        exists when we fork: GNU OpenMP is not fork-safe once its pool has started.
        """
        try:
            spec = args["specs"][0]
        except (KeyError, IndexError, TypeError):
            return
        if not isinstance(spec, dict) or spec.get("command"):  # a command study: no estimator to warm up
            return
        key = repr(
            [spec.get(k) for k in ("data_dir", "splits", "estimator", "allowed_modules", "seed", "scoring", "scorers")]
        )
        if key in self.warmed:
            return
        self.warmed.add(key)
        # The probe may hang or crash: the worker waits for it WARM_UP_SECONDS at most.
        try:
            probe = fork_with_deadline(lambda: warm_up(spec), WARM_UP_SECONDS, quiet=True)
            if probe.timed_out:
                print(f"warm-up skipped: over {WARM_UP_SECONDS:g} s for {spec.get('estimator')}", flush=True)
            elif probe.ok:
                warm_up(spec)
            else:
                print(f"warm-up skipped: the probe failed for {spec.get('estimator')}", flush=True)
        except Exception as exc:  # noqa: BLE001 - a warm-up is an optimisation: never fatal
            print(f"warm-up skipped: {type(exc).__name__}: {exc}", flush=True)

    def _refusal(self, request: dict) -> str | None:
        from snaketune.runtime.calls import CALLS

        if request.get("cwd") != self.cwd:
            return f"worker serves {self.cwd}, not {request.get('cwd')}"
        if request.get("call") not in CALLS:
            return f"unknown call {request.get('call')!r}"
        if not isinstance(request.get("args"), str):
            return "malformed request"
        return None


def _trials_args(request: dict) -> dict | None:
    """A trials request's arguments (None for another call, or arguments that cannot be read:
    the handler reports those)."""
    if request["call"] != "trials":
        return None
    try:
        args = read_args(request["args"])
    except (OSError, ValueError, TypeError):
        return None
    return args if isinstance(args, dict) else None


def _import(module: str) -> bool:
    import importlib

    try:
        importlib.import_module(module)
        return True
    except Exception:  # noqa: BLE001 - an optimisation: the job imports what it needs anyway
        return False


def warm_up(spec: dict) -> None:
    """Fit and score the study's estimator (fixed parameters only) once on a few rows."""
    from snaketune.evaluation.records import TrialSpec
    from snaketune.evaluation.trial import fit_and_score, load_inputs

    spec = TrialSpec.from_dict(spec)
    data, splits, estimator, scorers = load_inputs(spec)
    train, test = splits[0]
    fit_and_score(estimator, data["X"], data["y"], train=train[:50], test=test[:50], scorers=scorers, parameters={})


def handle_request(request: dict, conn: socket.socket, study_dir: str) -> int:
    """Run a job's call for a connected client, in the forked handler."""
    set_parent_death_signal(signal.SIGKILL)
    try:
        kwargs = read_args(request["args"])
        manifest = [kwargs["manifest"]] if kwargs.get("manifest") else []
        asked = (kwargs.get("ask") or {}).get("outputs", [])  # a round job's ask file and Optuna state
        outputs = [str(o) for o in [*kwargs.get("outputs", []), *manifest, *asked]]
        if not all(os.path.abspath(o).startswith(os.path.abspath(study_dir) + "/") for o in outputs):
            send_message(conn, {"refused": f"worker writes inside {study_dir} only"})
            return 0
        status, log = _run_request(request, kwargs)
    except BaseException:  # noqa: BLE001 - reported to the job's log, the job fails
        # BaseException too: a sys.exit() in user code used to end the handler with no reply (an
        # empty job log).
        status, log = 1, traceback.format_exc()
    try:
        send_message(conn, {"status": status, "log": log})
    except OSError:
        status = 1
    return status


def _run_request(request: dict, kwargs: dict) -> tuple[int, str]:
    from snaketune.evaluation.records import RunSettings
    from snaketune.runtime.calls import own_threads, run_call

    # The client's settings, not the worker's: they may differ between runs.
    settings = RunSettings.from_json(request.get("settings"), request.get("threads"))
    # This fork computes with the job's threads (pools loaded now and later, as a job's own
    # Python would: scripts/job_client.py), or a trial's in a job that runs its trials on forks.
    use_threads(own_threads(settings.threads, kwargs.get("trial_threads")))
    status, log = run_call(request["call"], kwargs, settings)
    return status, log.replace("\n", " (warm worker)\n") if status == 0 else log


def foreign_peer(conn: socket.socket) -> str | None:
    """Abstract sockets have no file permissions: accept only our own user's processes (a reason
    to refuse, else None; the warm engine checks its clients the same way)."""
    try:
        _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    except OSError:
        return "cannot check the peer's credentials"
    return None if uid == os.getuid() else f"worker serves uid {os.getuid()} only"


def _report_killed(conn: socket.socket, pid: int, signum: int) -> None:
    """A handler killed before its reply (OOM killer, kill -9): its job fails with a log that says
    so, not an empty one; the worker serves on. A client that already has its reply reads no more."""
    what = f"the job's handler {pid} in the warm worker was killed by {signal.Signals(signum).name}"
    print(what, flush=True)
    try:
        send_message(conn, {"status": 1, "log": f"snaketune: {what} before it replied (see logs/worker.log)\n"})
    except OSError:
        pass


def _peek(conn: socket.socket) -> bytes:
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) or b""
    except BlockingIOError:
        return b"-"
    except OSError:
        return b""


def worker_address(study_dir: str, parent_pid: int) -> str:
    from snaketune.base.jsonutil import digest

    # Ends with the Snakemake pid: a client that loses the worker checks that the run still exists.
    return f"snaketune-{digest(os.path.abspath(study_dir), 10)}-{parent_pid}"


def start(study_dir: str, log_path: str, imports=()) -> subprocess.Popen:
    """Start a worker for ``study_dir`` as a child of this (the Snakemake) process.

    Sets ``SNAKETUNE_WORKER`` in this process's environment, which every job inherits.
    """
    address = worker_address(study_dir, os.getpid())
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "a")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "snaketune.runtime.worker",
            "--address",
            address,
            "--study-dir",
            study_dir,
            "--parent-pid",
            str(os.getpid()),
            *(arg for module in imports for arg in ("--import", module)),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    os.environ[ENV_ADDRESS] = address
    return proc


def start_forked(study_dir: str, log_path: str, imports=()) -> ForkedWorker:
    """Start a worker for ``study_dir`` by forking this (the Snakemake) process, which has already
    imported what the worker needs (the warm engine's runs): milliseconds, not a new Python.

    Called from the main thread (``PR_SET_PDEATHSIG`` follows the thread that forked). Snakemake
    has threads by now; the child keeps only this one, so it writes through new stream objects
    (a lock another thread held at the fork stays held) and never returns into Snakemake.
    """
    address = worker_address(study_dir, os.getpid())
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the worker: never returns
        status = 1
        try:
            set_parent_death_signal()  # first: a Snakemake killed from here on takes the worker along
            if os.getppid() != parent:
                return  # (finally: exit) Snakemake died before the signal was set
            import gc

            gc.freeze()  # the inherited heap (Snakemake's DAG...): never scanned, never copied by the GC
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            for fd in {devnull, log} - {0, 1, 2}:  # 0-2 are the copies the worker, handlers and trials keep
                os.close(fd)
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - the process's own streams
            sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
            signal.signal(signal.SIGINT, signal.default_int_handler)  # not Snakemake's handlers
            Worker(address, study_dir, parent, imports).serve()
            status = 0
        except BaseException:  # noqa: BLE001 - reported in the worker's log; the run falls back
            traceback.print_exc()
        finally:
            os._exit(status)
    os.close(log)
    os.environ[ENV_ADDRESS] = address
    return ForkedWorker(pid)


class ForkedWorker:
    """A worker forked by :func:`start_forked`: the part of :class:`subprocess.Popen` the run uses."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                done, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: gone
                self.returncode = -signal.SIGKILL
                return self.returncode
            if done:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout)
            time.sleep(0.005)
        return self.returncode

    def _signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)


def wait_ready(address: str, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> bool:
    """Wait until the worker accepts connections (it imports scikit-learn first); False at once
    if ``proc`` (the worker) ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (proc is None or proc.poll() is None):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect("\0" + address)
                return True
            except OSError:
                time.sleep(0.01)
    return False


# How often one run starts its worker again after it died (the OOM killer, a kill -9); past that
# the worker is taken to be what fails and the run goes on without one. A client that lost its
# worker runs its call in a new Python (scripts/job_client.py), so a death costs the jobs in flight
# one slower start each, and a restart keeps the jobs after them on the fast path.
MAX_RESTARTS = 3


class Keeper:
    """The run's worker, started again when it dies, at most :data:`MAX_RESTARTS` times.

    Lives in the Snakemake process (a thread polling the worker) and keeps the address, which
    every job inherited: the restarted worker listens where the old one did.
    """

    def __init__(
        self, proc: subprocess.Popen | ForkedWorker, study_dir: str, log_path: str, max_restarts: int = MAX_RESTARTS
    ):
        import threading

        self.proc, self.study_dir, self.log_path = proc, study_dir, log_path
        self.max_restarts, self.restarts = max_restarts, 0
        self._stopping = threading.Event()
        # The restarted worker's PR_SET_PDEATHSIG fires when this thread ends: it ends only with
        # stop() or once no worker is left to watch.
        self._thread = threading.Thread(target=self._watch, name="snaketune-worker-keeper", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopping.wait(0.1):
            code = self.proc.poll()
            if code is None:
                continue
            how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
            if self.restarts >= self.max_restarts:
                os.environ.pop(ENV_ADDRESS, None)
                self._note(
                    f"worker {self.proc.pid} ended ({how}) after {self.restarts} restarts: "
                    "the rest of the run runs each call in a new Python"
                )
                return
            self.restarts += 1
            self._note(
                f"worker {self.proc.pid} ended ({how}); starting another ({self.restarts} of {self.max_restarts})"
            )
            self.proc = start(self.study_dir, self.log_path)
            # A connection adopts it: else a run whose next job comes after ADOPT_SECONDS would lose it.
            wait_ready(os.environ[ENV_ADDRESS], timeout=15, proc=self.proc)

    def _note(self, line: str) -> None:
        with open(self.log_path, "a") as log:
            log.write(f"{time.strftime('%H:%M:%S')} {line}\n")

    def stop(self) -> None:
        """Stop watching, then stop the worker."""
        self._stopping.set()
        self._thread.join()
        stop(self.proc)


def stop(proc: subprocess.Popen | ForkedWorker | Keeper | None) -> None:
    """Stop a worker started by :func:`start` (or kept by a :class:`Keeper`) and forget its address."""
    if isinstance(proc, Keeper):
        proc.stop()
        return
    os.environ.pop(ENV_ADDRESS, None)
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True)
    parser.add_argument("--study-dir", required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--import", dest="imports", action="append", default=[])
    args = parser.parse_args(argv)
    Worker(args.address, args.study_dir, args.parent_pid, args.imports).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
