"""The warm engine: Snakemake, scikit-learn and the package imported once per Python session.

Every ``snakemake`` run pays its imports and start-up again (about 2 s before the first job on 2
cores); a search fitted again and again in a notebook, or ``snaketune watch``, pays it at every
call. The engine is a process started on first use by the Python that needs it (its *parent*),
with those modules imported. It runs one study at a time, each in a forked child, so the state
Snakemake keeps process-wide (its logging, ``sys.path``, the working folder, module globals)
ends with the run and never reaches the next one. The child runs Snakemake's own command line
(``snaketune.runtime.snakemake_cli``: profiles and every option as on the command line) and
writes its output to the client's connection.

It listens on an abstract Unix socket named by the user and the parent's pid, accepts only
processes of the same user (``SO_PEERCRED``, as the warm worker does), and exits when its parent
exits (``PR_SET_PDEATHSIG``, and a check every second) or after ``IDLE_SECONDS`` without a run.
A child is stopped as by Ctrl-C when the engine dies (kill -9 included: ``PR_SET_PDEATHSIG``
SIGHUP, on which it sends SIGINT to its process group; the client sends SIGKILL after
``LOST_GRACE_SECONDS`` if it still runs), and the client
raises :class:`EngineLost`; finished trials are kept, and the next call starts a new engine and
resumes.

The client checks the server as the engine checks its clients (``SO_PEERCRED``: our uid, and the
pid of the engine it started), and signals only a run pid that is a child of that engine.

Protocol (one connection a run): the client sends one JSON line ``{"argv": [...], "cwd": ...,
"umask": ..., "env": {...}, "warm": [...]}`` (the child runs with the client's umask and environment of the
moment, not the engine's from its start); the child answers with its pid on the first line, then
Snakemake's output; the engine ends with the line ``EXIT <status>`` after a NUL byte. The client
passes an interrupt to the child's process group as SIGINT, as a terminal's Ctrl-C reaches
Snakemake and its jobs.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

IDLE_SECONDS = 1800.0
START_SECONDS = 60.0
EXIT_MARK = "\0EXIT "
LOST_GRACE_SECONDS = 30.0
# Imported before the first run: what every run parses and executes, and what the run's warm
# worker (forked from the run's process) needs: runtime.calls' LIGHT_MODULES and HEAVY_MODULES.
WARM_MODULES = (
    "snakemake.cli",
    "snakemake.api",
    "snakemake.workflow",
    "snakemake.dag",
    "snakemake.report.html_reporter",
    "snakemake_logger_plugin_snaketune",
    "snaketune.workflow.support",
    "snaketune.workflow.terminal",
    "snaketune.config.load",
    "snaketune.config.checks",
    "snaketune.search.plan",
    "snaketune.results.status",
    "snakemake.storage",
    "smart_open",
    "snaketune.runtime.batching",
    "snaketune.runtime.worker",
    "snaketune.results.aggregate",
    "snaketune.evaluation.records",
    "sklearn.model_selection",
    "sklearn.pipeline",
    "jsonschema",  # the config check's (0.15-0.5 s a run)
    "snaketune.runtime.calls",
)


class EngineLost(RuntimeError):
    """The engine (or its run) ended before the run's exit status; trials finished are kept."""


def engine_address(parent_pid: int) -> str:
    """The abstract socket name of the engine serving ``parent_pid`` (one a session)."""
    return f"snaketune-engine-{os.getuid()}-{parent_pid}"


# --- the engine process ---------------------------------------------------------------------


