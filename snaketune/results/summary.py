"""A derived, rebuildable summary of a study's trial files, so aggregation reads only what changed.

Trial files stay the record (one JSON file a trial). Beside them, ``<study>/.cache/summary/``
holds the same records gathered into chunk files: the trials of one configuration always share a
chunk (chosen by a hash of the configuration part of the trial id), and each entry carries the
stamp of the trial file it was read from, ``(inode, size, mtime_ns, ctime_ns)``. Reading a study
costs one ``stat`` a trial and one JSON parse a chunk; a trial whose stamp differs from its
entry (rewritten, restored, new) is read from its file, and only the chunks that changed are
written again. Trial files are written by rename, so a rewritten file is a new inode while the
old one still exists: its stamp cannot equal the old one.

A chunk that cannot be parsed, has another format, or names another trial is ignored and
rebuilt from the trial files; chunks are written atomically (a killed aggregation leaves each
chunk old or new, never partial). Deleting the folder costs one full read. The records built
from a chunk are the records :func:`~snaketune.evaluation.records.read_record` builds from the
files (the chunk stores what that reader returned), so the leaderboard is byte-identical.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

from snaketune.base.jsonutil import write_bytes_atomic
from snaketune.evaluation.records import TRIAL_FORMAT, CorruptTrialError, TrialRecord, read_record

SUMMARY_FORMAT = 1
FOLDER = Path(".cache") / "summary"
# About this many trials a chunk (a configuration added rewrites one chunk: ~40 ms at 400), at
# most MAX_CHUNKS files (a million trials: ~250 KB-1 MB chunks, ~1,000 files).
CHUNK_TRIALS = 400
MAX_CHUNKS = 4096


@dataclass(frozen=True)
class TrialTable:
    """The records of a study's trials and what reading them cost."""

    records: dict[str, TrialRecord]
    n_files_read: int  # trials read from their own file (new, changed, or no valid chunk)
    n_chunks: int
    n_chunks_written: int
    n_chunks_invalid: int  # unreadable or of another format: rebuilt


