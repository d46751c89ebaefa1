"""Unit tests of the pieces (no Snakemake): spaces, content hashes, splits, aggregation, batching."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.model_selection import ParameterGrid, ParameterSampler, StratifiedKFold

from snaketune.base.jsonutil import canonical, digest, write_json_atomic
from snaketune.base.splits import compute_splits, load_splits, n_folds, save_splits
from snaketune.config.load import load_config
from snaketune.evaluation.records import CorruptTrialError, TrialRecord, read_record
from snaketune.evaluation.trial import fit_and_score
from snaketune.results.aggregate import cv_results
from snaketune.runtime.batching import choose_trials_per_job, make_batches
from snaketune.search.plan import make_plan
from snaketune.search.space import candidates, expand_values

BASE = {
    "study": "unit",
    "data": {"loader": "iris"},
    "estimator": {"class": "sklearn.neighbors.KNeighborsClassifier"},
    "search": {"grid": {"n_neighbors": [1, 3, 5], "weights": ["uniform", "distance"]}},
    "cv": {"n_splits": 3},
}


def plan_of(**changes):
    config = json.loads(json.dumps(BASE))
    config.update(changes)
    return make_plan(load_config(config, ".", check_data=False), ".")


# --- spaces -------------------------------------------------------------------------------------


def test_values_lists_become_tuples_and_shorthands_expand():
    assert expand_values([[24], [12, 12], 3]) == [(24,), (12, 12), 3]
    assert expand_values({"range": [1, 31]}) == list(range(1, 31))
    assert expand_values({"logspace": [-5, -1, 5]}) == [1e-05, 1e-04, 1e-03, 1e-02, 0.1]
    assert expand_values({"linspace": [0, 1, 3]}) == [0.0, 0.5, 1.0]
    dist = expand_values({"loguniform": [1e-3, 1e3]})
    assert 1e-3 <= dist.rvs(random_state=0) <= 1e3


def test_grid_candidates_are_parametergrid_in_order():
    grid = [{"a": [1, 2], "b": ["x"]}, {"c": [[1, 2]]}]
    assert candidates({"grid": grid}) == list(ParameterGrid([{"a": [1, 2], "b": ["x"]}, {"c": [(1, 2)]}]))


def test_random_candidates_are_parametersampler_for_the_seed():
    from scipy.stats import loguniform

    spec = {"n_iter": 7, "seed": 11, "params": {"C": {"loguniform": [1e-2, 1e2]}, "tol": [1e-3, 1e-2]}}
    expected = list(ParameterSampler({"C": loguniform(1e-2, 1e2), "tol": [1e-3, 1e-2]}, 7, random_state=11))
    assert candidates({"random": spec}) == expected


# --- content hashes -----------------------------------------------------------------------------


def test_canonical_json_ignores_key_order_and_tuple_vs_list():
    assert canonical({"b": 1, "a": (1, 2)}) == canonical({"a": [1, 2], "b": 1})
    assert digest({"x": 1}) != digest({"x": 2}) and len(digest({})) == 12


def test_trial_names_change_only_with_what_defines_results():
    base = plan_of()
    assert base.trial_ids[:3] == [f"{base.config_keys[0]}_{k}" for k in range(3)]
    assert len(set(base.config_keys)) == 6
    # Unrelated settings keep every name.
    assert plan_of(trial_timeout=5, report={"top_n": 3}, worker=False, trials_per_job=4).trial_ids == base.trial_ids
    # A new grid value adds names and keeps the old ones.
    grown = plan_of(search={"grid": {"n_neighbors": [1, 3, 5, 7], "weights": ["uniform", "distance"]}})
    assert set(base.trial_ids) < set(grown.trial_ids) and len(grown.trial_ids) - len(base.trial_ids) == 6
    # What defines a result renames everything.
    for change in (
        {"cv": {"n_splits": 3, "shuffle": True}},
        {"scoring": "f1_macro"},
        {"seed": 1},
        {"data": {"loader": "wine"}},
        {"return_train_score": True},
    ):
        assert not set(plan_of(**change).config_keys) & set(base.config_keys), change


def test_csv_contents_are_part_of_the_data_identity(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n9,1,0\n2,2,1\n")
    data = {"csv": "d.csv", "target": "y"}
    first = plan_of(data=data, cv={"kind": "kfold", "n_splits": 2})
    (tmp_path / "d.csv").write_text("a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n9,1,0\n2,3,1\n")
    assert plan_of(data=data, cv={"kind": "kfold", "n_splits": 2}).data_key != first.data_key


# --- splits -------------------------------------------------------------------------------------


def test_splits_are_sklearns_and_roundtrip(tmp_path):
    y = np.repeat([0, 1, 2], 10)
    cv = {"kind": "stratified", "n_splits": 5, "shuffle": True, "seed": 4, "n_repeats": 1, "test_size": 0.2}
    splits = compute_splits(cv, y, classifier=True)
    reference = list(StratifiedKFold(5, shuffle=True, random_state=4).split(np.zeros((30, 1)), y))
    assert all((a == c).all() and (b == d).all() for (a, b), (c, d) in zip(splits, reference, strict=True))
    save_splits(tmp_path / "s.npz", splits)
    loaded = load_splits(tmp_path / "s.npz")
    assert all((a == c).all() and (b == d).all() for (a, b), (c, d) in zip(splits, loaded, strict=True))
    assert n_folds(dict(cv, kind="repeated_stratified", n_repeats=3)) == 15


# --- trials and aggregation ---------------------------------------------------------------------


def record(key, fold, score=None, status="ok"):
    return TrialRecord.from_dict(
        {
            "trial_id": f"{key}_{fold}",
            "config_key": key,
            "fold": fold,
            "params": {},
            "status": status,
            "test_scores": {"accuracy": score if status == "ok" else None},
            "fit_time": 0.1,
            "score_time": 0.01,
        }
    )


def test_cv_results_means_ranks_and_failures():
    records = {}
    for key, scores in {"a": [0.9, 0.8], "b": [1.0, 0.9], "c": [0.5, None]}.items():
        for k, s in enumerate(scores):
            records[f"{key}_{k}"] = record(key, k, s, "ok" if s is not None else "error")
    cands = [{"p": 1}, {"p": 2}, {"p": 3}]
    res = cv_results(cands, ["a", "b", "c"], records, n_folds=2, scoring=["accuracy"])
    np.testing.assert_allclose(res["mean_test_accuracy"][:2], [0.85, 0.95])
    np.testing.assert_allclose(res["std_test_accuracy"][:2], [0.05, 0.05])
    assert math.isnan(res["mean_test_accuracy"][2])
    assert res["rank_test_accuracy"].tolist() == [2, 1, 3]  # the failed configuration is last
    assert res["n_failed"].tolist() == [0, 0, 1]
    filled = cv_results(cands, ["a", "b", "c"], records, n_folds=2, scoring=["accuracy"], error_score=0)
    assert filled["mean_test_accuracy"][2] == pytest.approx(0.25)


def test_corrupt_trial_file_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "abc_0.json"
    path.write_text('{"trial_id": "abc_0", "sta')
    with pytest.raises(CorruptTrialError, match=r"abc_0.json.*Delete it and rerun"):
        read_record(path)


def test_fit_and_score_records_errors_and_warnings():
    from sklearn.metrics import get_scorer
    from sklearn.neighbors import KNeighborsClassifier

    X, y = np.random.default_rng(0).normal(size=(20, 2)), np.repeat([0, 1], 10)
    train, test = np.arange(0, 20, 2), np.arange(1, 20, 2)
    scorers = {"accuracy": get_scorer("accuracy")}
    ok = fit_and_score(
        KNeighborsClassifier(), X, y, train=train, test=test, scorers=scorers, parameters={"n_neighbors": 3}
    )
    assert ok["status"] == "ok" and 0 <= ok["test_scores"]["accuracy"] <= 1
    bad = fit_and_score(
        KNeighborsClassifier(), X, y, train=train, test=test, scorers=scorers, parameters={"n_neighbors": 50}
    )
    assert bad["status"] == "error" and "n_neighbors" in bad["traceback"]
    assert bad["test_scores"] == {"accuracy": None}


def test_atomic_write_leaves_no_temp_files(tmp_path):
    write_json_atomic(tmp_path / "t.json", {"x": float("nan"), "y": (1, 2)})
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]
    assert json.loads((tmp_path / "t.json").read_text()) == {"x": None, "y": [1, 2]}


def test_background_writes_run_in_order_and_raise_the_first_error(tmp_path):
    from snaketune.base.jsonutil import BackgroundWrites

    done = []
    writes = BackgroundWrites(depth=2)
    for i in range(20):
        writes.submit(lambda i=i: done.append(i))
    writes.close()
    assert done == list(range(20))  # all of them, in order, once close() returns

    (tmp_path / "a-file").write_text("")
    failing = BackgroundWrites()
    failing.submit(lambda: write_json_atomic(tmp_path / "a-file" / "x.json", {}))  # not a folder
    failing.submit(lambda: done.append("after the error"))
    with pytest.raises(OSError):
        failing.close()
    assert done[-1] == 19  # nothing runs after a failed write


def test_a_batch_has_every_record_on_disk_and_in_the_cache_when_it_returns(tmp_path, monkeypatch):
    """Batched records are written in the background: all of them are whole on disk (and hard
    links of the batch cache) when execute_many returns, and a write that fails fails the call."""
    import os

    from snaketune.evaluation.records import RunSettings
    from snaketune.evaluation.trial import execute_many
    from snaketune.runtime.calls import make_splits, prepare_data

    monkeypatch.chdir(tmp_path)
    plan = plan_of(cv={"kind": "stratified", "n_splits": 3, "shuffle": True, "seed": 0})
    prepare_data(data=BASE["data"], outputs=[f"{plan.data_dir}/meta.json"], task=plan.task)
    make_splits(cv={"kind": "stratified", "n_splits": 3, "shuffle": True, "seed": 0}, classifier=True,
                y=f"{plan.data_dir}/y.npy", outputs=[plan.splits_path])  # fmt: skip
    ids = plan.trial_ids
    outputs = [plan.trial_path(t) for t in ids]
    cache = tmp_path / "cache"
    status, log = execute_many([plan.spec(t) for t in ids], outputs, RunSettings(cache_dir=str(cache)))
    assert status == 0, log
    from sklearn.neighbors import KNeighborsClassifier

    X, y = np.load(f"{plan.data_dir}/X.npy"), np.load(f"{plan.data_dir}/y.npy")
    splits = load_splits(plan.splits_path)
    for trial_id, output in zip(ids, outputs, strict=True):
        record = read_record(output)
        assert record.ok and record.trial_id == trial_id
        assert os.stat(output).st_ino == (cache / f"{trial_id}.json").stat().st_ino
        train, test = splits[record.fold]
        model = KNeighborsClassifier(**record.params).fit(X[train], y[train])
        assert record.test_scores["accuracy"] == model.score(X[test], y[test])
    assert not [p for p in (tmp_path / plan.out / "trials").iterdir() if p.name.startswith(".")]  # no temp files

    for output in outputs:
        os.unlink(output)
    (tmp_path / "not-a-folder").write_text("")
    with pytest.raises(OSError):
        execute_many([plan.spec(t) for t in ids], outputs, RunSettings(cache_dir=str(tmp_path / "not-a-folder")))


def test_file_cache_restores_complete_entries_and_keeps_the_most_recent(tmp_path):
    import os

    from snaketune.base import filecache

    out = tmp_path / "out"
    out.mkdir()
    (out / "model.pkl").write_bytes(b"model")
    (out / "refit.json").write_text("{}")
    files = {"m.bin": out / "model.pkl", "s.json": out / "refit.json"}
    cache = tmp_path / ".cache" / "kind"
    filecache.store(cache / "k0", files, keep=2)
    assert [p.name for p in cache.iterdir()] == ["k0"]  # no staging folder left behind
    assert sorted(p.name for p in (cache / "k0").iterdir()) == ["m.bin", "s.json"]

    for path in files.values():
        path.unlink()
    os.utime(cache / "k0" / "m.bin", (0, 0))
    assert filecache.restore(cache / "k0", files)
    assert (out / "model.pkl").read_bytes() == b"model" and (out / "refit.json").read_text() == "{}"
    assert (out / "model.pkl").stat().st_mtime > 0  # a new file, not the cached one's mtime

    # An unknown key, or an entry with a file missing: nothing is copied.
    assert not filecache.restore(cache / "unknown", files)
    (cache / "k0" / "s.json").unlink()
    (out / "model.pkl").unlink()
    assert not filecache.restore(cache / "k0", files)
    assert not (out / "model.pkl").exists()

    # keep=2: the least recently stored or restored entries go.
    (out / "model.pkl").write_bytes(b"model")
    lru = tmp_path / "lru"
    for i, key in enumerate(["k1", "k2", "k3"]):
        filecache.store(lru / key, files, keep=2)
        os.utime(lru / key, (i, i))  # distinct mtimes: the order is certain
    assert sorted(p.name for p in lru.iterdir()) == ["k2", "k3"]
    assert filecache.restore(lru / "k2", files)  # used again: now the most recent
    filecache.store(lru / "k4", files, keep=2)
    assert sorted(p.name for p in lru.iterdir()) == ["k2", "k4"]


# --- batching -----------------------------------------------------------------------------------


def test_batches_keep_folds_together_and_change_little_when_the_study_grows():
    keys = [digest({"i": i}) for i in range(200)]
    batches = make_batches(keys, n_folds=5, trials_per_job=50)
    assert sorted(t for ts in batches.values() for t in ts) == sorted(f"{k}_{f}" for k in keys for f in range(5))
    for trials in batches.values():
        assert len({t.rsplit("_", 1)[0] for t in trials}) * 5 == len(trials)
    grown = make_batches(keys + [digest({"i": 999})], n_folds=5, trials_per_job=50)
    changed = [b for b in grown if grown[b] != batches.get(b)]
    assert len(changed) == 1
    assert make_batches(keys, n_folds=5, trials_per_job=1) == {}


def test_auto_batch_size_weighs_job_cost_against_idle_cores():
    from snaketune.runtime.batching import job_seconds

    # sqrt(2 * work * 50 ms / cores), within [0.2, 5] s.
    assert job_seconds(0.13, 300, 2) == pytest.approx((2 * 39 * 0.05 / 2) ** 0.5)
    assert job_seconds(0.001, 600, 2) == 0.2 and job_seconds(5.0, 10_000, 2) == 5.0
    assert choose_trials_per_job(0.13, n_trials=300, cores=2) == 11  # 1.4 s jobs
    assert choose_trials_per_job(0.8, n_trials=195, cores=2) == 4  # 2.8 s jobs
    assert choose_trials_per_job(0.002, n_trials=600, cores=2) == 75  # balance-bound (0.2 s: 100)
    assert choose_trials_per_job(0.001, n_trials=100_000, cores=2) == 2048  # capped
    assert choose_trials_per_job(0.004, n_trials=100_000, cores=2) == 1119  # 4.5 s jobs, not 256
    assert choose_trials_per_job(0.1, n_trials=60, cores=2) == 6  # 0.55 s jobs
    assert choose_trials_per_job(6.0, n_trials=600, cores=2) == 1
    assert choose_trials_per_job(0.1, n_trials=600, cores=2, target_seconds=0.5) == 5


def test_threads_reach_open_n_jobs_parameters():
    from types import SimpleNamespace as spec

    from sklearn.ensemble import RandomForestClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from snaketune.evaluation.trial import thread_parameters

    free = spec(estimator={"class": "x"}, params={})
    assert thread_parameters(KNeighborsClassifier(), free, 3) == {"n_jobs": 3}
    fixed = spec(estimator={"class": "x", "params": {"n_jobs": 1}}, params={})
    assert thread_parameters(KNeighborsClassifier(), fixed, 3) == {}
    searched = spec(estimator={"class": "x"}, params={"n_jobs": 2})
    assert thread_parameters(KNeighborsClassifier(), searched, 3) == {}
    pipe = Pipeline([("scale", StandardScaler()), ("rf", RandomForestClassifier())])
    steps = spec(estimator={"steps": [{"name": "scale"}, {"name": "rf"}]}, params={})
    assert thread_parameters(pipe, steps, 3) == {"rf__n_jobs": 3}
    # One thread: the default (None, one thread) stays, so no estimator warns about n_jobs.
    assert thread_parameters(KNeighborsClassifier(), free, 1) == {}


def test_incomplete_marks_on_whole_trial_files_are_cleared(tmp_path, monkeypatch):
    import base64
    from types import SimpleNamespace

    from snaketune.workflow.jobs import release_finished_trials

    monkeypatch.chdir(tmp_path)
    trials = tmp_path / "results" / "s" / "trials"
    trials.mkdir(parents=True)
    write_json_atomic(trials / "abc_0.json", record("abc", 0, 0.5).to_dict())
    (trials / "abc_1.json").write_text('{"trial_id": "ab')  # partial: keep its mark
    marks = tmp_path / ".snakemake" / "incomplete"
    marks.mkdir(parents=True)
    for name in ("abc_0.json", "abc_1.json"):
        key = base64.urlsafe_b64encode(f"results/s/trials/{name}".encode()).decode()
        (marks / key).write_text("{}")
    study = SimpleNamespace(out="results/s")
    assert release_finished_trials(study) == 1
    assert len(list(marks.iterdir())) == 1


def test_parse_time_cache_gives_the_same_study(tmp_path, monkeypatch):
    from snaketune.workflow.support import load_study

    monkeypatch.chdir(tmp_path)
    config = json.loads(json.dumps(BASE))
    config["estimator"] = {"class": "sklearn.neural_network.MLPClassifier"}
    config["search"] = {
        "random": {
            "n_iter": 5,
            "seed": 3,
            "params": {"alpha": {"loguniform": [1e-5, 1e-1]}, "hidden_layer_sizes": [[10], [20, 30]]},
        }
    }
    first = load_study(config, None, ".")
    (cache,) = (tmp_path / "results" / "unit" / ".snaketune").glob("plan-*.json")
    second = load_study(config, None, ".")
    assert second.config == first.config
    assert second.plan.trial_ids == first.plan.trial_ids
    assert [second.plan.spec(t) for t in second.plan.trial_ids] == [first.plan.spec(t) for t in first.plan.trial_ids]
    assert second.plan.candidates == first.plan.candidates  # tuples restored
    config["cv"] = {"n_splits": 4}
    load_study(config, None, ".")
    assert len(list(cache.parent.glob("plan-*.json"))) == 2


def test_end_of_run_cancels_snakemakes_rate_limit_timers():
    """Snakemake's scheduler leaves a non-daemon Timer (the job-rate timespan, 1 s by default)
    that the process waits for at exit; onsuccess/onerror cancel it. Uses Snakemake's own method,
    so an upgrade that renames or changes it fails here rather than silently slowing every run."""
    import inspect
    import threading

    from snakemake.scheduling.job_scheduler import JobScheduler

    from snaketune.workflow.support import cancel_scheduler_timers

    assert "threading.Timer(" in inspect.getsource(JobScheduler._schedule_reevalutation)
    scheduler = object.__new__(JobScheduler)  # only what the method touches
    scheduler._open_jobs = threading.Semaphore(0)
    before = set(threading.enumerate())
    JobScheduler._schedule_reevalutation(scheduler, 30)
    (timer,) = set(threading.enumerate()) - before
    assert isinstance(timer, threading.Timer) and not timer.daemon
    assert cancel_scheduler_timers() == 1
    timer.join(timeout=5)
    assert not timer.is_alive()
    assert not scheduler._open_jobs.acquire(blocking=False)  # cancelled, not fired


def test_checksums_at_size_limit_zero_touch_no_file(tmp_path):
    """profiles/default sets --max-checksum-file-size 0; Snakemake still asks every input's
    checksum once per output of a finished job, each after four stat calls. Patched, limit 0
    answers None at once (even for an empty file, which Snakemake would hash), and any other
    limit is Snakemake's own. Reads Snakemake's source, so an upgrade that changes the loop fails
    here rather than silently slowing every hand-over."""
    import asyncio
    import inspect

    from snakemake.io import IOFile, _IOFile
    from snakemake.persistence import PersistenceBase

    from snaketune.workflow.support import skip_disabled_checksums

    assert "await infile.checksum(self.max_checksum_file_size)" in inspect.getsource(PersistenceBase.finished)
    skip_disabled_checksums()
    skip_disabled_checksums()  # once only: not wrapped twice
    assert _IOFile.checksum.snaketune
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    unchecked = IOFile(str(empty))  # no rule: Snakemake's own checksum would fail on it
    assert asyncio.run(unchecked.checksum(0)) is None
    with pytest.raises(AssertionError):  # a limit above 0 is Snakemake's (it needs the rule)
        asyncio.run(unchecked.checksum(1000))


def test_call_in_fork_returns_values_and_none_for_errors_and_hangs():
    import time
    import warnings

    from snaketune.base.procs import call_in_fork

    def noisy():
        print("to stdout")
        warnings.warn("a warning on stderr", stacklevel=1)
        return {"seconds": 0.25}

    assert call_in_fork(noisy, timeout=30) == {"seconds": 0.25}
    assert call_in_fork(lambda: 1 / 0, timeout=30) is None
    t0 = time.monotonic()
    assert call_in_fork(lambda: time.sleep(60), timeout=1) is None
    assert time.monotonic() - t0 < 30
