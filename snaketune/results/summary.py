"""A derived, rebuildable summary of a study's trial files, so aggregation reads only what changed.

Trial files stay the record (one JSON file a trial). Beside them, ``<study>/.cache/summary/``
holds the same records gathered into chunk files: the trials of one configuration always share a
chunk (chosen by a hash of the configuration part of the trial id), and each trial carries the
stamp of the file it was read from, ``(inode, size, mtime_ns, ctime_ns)``. Reading a study costs
one ``stat`` a trial and one JSON parse a chunk; a trial whose stamp differs (rewritten, restored,
new) is read from its file, and only the chunks that changed are written again. Trial files are
written by rename, so a rewritten file is a new inode while the old one still exists: its stamp
cannot equal the old one.

A chunk is columnar: the record fields every trial of it shares once (``common``), every other
field as one list (``columns``). :class:`TrialColumns` hands the leaderboard and ``snaketune
status`` one field of many trials (:func:`column`) without building a record object each;
a record is built only when asked for, from the same field values
:func:`~snaketune.evaluation.records.read_record` returned for its file, so the leaderboard is
byte-identical to a full read.

A chunk that cannot be parsed, has another format, or names other trials is ignored and rebuilt
from the trial files; a trial whose entry does not validate is read from its file. Chunks are
written atomically (a killed aggregation leaves each chunk old or new, never partial). Deleting
the folder costs one full read.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

from snaketune.base.jsonutil import write_bytes_atomic
from snaketune.evaluation.records import (
    REQUIRED_KEYS,
    TRIAL_FORMAT,
    CorruptTrialError,
    TrialRecord,
    TrialStatus,
    read_record,
)

SUMMARY_FORMAT = 2  # 1: one JSON object a trial (read as invalid: rebuilt once)
FOLDER = Path(".cache") / "summary"
# About this many trials a chunk (a configuration added rewrites one chunk: ~40 ms at 400), at
# most MAX_CHUNKS files (a million trials: ~250 KB-1 MB chunks, ~1,000 files).
CHUNK_TRIALS = 400
MAX_CHUNKS = 4096
STATUSES = frozenset(s.value for s in TrialStatus)


@dataclass
class Chunk:
    """One chunk file in memory: its trials, their file stamps, the fields they share and one
    list a field for the rest."""

    ids: list[str]
    stamps: list[list[int]]
    common: dict
    columns: dict[str, list]

    def entry(self, i: int) -> dict:
        """The record fields of trial ``i`` (what ``TrialRecord.to_dict`` gave)."""
        return {**self.common, **{name: values[i] for name, values in self.columns.items()}}


class TrialColumns(Mapping):
    """Trial id -> :class:`~snaketune.evaluation.records.TrialRecord`, kept as the summary's
    columns: a record is built when first asked for; :meth:`column` gives a field of many trials
    without building any."""

    def __init__(self, ids: list[str], where: dict[str, tuple[Chunk, int]], built: dict[str, TrialRecord]):
        self._ids = ids
        self._where = where
        self._built = built
        self._position = {t: i for i, t in enumerate(ids)}
        # Every chunk's columns laid end to end; _order[i]: where trial ids[i] sits in them.
        self._chunks: list[Chunk] = []
        start_of: dict[int, int] = {}
        self._order: list[int] = []
        total = 0
        for trial_id in ids:
            chunk, j = where[trial_id]
            start = start_of.get(id(chunk))
            if start is None:
                start = start_of[id(chunk)] = total
                total += len(chunk.ids)
                self._chunks.append(chunk)
            self._order.append(start + j)
        self._columns: dict[str, list] = {}

    def __getitem__(self, trial_id: str) -> TrialRecord:
        record = self._built.get(trial_id)
        if record is None:
            chunk, i = self._where[trial_id]
            record = self._built[trial_id] = TrialRecord.from_dict(chunk.entry(i))
        return record

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, trial_id) -> bool:
        return trial_id in self._position

    def column(self, name: str, ids: Iterable[str] | None = None) -> list:
        """Field ``name`` of ``ids`` (default: every trial, in the caller's order); ``status``
        as its text."""
        values = self._columns.get(name)
        if values is None:
            laid: list = []
            default = DEFAULTS.get(name)
            for chunk in self._chunks:
                found = chunk.columns.get(name)
                laid.extend(found if found is not None else [chunk.common.get(name, default)] * len(chunk.ids))
            values = self._columns[name] = [laid[k] for k in self._order]
        if ids is None:
            return list(values)
        position = self._position
        return [values[position[t]] for t in ids]


def column(records: Mapping[str, TrialRecord], name: str, ids: Iterable[str]) -> list:
    """Field ``name`` of the trials ``ids`` (``status`` as its text), from a :class:`TrialColumns`
    without building records, or from any mapping of records."""
    if isinstance(records, TrialColumns):
        return records.column(name, ids)
    if name == "status":
        return [records[t].status.value for t in ids]
    return [getattr(records[t], name) for t in ids]


@dataclass(frozen=True)
class TrialTable:
    """The records of a study's trials and what reading them cost."""

    records: TrialColumns
    n_files_read: int  # trials read from their own file (new, changed, or no valid entry)
    n_chunks: int
    n_chunks_written: int
    n_chunks_invalid: int  # unreadable or of another format: rebuilt
    missing: tuple[str, ...] = ()  # with skip_unreadable: trials with no complete file


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
    out: str | os.PathLike,
    trial_ids: Iterable[str],
    *,
    write: bool = True,
    skip_unreadable: bool = False,
    on_chunk_written: Callable[[Path], None] | None = None,
) -> TrialTable:
    """The records of ``trial_ids`` (``<out>/trials/<id>.json``), through the summary.

    Every corrupt or missing trial file is reported together, as
    :func:`~snaketune.evaluation.records.read_records` does; with ``skip_unreadable`` they are
    left out instead (a trial not finished yet: ``snaketune status``). ``write=False`` changes
    no file (status is read-only). ``on_chunk_written`` is called after each chunk file is
    replaced (progress; the tests stop a process there).
    """
    out = Path(out)
    folder = out / FOLDER
    ids = list(dict.fromkeys(trial_ids))
    count = n_chunks(len(ids))
    groups: dict[int, list[str]] = {}
    for trial_id in ids:
        groups.setdefault(chunk_of(trial_id, count), []).append(trial_id)
    where: dict[str, tuple[Chunk, int]] = {}
    built: dict[str, TrialRecord] = {}
    problems: list[str] = []
    missing: list[str] = []
    files_read = written = invalid = 0
    trials = str(out / "trials")
    for index in sorted(groups):
        path = folder / f"{count}x{index:04d}.json"
        chunk = _load_chunk(path)
        invalid += chunk is None
        chunk = chunk or Chunk([], [], {}, {})
        usable = _valid_positions(chunk)
        kept: list[tuple[str, list[int], Chunk, int]] = []  # trial, stamp, chunk and position of its entry
        changed = chunk.ids != groups[index]
        for trial_id in groups[index]:
            file = f"{trials}/{trial_id}.json"
            try:
                st = os.stat(file)
                now = [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
            except OSError:
                now = None
            i = usable.get(trial_id)
            if now is not None and i is not None and chunk.stamps[i] == now:
                kept.append((trial_id, now, chunk, i))
                continue
            changed = True
            try:
                record = read_record(file)
            except CorruptTrialError as exc:
                if skip_unreadable:
                    missing.append(trial_id)
                else:
                    problems.append(str(exc))
                continue
            files_read += 1
            built[trial_id] = record
            if now is not None:
                kept.append((trial_id, now, Chunk([trial_id], [now], record.to_dict(), {}), 0))
        if changed:
            chunk = _merge(kept)
            kept = [(t, s, chunk, i) for i, (t, s, _, _) in enumerate(kept)]
            if write:
                write_bytes_atomic(path, _chunk_bytes(chunk), sync=False)
                written += 1
                if on_chunk_written is not None:
                    on_chunk_written(path)
        for trial_id, _, held, i in kept:
            where[trial_id] = (held, i)
    if problems:
        raise CorruptTrialError("\n".join(problems))
    if write:
        _remove_other_chunks(folder, count)
    for trial_id in built:  # read from its file but its stamp unknown (it vanished since): no entry
        where.setdefault(trial_id, (Chunk([trial_id], [[]], built[trial_id].to_dict(), {}), 0))
    found = [t for t in ids if t in where]
    return TrialTable(TrialColumns(found, where, built), files_read, len(groups), written, invalid, tuple(missing))


def _defaults() -> dict:
    return {f.name: f.default if f.default is not MISSING else f.default_factory() for f in fields(TrialRecord)
            if f.default is not MISSING or f.default_factory is not MISSING}  # fmt: skip


DEFAULTS = _defaults()


def _same(a, b) -> bool:
    """Same JSON value (``1``, ``1.0`` and ``true`` differ: they would read back as another type)."""
    if a is b:
        return True
    if type(a) is not type(b) or a != b:
        return False
    if isinstance(a, dict | list):
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    return True


def _merge(kept: list[tuple[str, list[int], Chunk, int]]) -> Chunk:
    """One chunk of these entries: the fields they all share once, the others as columns."""
    entries = [held.entry(i) for _, _, held, i in kept]
    names = list(dict.fromkeys(name for e in entries for name in e))
    common, columns = {}, {}
    for name in names:
        values = [e.get(name, DEFAULTS.get(name)) for e in entries]
        if name != "trial_id" and all(_same(v, values[0]) for v in values):
            common[name] = values[0]
        else:
            columns[name] = values
    return Chunk([t for t, *_ in kept], [s for _, s, *_ in kept], common, columns)


def _chunk_bytes(chunk: Chunk) -> bytes:
    doc = {
        "format": SUMMARY_FORMAT,
        "trial_format": TRIAL_FORMAT,
        "ids": chunk.ids,
        "stamps": chunk.stamps,
        "common": chunk.common,
        "columns": chunk.columns,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _load_chunk(path: Path) -> Chunk | None:
    """A chunk file; an empty chunk when there is none; None when it is unreadable, not ours,
    of another format, or its trial ids and columns do not line up."""
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return Chunk([], [], {}, {})
    except (OSError, ValueError):
        return None
    if not (
        isinstance(doc, dict)
        and doc.get("format") == SUMMARY_FORMAT
        and doc.get("trial_format") == TRIAL_FORMAT
        and isinstance(doc.get("ids"), list)
        and isinstance(doc.get("stamps"), list)
        and isinstance(doc.get("common"), dict)
        and isinstance(doc.get("columns"), dict)
    ):
        return None
    ids, stamps, common, columns = doc["ids"], doc["stamps"], doc["common"], doc["columns"]
    n = len(ids)
    if (
        len(stamps) != n
        or any(not isinstance(values, list) or len(values) != n for values in columns.values())
        or columns.get("trial_id") != ids  # every entry names its own trial
        or "trial_id" in common
        or any(key not in common and key not in columns for key in REQUIRED_KEYS)
    ):
        return None
    return Chunk(ids, stamps, common, columns)


def _valid_positions(chunk: Chunk) -> dict[str, int]:
    """Trial id -> position of the entries that make a valid record (a status
    ``TrialRecord.from_dict`` takes; the other checks hold for the whole chunk)."""
    statuses = chunk.columns.get("status")
    if statuses is None:
        ok = chunk.common.get("status") in STATUSES
        return {t: i for i, t in enumerate(chunk.ids)} if ok else {}
    return {t: i for i, t in enumerate(chunk.ids) if isinstance(statuses[i], str) and statuses[i] in STATUSES}


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
    try:
        return time.time() - path.stat().st_mtime > seconds
    except FileNotFoundError:
        return False
