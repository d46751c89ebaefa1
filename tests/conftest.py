"""Shared test helpers: run the real workflow on small configs in a temporary folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SNAKEMAKE = str(BIN / "snakemake")


# Where Debian installs system tools. A normal user's PATH often lacks the sbin folders, where
# slurmctld, slurmd, slurmdbd, munged and mariadbd live.
SYSTEM_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def require_system_env() -> bool:
    """True in CI (.ci/run): a missing system tool, and any skipped test, is a failure."""
    return os.environ.get("SNAKETUNE_REQUIRE_SYSTEM", "") not in ("", "0")


def find_system(*names: str) -> str | None:
    """Full path of the first of ``names`` found on PATH or in Debian's system folders."""
    search = os.pathsep.join([p for p in os.environ.get("PATH", "").split(os.pathsep) if p] + list(SYSTEM_DIRS))
    for name in names:
        found = shutil.which(name, path=search)
        if found:
            return found
    return None


def require_system(*names: str) -> str:
    """Full path of a system tool (the first of ``names`` found, alternatives of one tool).

    Skips when none is installed, except in CI (SNAKETUNE_REQUIRE_SYSTEM=1) where that is a failure.
    """
    found = find_system(*names)
    if found:
        return found
    what = " or ".join(names)
    if require_system_env():
        pytest.fail(f"{what} is not installed (CI installs it in .ci/run)", pytrace=False)
    pytest.skip(f"{what} is not installed")


def _skip_as_failure(report) -> None:
    if report.skipped and not hasattr(report, "wasxfail") and require_system_env():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, and SNAKETUNE_REQUIRE_SYSTEM=1 makes every skip a failure: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI no test may skip: a skip (in setup, call or teardown) is reported as a failure."""
    outcome = yield
    _skip_as_failure(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """In CI a module that skips itself at collection (importorskip, allow_module_level) fails."""
    outcome = yield
    _skip_as_failure(outcome.get_result())


class Study:
    """A study config in its own working directory, run with real Snakemake."""

    def __init__(self, workdir: Path, config: dict):
        self.workdir = workdir
        self.config = config
        self.write()

    def write(self) -> None:
        (self.workdir / "config.yaml").write_text(yaml.safe_dump(self.config, sort_keys=False))

    @property
    def out(self) -> Path:
        return self.workdir / self.config.get("output_dir", "results") / self.config["study"]

    def snakemake(self, *args, check: bool = True, timeout: float = 600, env=None) -> subprocess.CompletedProcess:
        cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(self.workdir), *args]
        if not any(a.startswith("--cores") or a == "-c" or a.startswith("-j") for a in args):
            cmd += ["--cores", "2"]
        full_env = dict(os.environ, **(env or {}))
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env)
        if check and proc.returncode != 0:
            raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
        return proc

    def trial_files(self) -> list[Path]:
        return sorted((self.out / "trials").glob("*.json"))

    def leaderboard(self):
        import pandas as pd

        return pd.read_csv(self.out / "leaderboard.csv", dtype={"config_key": str})

    def best(self) -> dict:
        return json.loads((self.out / "best.json").read_text())


@pytest.fixture
def make_study(tmp_path):
    def factory(config: dict, name: str = "w") -> Study:
        workdir = tmp_path / name
        workdir.mkdir(exist_ok=True)
        return Study(workdir, config)

    return factory


def full_output(proc: subprocess.CompletedProcess) -> str:
    """What Snakemake printed plus its complete log (``.snakemake/log/``, named at the end of the
    output): the quiet terminal leaves the job-stats table and per-job lines to that log."""
    import re

    text = proc.stdout + proc.stderr
    if "Job stats:" in text:  # the per-job listing (--logger-snaketune-jobs, -p) or a dry run
        return text
    for path in re.findall(r"^Complete log\(s\): (.+)$", text, re.M):
        text += "\n" + "\n".join(Path(p.strip()).read_text() for p in path.split(", "))
    return text


def jobs_run(proc: subprocess.CompletedProcess, rule: str = "trial") -> int:
    """Number of jobs of ``rule`` Snakemake ran, from its job-stats table."""
    import re

    text = full_output(proc)
    m = re.search(rf"^\s*{rule}\s+(\d+)\s*$", text, re.M)
    return int(m.group(1)) if m else 0


def without_timings(frame):
    """A leaderboard minus what legitimately varies between runs: timings and completion order."""
    drop = [c for c in frame.columns if c.endswith("_time") or c in ("completion_order", "completed_at")]
    return frame.drop(columns=drop)


class Installed:
    """snaketune as a user installs it: a wheel built from a copy of this repository (deleted
    before the install), installed with its pinned dependencies into a new venv."""

    def __init__(self, venv: Path, wheel: Path):
        self.venv = venv
        self.wheel = wheel
        self.bin = venv / "bin"

    def env(self) -> dict:
        # Nothing of the clone or of the test's own venv on the paths.
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        env["PATH"] = os.pathsep.join([str(self.bin), env.get("PATH", "")])
        return env

    def run(self, *cmd: str, cwd: Path, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        """Run an installed command (``snaketune``, ``snakemake``, ``python``) in ``cwd``."""
        proc = subprocess.run(
            [str(self.bin / cmd[0]), *cmd[1:]], cwd=cwd, env=self.env(), capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
            )
        return proc


_SKIP_EVERYWHERE = shutil.ignore_patterns("__pycache__", ".*_cache", "*.egg-info", ".snakemake")
_SKIP_AT_TOP = {".git", ".venv", "results", "build", "dist"}


def _source_skip(folder: str, names: list[str]) -> set[str]:
    """What a copy of the checkout leaves out: caches anywhere; outputs, venv and builds at its
    top (``snaketune/results`` is a package)."""
    skip = set(_SKIP_EVERYWHERE(folder, names))
    return skip | (_SKIP_AT_TOP & set(names) if Path(folder) == REPO else set())


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Installed:
    """A non-editable install of this checkout in a fresh venv (~1 min: pip's cache serves the
    pinned dependencies)."""
    root = tmp_path_factory.mktemp("installed")
    source, dist, venv = root / "source", root / "dist", root / "venv"
    shutil.copytree(REPO, source, ignore=_source_skip)
    pip = ["pip", "--disable-pip-version-check", "-q"]
    _quiet([sys.executable, "-m", *pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(source)])
    shutil.rmtree(source)  # the clone is out of reach: only the wheel is installed
    (wheel,) = dist.glob("snaketune-*.whl")
    _quiet([sys.executable, "-m", "venv", str(venv)])
    _quiet([str(venv / "bin" / "python"), "-m", *pip, "install", "-c", str(REPO / "constraints.txt"), str(wheel)])
    return Installed(venv, wheel)


def _quiet(cmd: list[str]) -> None:
    """Run a set-up command; its output only when it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
