"""Another user to connect from: the engine and the worker must refuse any uid but their own."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess

PEER = "snaketune-peer"


def peer_ids() -> tuple[int, int]:
    """(uid, gid) of a throwaway system user, created if missing (needs root)."""
    try:
        entry = pwd.getpwnam(PEER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PEER],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(PEER)
    assert entry.pw_uid != os.getuid()
    return entry.pw_uid, entry.pw_gid


def as_peer(function):
    """``function()`` (bytes) run in a forked child that switched to the throwaway user; its result,
    or ``b"child error: ..."``."""
    uid, gid = peer_ids()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop to the peer, run, report through the pipe
        status = 1
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            os.write(write_fd, function())
            status = 0
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            os.write(write_fd, f"child error: {exc!r}".encode())
        finally:
            os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as fh:
        out = fh.read()
    os.waitpid(pid, 0)
    return out