def serve(parent_pid: int, idle_seconds: float = IDLE_SECONDS) -> None:
    """Import, listen, and run one study per connection until the parent is gone or idle."""
    from snaketune.base.procs import set_parent_death_signal
    from snaketune.runtime.worker import foreign_peer

    set_parent_death_signal(signal.SIGKILL)
    for module in WARM_MODULES:
        try:
            importlib.import_module(module)  # a fixed list of module names
        except ImportError:  # an optional piece: the child imports what it needs
            pass
    from snaketune.runtime.calls import HEAVY_MODULES, LIGHT_MODULES

    for module in (*LIGHT_MODULES, *HEAVY_MODULES):
        try:
            importlib.import_module(module)  # a fixed list of module names
        except ImportError:
            pass
    from snakemake.cli import get_argument_parser

    get_argument_parser()  # finds and loads every plugin once (0.6 s a run otherwise)
    from snaketune.config.load import load_schema

    load_schema()  # parsed once (config.load caches it)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind("\0" + engine_address(parent_pid))
    listener.listen(8)
    listener.settimeout(1.0)
    # Started: nothing more for the client's pipe (it reads it only if the start fails, then closes it).
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    last = time.monotonic()
    while os.getppid() == parent_pid and time.monotonic() - last < idle_seconds:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        with conn:
            if foreign_peer(conn):
                continue
            try:
                run_one(conn, listener)
            except (OSError, ValueError) as exc:  # the client hung up, or sent nonsense
                print(f"run not completed: {exc}", file=sys.stderr, flush=True)
        last = time.monotonic()
    listener.close()


def run_one(conn: socket.socket, listener: socket.socket) -> None:
    """Fork a child that runs Snakemake's command line with its output on ``conn``; send its status."""
    conn.settimeout(10)
    request = json.loads(conn.makefile("r").readline())
    conn.settimeout(None)
    argv, cwd = [str(a) for a in request["argv"]], str(request["cwd"])
    umask, env = int(request["umask"]), {str(k): str(v) for k, v in request["env"].items()}
    warm_up(request.get("warm", []))
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            listener.close()  # a child that outlives the engine must not keep its address
            os.umask(umask)
            os.environ.clear()
            os.environ.update(env)
            code = _child(conn, argv, cwd)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    conn.sendall(f"{EXIT_MARK}{code}\n".encode())


# The modules a run's estimator needs, imported once here so later runs' config checks and
# workers have them (SVC: 0.1-0.25 s a run). scikit-learn's only: the engine imports no user code.
WARM_NAME = re.compile(r"sklearn(\.[A-Za-z_][A-Za-z0-9_]*)*")


def warm_up(modules: list) -> None:
    """Import the scikit-learn modules among ``modules`` (names a client sent) into the engine."""
    for module in modules:
        if isinstance(module, str) and WARM_NAME.fullmatch(module) and module not in sys.modules:
            try:
                importlib.import_module(module)  # a scikit-learn module, by the pattern above
            except ImportError:
                pass


def _child(conn: socket.socket, argv: list[str], cwd: str) -> int:
    from snaketune.base.procs import set_parent_death_signal
    from snaketune.runtime import snakemake_cli
    from snaketune.workflow.workers import fork_workers

    os.setpgid(0, 0)  # its own group: the client's interrupt reaches it once, never the engine
    # The engine killed: stop as after Ctrl-C at a terminal, which interrupts the whole group
    # (Snakemake stops, keeps finished trials and releases its lock; it waits for running jobs,
    # so they must be interrupted too: a local run's trials can be one job). SIGTERM would wait
    # for running jobs, and the client with it.
    signal.signal(signal.SIGHUP, lambda signum, frame: os.killpg(0, signal.SIGINT))
    set_parent_death_signal(signal.SIGHUP)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    conn.sendall(f"{os.getpid()}\n".encode())
    os.dup2(conn.fileno(), 1)
    os.dup2(conn.fileno(), 2)
    conn.close()  # fds 1 and 2 are the connection now; the worker forked later keeps neither
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    os.chdir(cwd)
    fork_workers()  # this process has the worker's imports: fork it rather than start a Python
    sys.argv = ["snakemake", *argv]
    try:
        snakemake_cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    return code


# --- the client -----------------------------------------------------------------------------

