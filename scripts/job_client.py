"""The command of every workflow job: run one registered package call (snaketune/runtime/calls.py).

``python -I -S job_client.py NAME ARGS [THREADS]`` hands the call to the study's warm worker when
one is running (local runs), else replaces itself with ``python -m snaketune.runtime.calls``.
Stdlib only and no site packages: the hand-over costs tens of milliseconds instead of the 1-2 s
of importing scikit-learn. ARGS is the call's keyword arguments as JSON, or ``@FILE``.
"""

import os
import socket
import sys

sys.path.insert(0, os.environ["SNAKETUNE_PACKAGE_PARENT"])  # site-packages, or a clone
from snaketune.runtime.protocol import ENV_ADDRESS, ENV_SETTINGS, recv_message, send_message  # noqa: E402


def ask_worker(address: str, request: dict):
    """Send one request; return the job's exit status, or None when no worker serves it.

    None comes with one line on stderr (the job's log) saying why: the call then runs in a new
    Python, so a worker that died (OOM killer, kill -9) costs this job a slower start, not the run.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect("\0" + address)
    except OSError as exc:
        return _fallback(f"no worker at @{address} ({exc.strerror or exc})")
    with sock:
        try:
            send_message(sock, dict(request, cwd=os.getcwd()))
            reply = recv_message(sock)
        except (OSError, ValueError) as exc:  # ConnectionError is an OSError
            # The worker (and so its handler, PR_SET_PDEATHSIG) died before replying; once the
            # socket reads EOF no process of it holds the connection, so none still writes.
            if not _run_alive(address):  # Snakemake itself was killed: its jobs end with it
                sys.stderr.write(f"snaketune: worker connection lost and the run is gone ({exc})\n")
                return 1
            return _fallback(f"worker connection lost before the reply ({exc})")
    if reply.get("refused"):
        return _fallback(f"worker refused the call ({reply['refused']})")
    sys.stderr.write(reply.get("log", ""))
    return int(reply["status"])


def _run_alive(address: str) -> bool:
    """Whether the Snakemake process that owns the worker runs (its pid ends the address)."""
    try:
        os.kill(int(address.rsplit("-", 1)[1]), 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _fallback(reason: str) -> None:
    sys.stderr.write(f"snaketune: {reason}; running the call in a new Python\n")
    sys.stderr.flush()
    os.environ["SNAKETUNE_RETRY"] = "1"  # protocol.ENV_RETRY: the new Python keeps finished trials
    return None


def main() -> int:
    name, args = sys.argv[1], sys.argv[2]
    threads = sys.argv[3] if len(sys.argv) > 3 else "1"
    # sbatch exports the submitting shell's environment: a worker address there is not ours.
    address = None if os.environ.get("SLURM_JOB_ID") else os.environ.get(ENV_ADDRESS)
    if address:
        request = {"call": name, "args": args, "threads": threads, "settings": os.environ.get(ENV_SETTINGS, "")}
        status = ask_worker(address, request)
        if status is not None:
            return status
    python = os.environ.get("SNAKETUNE_PYTHON") or sys.executable
    for pool in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # base.procs.THREAD_POOL_VARS
        os.environ[pool] = threads  # BLAS/OpenMP pools of the new Python (the worker limits its own)
    os.execv(python, [python, "-m", "snaketune.runtime.calls", name, args, threads])


if __name__ == "__main__":
    sys.exit(main())
