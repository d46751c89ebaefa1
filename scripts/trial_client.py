"""Run one trial: hand it to the study's warm worker if one is running, else run it here.

Started as ``python -I -S trial_client.py SPEC_JSON OUTPUT...`` (one spec or a list, one output
each), or ``trial_client.py --call NAME KWARGS_JSON`` for a registered package call: stdlib only and no site
packages, so the hand-over costs tens of milliseconds instead of the 1-2 s of importing
scikit-learn. Without a worker it replaces itself with ``python -m snaketune.trial``.
"""

import json
import os
import socket
import struct
import sys


def _send(sock, payload: bytes) -> None:
    sock.sendall(struct.pack("!I", len(payload)) + payload)


def _recv(sock) -> bytes:
    header = b""
    while len(header) < 4:
        chunk = sock.recv(4 - len(header))
        if not chunk:
            raise ConnectionError("worker closed the connection")
        header += chunk
    (size,) = struct.unpack("!I", header)
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(min(1 << 16, size - len(data)))
        if not chunk:
            raise ConnectionError("worker closed the connection")
        data += chunk
    return bytes(data)


def ask_worker(address: str, request: dict):
    """Send one request; return the job's exit status, or None when no worker takes it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect("\0" + address)
    except OSError:
        return None
    with sock:
        _send(sock, json.dumps(dict(request, cwd=os.getcwd())).encode())
        try:
            reply = json.loads(_recv(sock))
        except (ConnectionError, ValueError):
            # The worker died mid-job (e.g. the run is being torn down): fail, let a rerun redo it.
            return 1
    if reply.get("refused"):
        return None
    sys.stderr.write(reply.get("log", ""))
    return int(reply["status"])


def trial_request(specs: str, outputs: list) -> dict:
    """A job's trials plus the settings that travel outside the trial spec."""
    parsed = json.loads(specs)
    cache = os.environ.get("SNAKETUNE_CACHE")
    return {
        "specs": parsed if isinstance(parsed, list) else [parsed],
        "outputs": [os.path.abspath(o) for o in outputs],
        "timeout": os.environ.get("SNAKETUNE_TRIAL_TIMEOUT", ""),
        "error_score": os.environ.get("SNAKETUNE_ERROR_SCORE", ""),
        "threads": os.environ.get("SNAKETUNE_THREADS", ""),
        "cache": os.path.abspath(cache) if cache else "",
    }


def main() -> int:
    python = os.environ.get("SNAKETUNE_PYTHON") or sys.executable
    # sbatch exports the submitting shell's environment: a worker address there is not ours.
    address = None if os.environ.get("SLURM_JOB_ID") else os.environ.get("SNAKETUNE_WORKER")
    if sys.argv[1] == "--call":
        name, kwargs = sys.argv[2], sys.argv[3]
        status = ask_worker(address, {"call": name, "kwargs": json.loads(kwargs)}) if address else None
        if status is not None:
            return status
        os.execv(python, [python, "-m", "snaketune.runtime.calls", name, kwargs])
    arg, outputs = sys.argv[1], sys.argv[2:]
    specs = arg
    if arg.startswith("@"):  # a batch's specs, written once to a file (workflow_support.batch_spec_file)
        with open(arg[1:]) as fh:
            specs = fh.read()
    if address:
        status = ask_worker(address, trial_request(specs, outputs))
        if status is not None:
            return status
    os.execv(python, [python, "-m", "snaketune.evaluation.trial", arg, *outputs])


if __name__ == "__main__":
    sys.exit(main())