def n_chunks(n_trials: int) -> int:
    """A power of two near ``n_trials / CHUNK_TRIALS`` (stable while a study grows a little; a
    new count costs one full read, as a deleted summary does)."""
    want = max(1, -(-n_trials // CHUNK_TRIALS))
    return min(MAX_CHUNKS, 1 << (want - 1).bit_length())


def chunk_of(trial_id: str, chunks: int) -> int:
    """The chunk of a trial: a hash of its configuration part (``<key>`` of ``<key>_<fold>``), so
    every fold of a configuration lands in the same chunk."""
    return zlib.crc32(trial_id.rsplit("_", 1)[0].encode()) % chunks


def stamp(path: str | os.PathLike) -> list[int]:
    """What identifies one version of a file without reading it."""
    st = os.stat(path)
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def read_trials(
    out: str | os.PathLike, trial_ids: Iterable[str], *, on_chunk_written: Callable[[Path], None] | None = None
) -> TrialTable:
    """The records of ``trial_ids`` (``<out>/trials/<id>.json``), through the summary.

    Every corrupt or missing trial file is reported together, as
    :func:`~snaketune.evaluation.records.read_records` does. ``on_chunk_written`` is called
    after each chunk file is replaced (progress; the tests stop a process there).
    """
    out = Path(out)
    trials, folder = out / "trials", out / FOLDER
    ids = list(dict.fromkeys(trial_ids))
    count = n_chunks(len(ids))
    groups: dict[int, list[str]] = {}
    for trial_id in ids:
        groups.setdefault(chunk_of(trial_id, count), []).append(trial_id)
    found: dict[str, TrialRecord] = {}
    problems: list[str] = []
    files_read = written = invalid = 0
    folder_text = str(trials)
    for index in sorted(groups):
        path = folder / f"{count}x{index:04d}.json"
        entries, common, ok = _load_chunk(path)
        invalid += not ok
        fresh: dict[str, list] = {}
        common_of: dict[str, dict] = {}  # entries read from their file: complete, no common part
        changed = set(entries) != set(groups[index])
        for trial_id in groups[index]:
            file = f"{folder_text}/{trial_id}.json"
            try:
                st = os.stat(file)
                now = [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
            except OSError:
                now = None
            entry = entries.get(trial_id)
            record = None
            if now is not None and entry is not None and entry[0] == now:
                record = _from_entry(entry[1], common)
            if record is not None:
                fresh[trial_id] = entry
            else:
                changed = True
                try:
                    record = read_record(file)
                except CorruptTrialError as exc:
                    problems.append(str(exc))
                    continue
                files_read += 1
                if now is not None:
                    fresh[trial_id] = [now, _compact(record)]
                    common_of[trial_id] = {}
            found[trial_id] = record
        if changed:  # entries kept from the old chunk get its common fields back first
            full = {t: [e[0], {**common_of.get(t, common), **e[1]}] for t, e in fresh.items()}
            write_bytes_atomic(path, _chunk_bytes(full), sync=False)
            written += 1
            if on_chunk_written is not None:
                on_chunk_written(path)
    if problems:
        raise CorruptTrialError("\n".join(problems))
    _remove_other_chunks(folder, count)
    records = {t: found[t] for t in ids}  # the order read_records gives: the caller's
    return TrialTable(records, files_read, len(groups), written, invalid)


def _defaults() -> dict:
    return {f.name: f.default if f.default is not MISSING else f.default_factory() for f in fields(TrialRecord)
            if f.default is not MISSING or f.default_factory is not MISSING}  # fmt: skip


DEFAULTS = _defaults()


def _compact(record: TrialRecord) -> dict:
    """The record without the fields that hold their default (same type, same value): from_dict
    fills them back, so the record read back is equal; a grid trial's entry is half the size."""
    return {
        k: v
        for k, v in record.to_dict().items()
        if k not in DEFAULTS or type(v) is not type(DEFAULTS[k]) or v != DEFAULTS[k]
    }


def _from_entry(data: dict, common: dict) -> TrialRecord | None:
    try:
        return TrialRecord.from_dict({**common, **data} if common else data)
    except (ValueError, TypeError, KeyError):
        return None


def _chunk_bytes(entries: dict[str, list]) -> bytes:
    """A chunk file: the values every entry shares (same JSON text: versions, data fingerprint,
    host, ...) once under ``common``, each entry the rest (a third smaller to parse)."""
    common: dict = {}
    first = next(iter(entries.values()), None)
    if first is not None and len(entries) > 1:
        for key, value in first[1].items():
            text = json.dumps(value, sort_keys=True)
            if key != "trial_id" and all(
                key in e[1] and json.dumps(e[1][key], sort_keys=True) == text for e in entries.values()
            ):
                common[key] = value
    trials = {t: [e[0], {k: v for k, v in e[1].items() if k not in common}] for t, e in entries.items()}
    doc = {"format": SUMMARY_FORMAT, "trial_format": TRIAL_FORMAT, "common": common, "trials": trials}
    return json.dumps(doc, separators=(",", ":")).encode()


def _load_chunk(path: Path) -> tuple[dict[str, list], dict, bool]:
    """A chunk's entries (trial id -> [stamp, record fields not in common]) and the fields they
    share; ``({}, {}, False)`` when the file is unreadable, not ours or of another format;
    ``({}, {}, True)`` when there is none."""
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}, {}, True
    except (OSError, ValueError):
        return {}, {}, False
    if not (
        isinstance(doc, dict)
        and doc.get("format") == SUMMARY_FORMAT
        and doc.get("trial_format") == TRIAL_FORMAT
        and isinstance(doc.get("trials"), dict)
        and isinstance(doc.get("common", {}), dict)
        and "trial_id" not in doc.get("common", {})
    ):
        return {}, {}, False
    entries = doc["trials"]
    for trial_id, entry in entries.items():
        if not (
            isinstance(entry, list)
            and len(entry) == 2
            and isinstance(entry[1], dict)
            and entry[1].get("trial_id") == trial_id
        ):
            return {}, {}, False
    return entries, doc.get("common", {}), True


def _remove_other_chunks(folder: Path, count: int) -> None:
    """Chunk files of another chunk count (the study grew past a power of two) and temporary
    files a killed writer left: never read again."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return
    prefix = f"{count}x"
    for name in names:
        if not name.startswith(prefix) or name.endswith(".tmp"):
            if name.endswith(".tmp") and not _stale(folder / name):
                continue  # another aggregation may be writing it right now
            (folder / name).unlink(missing_ok=True)


def _stale(path: Path, seconds: float = 600.0) -> bool:
    import time

    try:
        return time.time() - path.stat().st_mtime > seconds
    except FileNotFoundError:
        return False
