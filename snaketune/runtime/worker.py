"""The warm worker: one long-lived process per study run that has Python, scikit-learn and the
prepared data loaded, and runs each trial in a forked child.

A trial job's command (``scripts/trial_client.py``) connects over an abstract Unix socket, hands
over the trial and waits; the worker forks a handler for the connection, which forks the trial
itself (so a hung or crashing fit can be killed without touching the worker) and replies with the
exit status and log. Forking a process that already imported scikit-learn costs milliseconds; a
new Python costs 1-2 s.

Lifecycle: started by the Snakefile's ``onstart`` on local runs, stopped by ``onsuccess`` /
``onerror``, and tied to the Snakemake process with ``PR_SET_PDEATHSIG`` plus a parent-pid poll,
so it never outlives the run — not even a ``kill -9`` of Snakemake. It serves only the study
folder it was started for; the client falls back to running in-process when no worker answers.
"""

from __future__ import annotations

import argparse
import json
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

from snaketune.base.procs import set_parent_death_signal

ENV_ADDRESS = "SNAKETUNE_WORKER"


def send_message(sock: socket.socket, obj) -> None:
    payload = json.dumps(obj).encode()
    sock.sendall(struct.pack("!I", len(payload)) + payload)


def recv_message(sock: socket.socket):
    header = _recv_exact(sock, 4)
    (size,) = struct.unpack("!I", header)
    return json.loads(_recv_exact(sock, size))


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("peer closed the connection")
        data += chunk
    return bytes(data)


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
    """

    def __init__(self, address: str, study_dir: str, parent_pid: int):
        self.address = address
        self.study_dir = study_dir.rstrip("/") + "/"
        self.parent_pid = parent_pid
        self.cwd = os.getcwd()
        # Handler pid -> the client's connection; a client that hangs up cancels its handler.
        self.children: dict[int, socket.socket] = {}
        self.warmed: set = set()

    def serve(self) -> None:
        set_parent_death_signal()
        # Import the heavy stack once; every forked trial inherits it.
        import importlib

        import sklearn.base  # noqa: F401
        import sklearn.metrics  # noqa: F401

        from snaketune.evaluation import trial  # noqa: F401
        from snaketune.runtime.calls import PRELOAD

        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(1)  # see _warm_up: no thread pool may exist at fork time
        except ImportError:
            pass
        for module in PRELOAD:
            try:
                importlib.import_module(module)
            except ImportError:
                pass

        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind("\0" + self.address)
        listener.listen(64)
        signal.signal(signal.SIGTERM, self._terminate)
        print(f"worker {os.getpid()} serving {self.study_dir} at @{self.address}", flush=True)
        try:
            while self._parent_alive():
                ready, _, _ = select.select([listener, *self.children.values()], [], [], 0.5)
                self._reap()
                for pid, conn in list(self.children.items()):
                    if conn in ready and not _peek(conn):
                        _kill_group(pid)  # the Snakemake job died: stop its trial now
                if listener in ready:
                    conn, _ = listener.accept()
                    self._handle(conn, listener)
        finally:
            listener.close()
            self._kill_children()

    def _parent_alive(self) -> bool:
        return os.getppid() == self.parent_pid

    def _terminate(self, signum, frame):
        self._kill_children()
        os._exit(0)

    def _kill_children(self) -> None:
        for pid in list(self.children):
            _kill_group(pid)
        self._reap()

    def _reap(self) -> None:
        for pid in list(self.children):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.children.pop(pid).close()

    def _handle(self, conn: socket.socket, listener: socket.socket) -> None:
        try:
            conn.settimeout(10)
            request = recv_message(conn)
            conn.settimeout(None)
        except (OSError, ValueError, ConnectionError):
            conn.close()
            return
        spec = (request.get("specs") or [{}])[0]
        reason = self._refusal(request) or _foreign_peer(conn)
        if reason:
            send_message(conn, {"refused": reason})
            conn.close()
            return
        if "call" not in request:
            try:
                from snaketune.evaluation.trial import load_inputs

                # Load data and build the estimator here, before the fork, so children share it.
                load_inputs(spec)
                self._warm_up(spec)
            except Exception:  # noqa: BLE001 - let the handler report it as the trial's failure
                pass
        pid = os.fork()
        if pid == 0:
            listener.close()
            os.setpgid(0, 0)  # own process group: the worker can kill a handler and its trial
            status = 1
            try:
                status = handle_request(request, conn)
            finally:
                os._exit(status)
        self.children[pid] = conn

    def _warm_up(self, spec: dict) -> None:
        """Fit and score once on a few rows, so the lazy imports and caches of a first fit are
        paid here once, not in every forked trial (measured: ~70 ms CPU a trial for kNN).

        Thread pools are limited to one thread in the worker (see serve), so no OpenMP pool
        exists when we fork: GNU OpenMP is not fork-safe once its pool has started.
        """
        from snaketune.evaluation.trial import fit_and_score, load_inputs, search_parameters

        key = (spec["data_dir"], repr(spec["estimator"]))
        if key in self.warmed:
            return
        self.warmed.add(key)
        data, splits, estimator, scorers = load_inputs(spec)
        train, test = splits[0]
        fit_and_score(
            estimator,
            data["X"],
            data["y"],
            train=train[:50],
            test=test[:50],
            scorers=scorers,
            parameters=search_parameters(spec["params"]),
        )

    def _refusal(self, request: dict) -> str | None:
        if request.get("cwd") != self.cwd:
            return f"worker serves {self.cwd}, not {request.get('cwd')}"
        if "call" in request:
            from snaketune.runtime.calls import CALLS

            if request["call"] not in CALLS:
                return f"unknown call {request['call']!r}"
            outputs = request.get("kwargs", {}).get("outputs", [])
            if not all(str(o).startswith(self.study_dir) for o in outputs):
                return f"worker writes inside {self.study_dir} only"
            return None
        specs = request.get("specs") or [{}]
        for spec in specs:
            for key in ("data_dir", "splits"):
                if not str(spec.get(key, "")).startswith(self.study_dir):
                    return f"worker serves {self.study_dir} only"
        return None


def handle_request(request: dict, conn: socket.socket) -> int:
    """Run a job's trials (or a registered call) for a connected client, in the forked handler."""
    set_parent_death_signal(signal.SIGKILL)
    try:
        status, log = _run_request(request)
    except Exception:  # noqa: BLE001 - reported to the job's log, the job fails
        status, log = 1, traceback.format_exc()
    try:
        send_message(conn, {"status": status, "log": log})
    except OSError:
        status = 1
    return status