_started: dict[int, subprocess.Popen] = {}


def connect(start: bool = True, timeout: float = START_SECONDS) -> socket.socket:
    """A connection to this process's engine, started first if there is none (or it has exited:
    one new engine a call; one that exits at start raises :class:`EngineLost` with its error)."""
    address = "\0" + engine_address(os.getpid())
    deadline = time.monotonic() + timeout
    launched = False
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(address)
        except (ConnectionRefusedError, FileNotFoundError):
            sock.close()
        else:
            try:
                _check_server(sock)
            except BaseException:
                sock.close()
                raise
            return sock
        proc = _started.get(os.getpid())
        if proc is None or proc.poll() is not None:
            if not start:
                raise EngineLost("no engine running")
            if launched:
                raise EngineLost(f"the engine exited with status {proc.returncode} at start: {_stderr_tail(proc)}")
            _started[os.getpid()] = _start()
            launched = True
        if time.monotonic() > deadline:
            raise EngineLost(f"the engine did not listen within {timeout:g} s")
        time.sleep(0.02)


def start() -> None:
    """Start this process's engine if none runs, without waiting for it to listen (:func:`connect`
    waits): its imports (~2 s) then overlap what the caller does before its first run."""
    proc = _started.get(os.getpid())
    if proc is None or proc.poll() is not None:
        _started[os.getpid()] = _start()


def starting() -> bool:
    """Whether this process's engine is still starting: launched, alive, not listening yet. Its
    start-up pipe (stderr) stays open and silent until it listens (then it closes) or fails (then
    it has the error, which :func:`connect` reports)."""
    import select

    proc = _started.get(os.getpid())
    if proc is None or proc.stderr is None or proc.poll() is not None:
        return False
    readable, _, _ = select.select([proc.stderr], [], [], 0)
    return not readable


def _check_server(sock: socket.socket) -> None:
    """Abstract sockets have no permissions: refuse a server that is not the engine we started."""
    pid, uid, _ = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    ours = engine_pid()
    if uid != os.getuid() or pid != ours:
        raise EngineLost(
            f"refusing the server on {engine_address(os.getpid())}: it is pid {pid} of uid {uid}, not the engine "
            f"this process started (pid {ours}, uid {os.getuid()})"
        )
    proc = _started[os.getpid()]
    if proc.stderr is not None:  # started: its start-up errors are no longer needed
        proc.stderr.close()
        proc.stderr = None


def _stderr_tail(proc: subprocess.Popen, limit: int = 2000) -> str:
    if proc.stderr is None:
        return "(no output)"
    text = proc.stderr.read().decode("utf-8", errors="replace").strip()
    proc.stderr.close()
    proc.stderr = None
    return text[-limit:] or "(no output)"


