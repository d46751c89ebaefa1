"""Incremental aggregation (issue 28): the summary of trial files beside them
(``results/summary.py``) gives the leaderboard a full read of every trial file gives, byte for
byte, after configurations are added, removed or rewritten, after an aggregation killed with
SIGKILL half-way, and with summary chunks that are stale or corrupt."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal

import numpy as np
import pytest

from snaketune.evaluation.records import CorruptTrialError
from snaketune.results import summary
from snaketune.results.leaderboard import write_leaderboard

N_FOLDS = 4
OUTPUTS = ("leaderboard.csv", "leaderboard.md", "best.json")
CONFIG = {
    "scoring": ["accuracy"],
    "refit": "accuracy",
    "error_score": "nan",
    "return_train_score": False,
    "report": {"top_n": 10, "alpha": 0.05},
}


def _key(i: int) -> str:
    return f"{i * 2654435761 % 2**48:012x}"


def _write_trials(out, configs, seed=0, *, value=None):
    """Trial files of configurations ``configs`` (ints): scores from a seeded generator, some
    failed, timed out or warned, as trial records are (plain writes: hundreds of fsyncs would
    dominate the test)."""
    rng = np.random.default_rng(seed)
    (out / "trials").mkdir(parents=True, exist_ok=True)
    for i in configs:
        for k in range(N_FOLDS):
            status = "error" if i % 37 == 5 else ("timeout" if i % 53 == 7 and k == 1 else "ok")
            score = value if value is not None else float(np.round(rng.uniform(0.5, 1.0), 6))
            record = {
                "trial_id": f"{_key(i)}_{k}", "config_key": _key(i), "fold": k, "params": {"alpha": i / 10},
                "status": status, "test_scores": {"accuracy": score} if status == "ok" else {},
                "fit_time": 0.001 * (i % 7 + 1), "score_time": 0.0005, "n_train": 120, "n_test": 30,
                "end": f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.{k}",
                "error": "ValueError: bad alpha" if status == "error" else None,
                "traceback": "Traceback...\nValueError: bad alpha" if status == "error" else None,
                "warnings": [{"category": "ConvergenceWarning", "message": "did not converge"}] if i % 11 == 3 else [],
                "versions": {"sklearn": "1.9.1"}, "data_fingerprint": "f" * 16,
            }  # fmt: skip
            (out / "trials" / f"{_key(i)}_{k}.json").write_text(json.dumps(record))


def _plan(configs) -> dict:
    return {
        "candidates": [{"alpha": i / 10} for i in configs],
        "config_keys": [_key(i) for i in configs],
        "n_folds": N_FOLDS,
    }


def _ids(configs) -> list[str]:
    return [f"{_key(i)}_{k}" for i in configs for k in range(N_FOLDS)]


def _leaderboard(out, configs) -> dict[str, bytes]:
    outputs = [str(out / name) for name in OUTPUTS]
    write_leaderboard(plan=_plan(configs), config=CONFIG, outputs=outputs)
    return {name: (out / name).read_bytes() for name in OUTPUTS}


def _full(out, configs, tmp_path) -> dict[str, bytes]:
    """The leaderboard from every trial file read anew: a copy of the trials, no summary."""
    fresh = tmp_path / f"full-{len(os.listdir(tmp_path))}"
    shutil.copytree(out / "trials", fresh / "trials")
    board = _leaderboard(fresh, configs)
    assert board["leaderboard.csv"].count(b"\n") == len(configs) + 1
    return board


def _chunks(out) -> list:
    return sorted((out / summary.FOLDER).glob("*.json"))


def test_incremental_equals_full_after_add_remove_and_rewrite(tmp_path):
    out = tmp_path / "study"
    configs = list(range(60))
    _write_trials(out, configs)
    assert _leaderboard(out, configs) == _full(out, configs, tmp_path)
    first = summary.read_trials(out, _ids(configs))
    assert (first.n_files_read, first.n_chunks_written, first.n_chunks_invalid) == (0, 0, 0)

    # Add three configurations: only their trial files are read, only their chunks rewritten.
    configs += [500, 501, 502]
    _write_trials(out, [500, 501, 502], seed=1)
    table = summary.read_trials(out, _ids(configs))
    assert table.n_files_read == 3 * N_FOLDS
    assert table.n_chunks_written == len({summary.chunk_of(_key(i), table.n_chunks) for i in (500, 501, 502)})
    assert _leaderboard(out, configs) == _full(out, configs, tmp_path)

    # Remove configurations from the study (their files stay, as after an edit reverted).
    kept = configs[10:]
    assert _leaderboard(out, kept) == _full(out, kept, tmp_path)
    assert summary.read_trials(out, _ids(kept)).n_files_read == 0

    # A trial file rewritten (a rerun): the new score shows, not the summary's.
    _write_trials(out, [20], seed=9, value=0.123456)
    table = summary.read_trials(out, _ids(kept))
    assert table.n_files_read == N_FOLDS
    assert table.records[f"{_key(20)}_0"].test_scores["accuracy"] == 0.123456
    assert _leaderboard(out, kept) == _full(out, kept, tmp_path)


def test_aggregation_killed_half_way_then_identical(tmp_path, monkeypatch):
    """A process killed (SIGKILL) after writing 2 of its chunks, with a temporary file left
    behind: the next aggregation reads what the killed one did not write, and gives the full
    leaderboard."""
    monkeypatch.setattr(summary, "CHUNK_TRIALS", 50)  # 4 chunks of a small study
    out = tmp_path / "study"
    configs = list(range(50))  # 200 trials
    _write_trials(out, configs)
    assert summary.n_chunks(len(_ids(configs))) == 4
    written = []

    def die_after_two(path):
        written.append(path)
        if len(written) == 2:
            (path.parent / ".4x0003.json.deadbeef.tmp").write_bytes(b'{"format": 1, "tri')
            os.kill(os.getpid(), signal.SIGKILL)

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child dies in the callback
        try:
            summary.read_trials(out, _ids(configs), on_chunk_written=die_after_two)
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert len(_chunks(out)) == 2  # the two the killed process finished
    done = {int(p.stem.split("x")[1]) for p in _chunks(out)}
    unread = [t for t in _ids(configs) if summary.chunk_of(t, 4) not in done]
    table = summary.read_trials(out, _ids(configs))
    assert (table.n_chunks_written, table.n_files_read) == (2, len(unread))
    assert _leaderboard(out, configs) == _full(out, configs, tmp_path)


@pytest.mark.parametrize(
    "damage", ["truncated", "not json", "other format", "wrong trial", "misaligned", "stale copy", "bad record"]
)
def test_stale_or_corrupt_summary_detected_and_rebuilt(tmp_path, damage):
    out = tmp_path / "study"
    configs = list(range(50))  # 200 trials: one chunk
    _write_trials(out, configs)
    _leaderboard(out, configs)
    (chunk,) = _chunks(out)
    doc = json.loads(chunk.read_bytes())
    if damage == "truncated":
        chunk.write_bytes(chunk.read_bytes()[: chunk.stat().st_size // 2])
    elif damage == "not json":
        chunk.write_bytes(b"\x00\xff garbage")
    elif damage == "other format":
        chunk.write_text(json.dumps(dict(doc, format=summary.SUMMARY_FORMAT + 1)))
    elif damage == "wrong trial":  # an entry's record names another trial
        doc["columns"]["trial_id"][0] = doc["ids"][1]
        chunk.write_text(json.dumps(doc))
    elif damage == "misaligned":  # a column one value short
        doc["columns"]["fit_time"].pop()
        chunk.write_text(json.dumps(doc))
    elif damage == "bad record":
        doc["columns"]["status"][0] = "finished?"
        chunk.write_text(json.dumps(doc))
    else:  # the summary of an older version of the trial files
        old = chunk.read_bytes()
        _write_trials(out, configs[:5], seed=4)
        _leaderboard(out, configs)
        chunk.write_bytes(old)
    expected = _full(out, configs, tmp_path)
    table = summary.read_trials(out, _ids(configs))
    assert table.n_chunks_written == 1
    if damage == "stale copy":
        assert table.n_files_read == 5 * N_FOLDS and table.n_chunks_invalid == 0
    elif damage == "bad record":
        assert table.n_files_read == 1
    else:
        assert table.n_chunks_invalid == 1 and table.n_files_read == len(_ids(configs))
    assert _leaderboard(out, configs) == expected
    assert summary.read_trials(out, _ids(configs)).n_files_read == 0  # rebuilt


def test_missing_or_corrupt_trial_file_named_as_before(tmp_path):
    out = tmp_path / "study"
    configs = list(range(10))
    _write_trials(out, configs)
    _leaderboard(out, configs)
    (out / "trials" / f"{_key(3)}_1.json").unlink()
    (out / "trials" / f"{_key(4)}_2.json").write_text('{"trial_id": ')
    with pytest.raises(CorruptTrialError) as error:
        _leaderboard(out, configs)
    assert f"{_key(3)}_1.json" in str(error.value) and f"{_key(4)}_2.json" in str(error.value)
    assert "Delete it and rerun snakemake" in str(error.value)


def test_summary_inside_the_study_honours_umask_and_counts_change(tmp_path, monkeypatch):
    out = tmp_path / "study"
    _write_trials(out, range(5))
    old = os.umask(0o027)
    try:
        summary.read_trials(out, _ids(range(5)))
    finally:
        os.umask(old)
    for path in [out / ".cache", out / summary.FOLDER, *_chunks(out)]:
        assert path.resolve().is_relative_to(out.resolve())
        assert path.stat().st_mode & 0o777 == (0o750 if path.is_dir() else 0o640)
    # Chunk counts; a study growing past a power of two drops the old chunk files.
    assert [summary.n_chunks(n) for n in (1, 400, 401, 4000, 100_000, 10**7)] == [1, 1, 2, 16, 256, 4096]
    monkeypatch.setattr(summary, "CHUNK_TRIALS", 10)  # 20 trials: 2 chunks; 240 trials: 32
    summary.read_trials(out, _ids(range(5)))
    assert {p.name.split("x")[0] for p in _chunks(out)} == {"2"}
    ids = _ids(range(60))
    _write_trials(out, range(60))
    summary.read_trials(out, ids)
    assert {p.name.split("x")[0] for p in _chunks(out)} == {"32"}
    assert not math.isnan(summary.read_trials(out, ids).records[ids[0]].fit_time)
