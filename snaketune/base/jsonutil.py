"""Canonical JSON, content hashes and atomic writes."""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays and tuples to plain JSON types (tuples become lists)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return to_jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else value
    return value


def canonical(obj: Any) -> str:
    """JSON text that is equal for equal values: sorted keys, no whitespace."""
    return json.dumps(to_jsonable(obj), sort_keys=True, separators=(",", ":"))


def digest(obj: Any, length: int = 12) -> str:
    """Short sha256 hex digest of ``canonical(obj)``."""
    return text_digest(canonical(obj), length)


def text_digest(text: str, length: int = 12) -> str:
    """Short sha256 hex digest of JSON ``text`` already in canonical form (no second encoding)."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as JSON (sorted keys, indent 1) with :func:`write_bytes_atomic`."""
    text = json.dumps(to_jsonable(obj), indent=1, sort_keys=True, allow_nan=True) + "\n"
    write_bytes_atomic(path, text.encode())


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, sync: bool = True) -> None:
    """Write ``data`` to a temp file in the same folder, fsync, then rename it over ``path``.

    A reader (or a crash) never sees a partial file: rename is atomic on POSIX. The file gets the
    mode a plain ``open(path, "wb")`` would give it, ``0o666 & ~umask`` (0644 under umask 022):
    the temp file is created with mode 0o666 and the kernel applies the umask (or the folder's
    default ACL), so nothing reads or changes the process-wide umask. On any error the temp file
    is removed. ``sync=False`` skips the fsync: for derived files a reader validates and can
    rebuild (a crash may leave them empty, never partial under their name).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 collisions of 48 random bits
        raise FileExistsError(f"no free temporary name next to {path}")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if sync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class BackgroundWrites:
    """Run write steps (each a whole atomic write: fsync, rename, link) one at a time, in order, on
    a background thread, so the caller computes its next result while the disk syncs the last.

    A trial's fsync waits ~0.3-2.5 ms for the disk (measured on this kind of machine), as long
    as a small trial's fit: done in line, a batch spent up to half its time waiting. Nothing is
    weakened: every step is still a complete atomic write, only started later. :meth:`close`
    waits for all of them and raises the first error (later steps are skipped after one fails);
    :meth:`submit` raises it as soon as it is known. At most ``depth`` steps wait (usually one or
    none: a write takes about as long as a small trial), so a kill or a crash of the
    process loses at most those results, none of which was on disk yet: like the trial that was
    running, they are computed again by the rerun; every file on disk is whole.
    """

    def __init__(self, depth: int = 8):
        import queue

        self._steps: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="snaketune-writes", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (step := self._steps.get()) is not None:
            if self._error is None:
                try:
                    step()
                except BaseException as exc:  # noqa: BLE001 - handed to the caller by close()/submit()
                    self._error = exc

    def submit(self, step: Callable[[], Any]) -> None:
        self._raise()
        self._steps.put(step)

    def close(self) -> None:
        """Wait until every submitted step has run; raise the first error."""
        if self._thread.is_alive():
            self._steps.put(None)
            self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error
