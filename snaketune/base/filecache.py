"""A per-study cache of output files that took seconds to make: ``<study>/.cache/<kind>/<key>``.

Figures and refits are copied back out of it when their key comes round again (an edit
reverted, a best configuration unchanged) instead of being made anew. Callers compute the key;
storing, restoring and evicting live here once so both caches follow the same rules.

``files`` maps a name inside the cache folder to the output path it stands for.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def restore(cache_dir: Path, files: Mapping[str, str | os.PathLike]) -> bool:
    """Copy every cached file to its output if all of them are there; False (nothing copied) else.

    Snakemake removes a job's outputs before it runs, so the copies are new files: new mtimes
    (Snakemake sees them as made by this job) and the umask's mode.
    """
    import shutil

    sources = {name: cache_dir / name for name in files}
    if not all(s.is_file() for s in sources.values()):
        return False
    for name, path in files.items():
        shutil.copyfile(sources[name], path)
    os.utime(cache_dir)  # most recently used: kept longest
    return True


def store(cache_dir: Path, files: Mapping[str, str | os.PathLike], *, keep: int) -> None:
    """Copy the outputs into ``cache_dir``, then keep only the ``keep`` most recent entries.

    The entry is filled in a staging folder and renamed into place, so a reader never sees a
    partial entry.
    """
    import secrets
    import shutil

    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    # Not mkdtemp: it makes 0700, so a group sharing the study could not read the entry; mkdir's
    # mode is the umask's (never read here: os.umask is process-wide and racy with threads).
    staging = cache_dir.parent / f".new-{secrets.token_hex(8)}"
    os.mkdir(staging)
    try:
        for name, path in files.items():
            shutil.copyfile(path, staging / name)
        os.replace(staging, cache_dir)
    except OSError:  # another run stored the same entry first
        shutil.rmtree(staging, ignore_errors=True)
    entries = sorted((p for p in cache_dir.parent.iterdir() if not p.name.startswith(".")), key=os.path.getmtime)
    for old in entries[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
