"""One memo helper for results computed from files: keyed on the files' identity too, so a file
rewritten (our writers replace atomically: a new inode) is read again, never served stale.

Plain ``functools.cache``/``lru_cache`` stay the tool for pure functions of their arguments.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable


def file_identity(path: str | os.PathLike) -> tuple[int, int, int, int]:
    """``(inode, size, mtime_ns, ctime_ns)`` of ``path``: changes whenever the file is replaced or
    rewritten (ctime too, which no tool can set back, as ``results/summary.py`` stamps files)."""
    st = os.stat(path)
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def memo_on_files(maxsize: int | None = None) -> Callable[[Callable], Callable]:
    """Memoise ``function(*paths)`` on the paths and the files' :func:`file_identity` (the
    ``maxsize`` most recent results, all with None). ``cache_clear`` forgets them."""

    def decorate(function: Callable) -> Callable:
        @functools.lru_cache(maxsize)
        def cached(identities, *paths):
            return function(*paths)

        @functools.wraps(function)
        def wrapper(*paths):
            return cached(tuple(file_identity(p) for p in paths), *paths)

        wrapper.cache_clear = cached.cache_clear
        return wrapper

    return decorate
