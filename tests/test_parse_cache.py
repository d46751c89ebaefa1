"""The parse-time cache of the validated config and plan (``snaketune/workflow/study.py``).

Every Snakemake process parses the workflow; a config seen before, with the same data files,
library versions and snaketune code, skips validation and planning. Each of those changing must
give a new cache file and a real recomputation; nothing changing must reuse the file.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
from pathlib import Path

import pytest

from snaketune.base import paths
from snaketune.runtime.protocol import ENV_SETTINGS
from snaketune.workflow import study as study_module
from snaketune.workflow import support

CONFIG = {
    "study": "cached",
    "data": {"csv": "table.csv", "target": "y"},
    "estimator": {"class": "sklearn.neighbors.KNeighborsClassifier"},
    "search": {"grid": {"n_neighbors": [1, 3]}},
    "cv": {"n_splits": 2},
}


def _table(rows: int, shift: int = 0) -> str:
    return "a,b,y\n" + "".join(f"{i + shift},{(i * 7) % 5},{i % 2}\n" for i in range(rows))


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ENV_SETTINGS, "")  # load_study sets it; restored after the test
    (tmp_path / "table.csv").write_text(_table(20))
    return tmp_path


@pytest.fixture
def validations(monkeypatch):
    """Count the real validations (a cache hit skips load_config)."""
    calls = []
    real = study_module.load_config

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(study_module, "load_config", counting)
    return calls


def _cache_files(workdir: Path) -> set[str]:
    return {p.name for p in (workdir / "results" / "cached" / ".snaketune").glob("plan-*.json")}


def _load(config=CONFIG):
    return support.load_study(dict(config), basedir=".")


def _assert_recomputed(workdir, validations, seen: set[str]) -> str:
    """A load that validates again and writes one new cache file (added to ``seen``)."""
    n = len(validations)
    study = _load()
    assert len(validations) == n + 1, "the cache was reused"
    new = _cache_files(workdir) - seen
    assert len(new) == 1, new
    seen |= new
    return study


def test_unchanged_config_reuses_the_cache(workdir, validations):
    first = _load()
    assert len(validations) == 1
    files = _cache_files(workdir)
    assert len(files) == 1
    (path,) = [workdir / "results" / "cached" / ".snaketune" / f for f in files]
    mtime = path.stat().st_mtime_ns
    again = _load()
    assert len(validations) == 1, "validated again although nothing changed"
    assert _cache_files(workdir) == files and path.stat().st_mtime_ns == mtime
    assert again.config == first.config
    assert again.plan.config_keys == first.plan.config_keys and again.plan.data_key == first.plan.data_key
    # Every plan field survives the cache (the estimator's task chooses prepare_data's call: a
    # cached plan without it changed that job's params, so the second run redid the data).
    assert again.plan == first.plan and first.plan.task == "classification"
    assert again.prepare_args() == first.prepare_args()


def test_a_data_change_invalidates_the_cache(workdir, validations):
    first = _load()
    seen = _cache_files(workdir)
    # Same size, same header, one value changed.
    (workdir / "table.csv").write_text(_table(20, shift=1))
    second = _assert_recomputed(workdir, validations, seen)
    assert second.plan.data_key != first.plan.data_key
    assert second.plan.config_keys != first.plan.config_keys  # new data: every trial is new
    # Putting the old data back finds the old cache file again.
    (workdir / "table.csv").write_text(_table(20))
    n = len(validations)
    assert _load().plan.config_keys == first.plan.config_keys
    assert len(validations) == n


def test_a_library_version_change_invalidates_the_cache(workdir, validations, monkeypatch):
    _load()
    seen = _cache_files(workdir)
    real = importlib.metadata.version
    for library in study_module.VERSIONED:
        monkeypatch.setattr(
            importlib.metadata, "version", lambda name, lib=library: "999.0" if name == lib else real(name)
        )
        _assert_recomputed(workdir, validations, seen)
    monkeypatch.setattr(importlib.metadata, "version", real)
    n = len(validations)
    _load()
    assert len(validations) == n  # back to the installed versions: the first file again


def test_a_code_change_invalidates_the_cache(workdir, validations, monkeypatch, tmp_path_factory):
    _load()
    seen = _cache_files(workdir)
    # A copy of the package tree (and the schema it hashes): same code, same key.
    repo = Path(study_module.__file__).resolve().parents[2]
    copy = tmp_path_factory.mktemp("code")
    shutil.copytree(repo / "snaketune", copy / "snaketune", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "workflow" / "schemas").mkdir(parents=True)
    shutil.copy(repo / "workflow" / "schemas" / "config.schema.yaml", copy / "workflow" / "schemas")
    monkeypatch.setattr(study_module, "__file__", str(copy / "snaketune" / "workflow" / "study.py"))
    monkeypatch.setattr(paths, "PACKAGE_PARENT", copy)  # the schema: the copy's workflow folder
    n = len(validations)
    _load()
    assert len(validations) == n and _cache_files(workdir) == seen, "an identical copy changed the key"

    # An edit in any module of the package (here one far from the workflow glue) ...
    plan_py = copy / "snaketune" / "search" / "plan.py"
    plan_py.write_text(plan_py.read_text() + "\n# edited\n")
    _assert_recomputed(workdir, validations, seen)
    # ... a new module ...
    (copy / "snaketune" / "search" / "extra.py").write_text("X = 1\n")
    _assert_recomputed(workdir, validations, seen)
    # ... and an edit of the schema.
    schema = copy / "workflow" / "schemas" / "config.schema.yaml"
    schema.write_text(schema.read_text() + "\n# edited\n")
    _assert_recomputed(workdir, validations, seen)


def test_a_config_change_invalidates_the_cache(workdir, validations):
    first = _load()
    seen = _cache_files(workdir)
    n = len(validations)
    second = support.load_study(dict(CONFIG, search={"grid": {"n_neighbors": [1, 3, 5]}}), basedir=".")
    assert len(validations) == n + 1 and len(_cache_files(workdir) - seen) == 1
    assert second.plan.config_keys[:2] == first.plan.config_keys and len(second.plan.config_keys) == 3


def test_a_corrupt_cache_file_is_recomputed(workdir, validations):
    first = _load()
    (path,) = (workdir / "results" / "cached" / ".snaketune").glob("plan-*.json")
    path.write_text('{"config": ')
    again = _load()
    assert len(validations) == 2 and again.plan.config_keys == first.plan.config_keys


# The keys memo (``<study>/.snaketune/keys/``): a config change misses the parse cache, but each
# space of a grid keeps its candidates and configuration keys, so a grown grid hashes only what
# is new. A memo entry must never give a plan other than a fresh one.


@pytest.fixture
def key_calls(monkeypatch):
    """Count the configuration keys computed (a memo hit computes none)."""
    from snaketune.search import plan as plan_module

    calls = []
    real = plan_module.config_key

    def counting(defining, params):
        calls.append(params)
        return real(defining, params)

    monkeypatch.setattr(plan_module, "config_key", counting)
    return calls


def _grid(*spaces) -> dict:
    return dict(CONFIG, search={"grid": list(spaces)})


def _fresh(config):
    """The plan made without any cache or memo."""
    from snaketune.config.load import load_config
    from snaketune.search.plan import make_plan

    return make_plan(load_config(dict(config), "."), ".")


def test_a_grown_grid_hashes_only_its_new_space(workdir, key_calls):
    base = {"n_neighbors": list(range(1, 12)), "weights": ["uniform", "distance"]}
    first = support.load_study(_grid(base), basedir=".")
    assert len(key_calls) == 22
    added = {"n_neighbors": [13], "weights": ["uniform"]}
    key_calls.clear()
    grown = support.load_study(_grid(base, added), basedir=".")
    assert key_calls == [{"n_neighbors": 13, "weights": "uniform"}], "the unchanged space was hashed again"
    assert grown.plan == _fresh(_grid(base, added))
    assert grown.plan.config_keys[:22] == first.plan.config_keys
    # A space moved after another keeps its keys too; the order is the grid's.
    key_calls.clear()
    swapped = support.load_study(_grid(added, base), basedir=".")
    assert key_calls == [] and swapped.plan == _fresh(_grid(added, base))


@pytest.mark.parametrize(
    "change",
    [
        {"seed": 7},
        {"scoring": ["balanced_accuracy"]},
        {"estimator": {"class": "sklearn.neighbors.KNeighborsClassifier", "params": {"p": 1}}},
        {"cv": {"n_splits": 3}},
        {"data": "rows"},
    ],
    ids=["seed", "scoring", "estimator", "cv", "data"],
)
def test_a_memo_entry_is_keyed_by_every_field_of_the_configuration_keys(workdir, key_calls, change):
    space = {"n_neighbors": [1, 3, 5]}
    first = support.load_study(_grid(space), basedir=".")
    if change == {"data": "rows"}:
        (workdir / "table.csv").write_text(_table(24))
        config = _grid(space)
    else:
        config = dict(_grid(space), **change)
    key_calls.clear()
    second = support.load_study(config, basedir=".")
    assert len(key_calls) == 3, "a memo entry made for other fields was used"
    assert second.plan == _fresh(config) and second.plan.config_keys != first.plan.config_keys


def test_an_unreadable_or_foreign_memo_entry_is_recomputed(workdir, key_calls, monkeypatch):
    space = {"n_neighbors": [1, 3, 5]}
    support.load_study(_grid(space), basedir=".")
    memo = workdir / "results" / "cached" / ".snaketune" / "keys"
    (entry,) = memo.glob("*.json")
    for broken in ('{"candidates": ', '{"candidates": [{"n_neighbors": 1}], "config_keys": []}'):
        entry.write_text(broken)
        key_calls.clear()
        # Another config (a parse-cache miss) with the same space.
        config = dict(_grid(space), report={"top_n": len(broken)})
        plan = support.load_study(config, basedir=".").plan
        assert len(key_calls) == 3 and plan == _fresh(config)
    # Other code or library versions never read the entry: its name holds them.
    monkeypatch.setattr(study_module, "code_salt", lambda: "other code")
    key_calls.clear()
    config = dict(_grid(space), report={"top_n": 3})
    plan = support.load_study(config, basedir=".").plan
    assert len(key_calls) == 3 and plan == _fresh(config) and len(list(memo.glob("*.json"))) == 2


def test_a_space_json_cannot_give_back_is_not_memoised(workdir, key_calls):
    # metric_params {1: 2}: JSON would give the key back as the string "1".
    space = {"n_neighbors": [1], "metric_params": [{1: 2}, None]}
    config = _grid(space)
    support.load_study(config, basedir=".")
    assert not list((workdir / "results" / "cached" / ".snaketune" / "keys").glob("*.json"))
    key_calls.clear()
    config = dict(config, report={"top_n": 3})
    plan = support.load_study(config, basedir=".").plan
    assert len(key_calls) == 2 and plan == _fresh(config)


def test_broken_batches_are_released_from_one_listing(workdir):
    """A batch's manifest goes when one of its trial files is missing, and only then."""
    from snaketune.workflow import jobs as workflow_jobs

    study = support.load_study(dict(CONFIG, search={"grid": {"n_neighbors": [1, 3, 5, 7]}}), basedir=".")
    ids = study.plan.trial_ids
    study.batches = {"b1": ids[:4], "b2": ids[4:], "b3": ids[:2]}
    assert workflow_jobs.release_broken_batches(study) == 0  # no manifests yet
    for batch in study.batches:
        manifest = Path(study.batch_manifest(batch))
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text("{}")
    for trial in ids:
        path = Path(study.plan.trial_path(trial))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    assert workflow_jobs.release_broken_batches(study) == 0
    Path(study.plan.trial_path(ids[5])).unlink()
    assert workflow_jobs.release_broken_batches(study) == 1
    assert sorted(p.stem for p in Path(study.batch_manifest("b1")).parent.glob("*.json")) == ["b1", "b3"]


