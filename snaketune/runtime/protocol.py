"""How a job talks to the warm worker: length-prefixed JSON over an abstract Unix socket.

Standard library only: the job client (``scripts/job_client.py``) imports this module without
site packages, which is what keeps a job's start at tens of milliseconds.

A request is ``{"call": NAME, "args": JSON or "@FILE", "threads": N, "settings": JSON, "cwd":
PATH}``; the reply is ``{"status": EXIT_STATUS, "log": TEXT}`` or ``{"refused": REASON}`` (the
client then runs the call itself).
"""

from __future__ import annotations

import json
import socket
import struct

ENV_ADDRESS = "SNAKETUNE_WORKER"  # the running worker's socket name, inherited by local jobs
ENV_SETTINGS = "SNAKETUNE_SETTINGS"  # the run's RunSettings as JSON, set at parse time
# Set by the client when it runs a call in a new Python after losing the worker (a literal there):
# trial files the lost handler already wrote are this job's own (Snakemake removes a job's outputs
# before it starts), so they are kept, never computed or written twice.
ENV_RETRY = "SNAKETUNE_RETRY"
HEADER = struct.Struct("!I")


def send_message(sock: socket.socket, obj) -> None:
    payload = json.dumps(obj).encode()
    sock.sendall(HEADER.pack(len(payload)) + payload)


def recv_message(sock: socket.socket):
    (size,) = HEADER.unpack(_recv_exact(sock, HEADER.size))
    return json.loads(_recv_exact(sock, size))


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(min(1 << 16, size - len(data)))
        if not chunk:
            raise ConnectionError("peer closed the connection")
        data += chunk
    return bytes(data)


def read_args(args: str):
    """A call's keyword arguments: inline JSON, or ``@FILE`` holding that JSON."""
    if args.startswith("@"):
        with open(args[1:]) as fh:
            return json.load(fh)
    return json.loads(args)
