"""Files honour the umask: ``0o666 & ~umask`` (0644 under umask 022, 0664 under 002).

The unit part checks the atomic writers of :mod:`snaketune.base.jsonutil`; the ``slow`` part runs
a real study under umask 022 and checks the mode of every file it writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat

import pytest

from snaketune.base.jsonutil import write_bytes_atomic, write_json_atomic


@contextlib.contextmanager
def umask(mask: int):
    """Set the process umask for the block (this test process is single-threaded)."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


WRITERS = {
    "json": (write_json_atomic, {"a": [1, 2.5, None]}, lambda p: json.loads(p.read_text()) == {"a": [1, 2.5, None]}),
    "bytes": (write_bytes_atomic, b"\x00\x01state", lambda p: p.read_bytes() == b"\x00\x01state"),
}


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077], ids=["022", "002", "077"])
@pytest.mark.parametrize("writer", WRITERS)
def test_atomic_writers_honour_umask(tmp_path, writer, mask):
    write, value, reads_back = WRITERS[writer]
    new = tmp_path / "sub" / "new.out"
    old = tmp_path / "old.out"
    old.write_bytes(b"old")
    os.chmod(old, 0o600)  # a replaced file gets the umask's mode, not the old file's
    with umask(mask):
        write(new, value)
        write(old, value)
    for path in (new, old):
        assert _mode(path) == 0o666 & ~mask, f"{path.name}: {oct(_mode(path))}"
        assert reads_back(path)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["new.out", "old.out", "sub"]  # no temp files


def test_json_output_unchanged(tmp_path):
    """Same bytes as before the writers were merged: sorted keys, indent 1, NaN kept, final newline."""
    path = tmp_path / "r.json"
    write_json_atomic(path, {"b": float("inf"), "a": (1, 2)})
    assert path.read_text() == '{\n "a": [\n  1,\n  2\n ],\n "b": Infinity\n}\n'


def test_error_leaves_no_temp_file_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "best.json"
    write_json_atomic(path, {"v": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"v": object()})  # not JSON: fails before any file is made

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_json_atomic(path, {"v": 2})
    with pytest.raises(OSError, match="disk full"):
        write_bytes_atomic(path, b"x")
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["best.json"]
    assert json.loads(path.read_text()) == {"v": 1}


def test_umask_not_read_or_changed(tmp_path, monkeypatch):
    """The writers never call os.umask (process-wide, racy with threads): the kernel applies it."""

    def no_umask(mask):
        raise AssertionError("os.umask called")

    with umask(0o027):
        monkeypatch.setattr(os, "umask", no_umask)
        write_bytes_atomic(tmp_path / "x", b"1")
        monkeypatch.undo()
    assert _mode(tmp_path / "x") == 0o640


STUDIES = {
    # Batched trials (trials_per_job: auto): the batch memo and the .cache/trials hard links too.
    "grid": {
        "study": "perm",
        "data": {"loader": "iris", "test_size": 0.2},
        "estimator": {"class": "sklearn.neighbors.KNeighborsClassifier"},
        "search": {"grid": {"n_neighbors": [1, 5]}},
        "cv": {"kind": "stratified", "n_splits": 2},
        "scoring": ["accuracy"],
        "trials_per_job": "auto",
    },
    # Successive halving: pickled model states carried between rungs, promotion files, slot copies.
    "halving": {
        "study": "perm-sh",
        "data": {"loader": "iris", "test_size": 0.2},
        "estimator": {"class": "sklearn.linear_model.SGDClassifier"},
        "search": {
            "successive_halving": {
                "n_candidates": 2,
                "factor": 2,
                "min_resources": 1,
                "max_resources": 2,
                "resource": "partial_fit",
                "chunk_size": 20,
                "params": {"alpha": [0.001, 0.01]},
            }
        },
        "cv": {"kind": "stratified", "n_splits": 2},
        "scoring": ["accuracy"],
    },
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", STUDIES)
def test_study_files_are_0644_under_umask_022(make_study, kind):
    """Every regular file a study writes under its output folder (results/<study>/: trials, data,
    splits, plans, caches, logs, leaderboard, plots, report, model) is 0644 under umask 022."""
    study = make_study(STUDIES[kind])
    with umask(0o022):  # Snakemake and every job it spawns inherit it
        study.snakemake()
    assert study.trial_files()
    files = [p for p in (study.workdir / "results").rglob("*") if p.is_file() and not p.is_symlink()]
    assert (study.out / "best.json") in files
    wrong = sorted(f"{p.relative_to(study.workdir)} {oct(_mode(p))}" for p in files if _mode(p) != 0o644)
    assert not wrong, "files not 0644 under umask 022:\n" + "\n".join(wrong)


@pytest.mark.parametrize("mask", [0o022, 0o002], ids=["022", "002"])
def test_file_cache_entries_honour_umask(tmp_path, mask):
    """A cache entry (plots, refit summaries) is a folder made under the umask, as its files are:
    mkdtemp's 0700 kept the study's group out of every cached figure."""
    from snaketune.base.filecache import store

    source = tmp_path / "figure.png"
    source.write_bytes(b"png")
    with umask(mask):
        store(tmp_path / "cache" / "key", {"figure.png": source}, keep=3)
    assert _mode(tmp_path / "cache" / "key") == 0o777 & ~mask
    assert _mode(tmp_path / "cache" / "key" / "figure.png") == 0o666 & ~mask