def test_a_trials_call_is_named_without_building_it_and_written_once(workdir):
    from snaketune.base.jsonutil import digest, to_jsonable
    from snaketune.strategies import jobs

    plan = support.load_study(dict(CONFIG), basedir=".").plan
    ids = plan.trial_ids[:3]
    manifest = jobs.batch_manifest(plan.out, "b1")
    call = jobs.batch_call(plan, "b1", ids)
    # The name a batch's call has had since issue 28 (a derived param: renaming reruns nothing,
    # but it would rewrite every batch's call file).
    key = {"base": to_jsonable(plan.trial_spec_base), "out": plan.out, "trials": ids, "manifest": manifest}
    path = Path(call[1:])
    assert path.name == f"batch-{digest(key, 16)}.json"
    expected = {
        "specs": [plan.spec(t) for t in ids],
        "outputs": [plan.trial_path(t) for t in ids],
        "manifest": manifest,
    }
    assert json.loads(path.read_text()) == json.loads(json.dumps(to_jsonable(expected)))
    mtime = path.stat().st_mtime_ns
    assert jobs.batch_call(plan, "b1", ids) == call and path.stat().st_mtime_ns == mtime
    # Nested CV's batches: no manifest, in the study's call folder.
    nested = Path(jobs.trials_call(plan, ids, out="results/cached")[1:])
    assert nested.parent == Path("results/cached/.snaketune/calls") and nested != path
    assert json.loads(nested.read_text()) == {k: v for k, v in json.loads(path.read_text()).items() if k != "manifest"}
    # A call file is named by its content (the same name as a hash of the arguments).
    named = Path(jobs.call_file("results/cached", a=[1, (2, 3)], b={"c": 1.5})[1:])
    assert named.name == f"{digest({'a': [1, [2, 3]], 'b': {'c': 1.5}}, 16)}.json"
    assert json.loads(named.read_text()) == {"a": [1, [2, 3]], "b": {"c": 1.5}}


