"""The parse-time cache of the validated config and plan (``snaketune/workflow/study.py``).

Every Snakemake process parses the workflow; a config seen before, with the same data files,
library versions and snaketune code, skips validation and planning. Each of those changing must
give a new cache file and a real recomputation; nothing changing must reuse the file.
"""

from __future__ import annotations

import importlib.metadata
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