def _run_request(request: dict) -> tuple[int, str]:
    """A registered call, or a job's trials run right here in the handler."""
    from snaketune.evaluation.trial import execute_many

    if "call" in request:
        from snaketune.runtime.calls import run_call

        return 0, run_call(request["call"], request.get("kwargs", {})) + " (warm worker)\n"
    # The client's settings, not the worker's environment: they may differ between runs.
    os.environ["SNAKETUNE_TRIAL_TIMEOUT"] = request.get("timeout") or ""
    os.environ["SNAKETUNE_ERROR_SCORE"] = request.get("error_score") or ""
    os.environ["SNAKETUNE_CACHE"] = request.get("cache") or ""
    os.environ["SNAKETUNE_THREADS"] = request.get("threads") or "1"
    try:
        from threadpoolctl import threadpool_limits

        # OMP_NUM_THREADS of the job cannot reach an already-started worker; limit its pools here.
        if os.environ["SNAKETUNE_THREADS"] != "1":  # the worker itself is already at 1
            threadpool_limits(int(os.environ["SNAKETUNE_THREADS"]))
    except (ImportError, ValueError):
        pass
    # The handler is already a fork of the warm worker: trials run right here (a second fork per
    # trial costs ~20 ms); the worker kills this handler if the client hangs up.
    status, log = execute_many(request["specs"], request["outputs"])
    return status, log.replace("\n", " (warm worker)\n") if status == 0 else log


def _foreign_peer(conn: socket.socket) -> str | None:
    """Abstract sockets have no file permissions: accept only our own user's processes."""
    try:
        _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    except OSError:
        return "cannot check the peer's credentials"
    return None if uid == os.getuid() else f"worker serves uid {os.getuid()} only"


def _peek(conn: socket.socket) -> bytes:
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) or b""
    except BlockingIOError:
        return b"-"
    except OSError:
        return b""


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def worker_address(study_dir: str, parent_pid: int) -> str:
    from snaketune.base.jsonutil import digest

    return f"snaketune-{digest(os.path.abspath(study_dir), 10)}-{parent_pid}"


def start(study_dir: str, log_path: str) -> subprocess.Popen:
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
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    os.environ[ENV_ADDRESS] = address
    return proc


def wait_ready(address: str, timeout: float = 10.0) -> bool:
    """Wait until the worker accepts connections (it imports scikit-learn first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect("\0" + address)
                return True
            except OSError:
                time.sleep(0.05)
    return False


def stop(proc: subprocess.Popen | None) -> None:
    """Stop a worker started by :func:`start` and forget its address."""
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
    args = parser.parse_args(argv)
    Worker(args.address, args.study_dir, args.parent_pid).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