def test_existing_paths_come_from_one_listing_a_folder(workdir):
    (workdir / "t").mkdir()
    for name in ("b.json", "a.json"):
        (workdir / "t" / name).write_text("{}")
    (workdir / "top.json").write_text("{}")
    paths = ["t/a.json", "t/c.json", "none/a.json", "top.json", "t/b.json", "t"]
    assert support.existing(paths) == ["t/a.json", "top.json", "t/b.json", "t"]
    assert support.existing(paths) == [p for p in paths if Path(p).exists()]


def test_a_memo_entry_tells_nan_from_none(workdir, key_calls):
    """JSON (and the configuration keys) write NaN as null. A config with NaN is refused, even
    after the same config with None was cached; the keys memo itself does not mix them up."""
    from snaketune.config.load import load_config
    from snaketune.search.plan import make_plan
    from snaketune.workflow.study import KeysFiles

    steps = [
        {"name": "impute", "class": "sklearn.impute.SimpleImputer"},
        {"name": "knn", "class": "sklearn.neighbors.KNeighborsClassifier"},
    ]
    config = dict(CONFIG, estimator={"steps": steps})
    with_none = dict(config, search={"grid": [{"impute__missing_values": [None]}]})
    with_nan = dict(config, search={"grid": [{"impute__missing_values": [float("nan")]}]})
    assert support.load_study(with_none, basedir=".").plan.candidates == [{"impute__missing_values": None}]
    with pytest.raises(SystemExit):  # the config error, not the cached plan of None
        support.load_study(with_nan, basedir=".")
    # The memo, below the config checks: None's entry is never NaN's.
    memo = KeysFiles(workdir / "keys", "salt")
    checked = load_config(dict(with_none), ".")
    none_plan = make_plan(checked, ".", memo=memo)
    nan_plan = make_plan(dict(checked, search=with_nan["search"]), ".", memo=memo)
    assert none_plan.candidates == [{"impute__missing_values": None}]
    assert repr(nan_plan.candidates) == "[{'impute__missing_values': nan}]"
    assert nan_plan.config_keys == none_plan.config_keys  # the trial names: why NaN is refused