def _start() -> subprocess.Popen:
    # No log file: nothing is written outside a study's folder; each run's output goes to its client.
    # stderr is a pipe until the engine listens (then it writes nothing more there): a failed start's error.
    return subprocess.Popen(
        [sys.executable, "-m", "snaketune.engine", "--parent", str(os.getpid())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a terminal's Ctrl-C is for the run, not the engine
    )


def run(argv: list[str], cwd: str | Path, output=None, warm: tuple[str, ...] = ()) -> tuple[int, bool]:
    """Run Snakemake's command line ``argv`` in the engine, in folder ``cwd``; its output is written
    to ``output`` (default ``sys.stdout``) line by line. ``warm``: scikit-learn modules the run
    will import (its estimator's), which the engine keeps imported for the next runs. Returns ``(exit status, interrupted)``; an
    interrupt here is passed to the run as SIGINT (Snakemake stops and keeps finished trials).

    Raises :class:`EngineLost` when the engine dies during the run: its child is then stopped as
    by an interrupt (it may hold the connection open while Snakemake stops its jobs)."""
    output = output or sys.stdout
    umask = os.umask(0)
    os.umask(umask)
    request = {"argv": list(argv), "cwd": str(cwd), "umask": umask, "env": dict(os.environ), "warm": list(warm)}
    with connect() as sock:
        sock.sendall((json.dumps(request) + "\n").encode())
        reader = _Reader(sock, engine_pid())
        try:
            while True:
                try:
                    line = reader.next_line()
                except KeyboardInterrupt:
                    reader.interrupt()
                    continue
                if line.startswith(EXIT_MARK):
                    return int(line[len(EXIT_MARK) :]), reader.interrupted
                output.write(line)
                output.flush()
        except EngineLost:
            raise
        except BaseException:  # Ctrl-C (or an error) while writing its output: the run must not go on alone
            reader.interrupt()
            raise


class _Reader:
    """The lines of one run's connection: the child's pid first, then its output, then the status."""

    def __init__(self, sock: socket.socket, engine: int | None):
        self.sock = sock
        self.engine = engine  # the verified engine's pid: the run is its child
        self.buffer = b""
        self.pid: int | None = None
        self.started: str | None = None  # the run's start time (/proc): the same process when signalled
        self.interrupted = False
        self.lost_at: float | None = None

    def interrupt(self) -> None:
        """Ctrl-C for the run, as a terminal gives it: to its process group (Snakemake waits for
        running jobs on an interrupt; the jobs stop on theirs, keeping their finished trials)."""
        self.interrupted = True
        if self.pid is not None and _parent_and_start(self.pid)[1] == self.started:
            _signal(-self.pid, signal.SIGINT)

    def next_line(self) -> str:
        import select

        while True:
            if b"\n" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\n", 1)
                line = raw.decode("utf-8", errors="replace") + "\n"
                if self.pid is None and not line.startswith(EXIT_MARK):
                    pid = int(line)
                    ppid, self.started = _parent_and_start(pid)
                    if ppid != self.engine:
                        raise EngineLost(
                            f"the engine's run answered with pid {pid}, which is not a child of the engine"
                        )
                    self.pid = pid
                    if self.interrupted:
                        _signal(-self.pid, signal.SIGINT)
                    continue
                return line
            ready, _, _ = select.select([self.sock], [], [], 1.0)
            if ready:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    raise EngineLost("the engine ended during the run; finished trials are kept: run again to go on")
                self.buffer += chunk
            elif engine_pid() is None:
                self._engine_gone()

    def _engine_gone(self) -> None:
        # The child's group got SIGINT from the engine's death already (PR_SET_PDEATHSIG; a second one
        # would cut Snakemake's own clean-up short); give it a while, then stop it outright.
        now = time.monotonic()
        if self.lost_at is None:
            self.lost_at = now
        elif now - self.lost_at > LOST_GRACE_SECONDS:
            # its process group (Snakemake and its jobs), unless its pid now names another process
            if self.pid is not None and _parent_and_start(self.pid)[1] in (self.started, None):
                _signal(-self.pid, signal.SIGKILL)
            raise EngineLost("the engine ended during the run; finished trials are kept: run again to go on")


def _parent_and_start(pid: int) -> tuple[int | None, str | None]:
    """A process's parent pid and start time (``/proc/<pid>/stat`` fields 4 and 22), or Nones."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None, None
    return int(fields[1]), fields[19]


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def engine_pid() -> int | None:
    """The pid of the engine this process started, if it is running."""
    proc = _started.get(os.getpid())
    return proc.pid if proc is not None and proc.poll() is None else None


def stop() -> None:
    """Stop this process's engine (it would exit by itself with this process, or when idle)."""
    proc = _started.pop(os.getpid(), None)
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # never let a stuck engine hold its caller's exit
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m snaketune.engine", description=__doc__.splitlines()[0])
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--idle", type=float, default=float(os.environ.get("SNAKETUNE_ENGINE_IDLE", IDLE_SECONDS)))
    args = parser.parse_args(argv)
    serve(args.parent, args.idle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
