"""The study at parse time: the validated config, its plan and strategy, the target list, and the
parse-time cache of the validated config and plan.

Kept out of the rule files so it is importable and tested without Snakemake;
:func:`snaketune.workflow.support.load_study` builds it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from snaketune.config.load import ConfigError, load_config, read_yaml
from snaketune.search.plan import Plan, make_plan
from snaketune.strategies import jobs
from snaketune.strategies.base import Strategy
from snaketune.strategies.registry import strategy_class, strategy_for


@dataclass
class Study:
    """A validated study: its config, its trial plan and its search strategy."""

    config: dict
    plan: Plan
    # Grid/random search with trials_per_job > 1: batch id -> trial ids
    # (:func:`snaketune.workflow.jobs.batches`).
    batches: dict[str, list[str]] = field(default_factory=dict)
    # Batch jobs run their trials on forks: a local run with trials_per_job auto
    # (snaketune.workflow.jobs.pool_cores).
    pooled: bool = False

    @cached_property
    def strategy(self) -> Strategy:
        """The :class:`~snaketune.strategies.base.Strategy` of the config's ``search`` kind."""
        return strategy_for(self.config, self.plan)

    @property
    def command(self) -> dict | None:
        """The ``command:`` section of a command study (your own training script), else None."""
        return self.config.get("command")

    @property
    def out(self) -> str:
        return self.plan.out

    @property
    def trial_paths(self) -> list[str]:
        return self.strategy.trial_paths

    def batch_manifest(self, batch: str) -> str:
        return jobs.batch_manifest(self.out, batch)

    @property
    def job_outputs(self) -> list[str]:
        """What Snakemake tracks for the trials: one manifest a batch, else every trial file.

        A batched study tracks its batches, not its trials: a DAG of 10,000 trial files costs
        Snakemake seconds on every run, one of 64 batch manifests does not. Each trial still has
        its own file; :func:`~snaketune.workflow.jobs.release_broken_batches` makes a deleted trial
        file rerun its batch.
        """
        if self.batches:
            return [self.batch_manifest(b) for b in self.batches]
        return self.trial_paths

    @property
    def data_files(self) -> list[str]:
        """The files the prepare job writes to the data folder (arrays, or a table's Arrow files)."""
        from snaketune.base.data import stored_files

        return stored_files(self.config.get("data") or {})  # command studies have none

    def prepare_args(self) -> dict:
        """Extra arguments of the prepare call (:func:`~snaketune.search.plan.prepare_args`)."""
        from snaketune.search.plan import prepare_args

        return prepare_args(self.config, self.plan)

    def plot_names(self) -> list[str]:
        from snaketune.results.plots import plot_names

        return plot_names(self.config) + list(self.strategy.extra_plots)

    def leaderboard_outputs(self) -> list[str]:
        out = self.out
        return [
            f"{out}/leaderboard.csv",
            f"{out}/leaderboard.md",
            f"{out}/best.json",
        ] + self.strategy.side_output_paths()

    def plan_summary(self) -> dict:
        """What aggregation needs of the plan (JSON-able), with the strategy's kind (aggregation
        asks that strategy for rows, columns and the best); ``classifier`` chooses the CV advice
        (aggregation does not import scikit-learn to ask the estimator)."""
        return dict(self.strategy.plan_summary(), strategy=self.strategy.kind)

    def refit_budget(self) -> dict | None:
        """How the refit trains the best (a budgeted search's resource; units from best.json)."""
        return self.strategy.refit_budget()

    def final_outputs(self) -> list[str]:
        out = self.out
        return (
            self.leaderboard_outputs()
            + ([] if self.command else [f"{out}/model.pkl"])
            + [f"{out}/refit.json"]
            + [f"{out}/plots/{name}.png" for name in self.plot_names()]
            + [f"{out}/report/{page}.html" for page in ("leaderboard", "best", "study")]
            + self.job_outputs
            + self.nested_outputs()
            + self.strategy.step_outputs()
        )  # trials (and ask files) are targets too: Snakemake does not redo a deleted intermediate file

    @property
    def nested(self):
        """The :class:`~snaketune.search.nested.NestedPlan` when ``nested`` is set, else None."""
        if "_nested" not in self.__dict__:
            from snaketune.search.nested import make_nested_plan

            self.__dict__["_nested"] = make_nested_plan(self.config, self.plan)
        return self.__dict__["_nested"]

    def nested_outputs(self) -> list[str]:
        """nested.json, its plot and report page, and every inner trial (empty without ``nested``)."""
        if self.nested is None:
            return []
        out = self.out
        return [f"{out}/nested.json", f"{out}/plots/nested.png", f"{out}/report/nested.html"] + self.nested.trial_paths


def fail_config(error: ConfigError) -> None:
    # One line per problem and no traceback: exit before Snakemake builds any job.
    print(str(error), file=sys.stderr, flush=True)
    sys.exit(1)


def merge_overrides(config: dict, overrides: dict) -> None:
    """Deep-merge ``overrides`` into ``config`` (Snakemake's rule for ``--config`` values)."""
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            merge_overrides(config[key], value)
        else:
            config[key] = value


def read_raw_config(config: dict, configfiles: list, basedir, main_process: bool, local_default: bool) -> dict:
    """The raw config: Snakemake's, or ./config.yaml (``local_default``: no ``--configfile``, the
    file exists) with Snakemake's ``--config`` values on top. Raises :class:`ConfigError`."""
    if not config or local_default:
        # No --configfile: ./config.yaml, with any --config values (e.g. from a profile) on
        # top, as Snakemake's own `configfile:` directive would merge them.
        overrides, config = config, read_yaml(Path(basedir) / "config.yaml")
        merge_overrides(config, overrides)
    elif main_process:
        # Snakemake parsed --configfile with a loader that accepts duplicate keys and Python
        # tags; reading it again as plain data reports those with file and line.
        problems = []
        for path in configfiles:
            try:
                read_yaml(path)
            except ConfigError as error:
                problems += error.problems
        if problems:
            raise ConfigError(problems)
    return config


def validate(config: dict, basedir, main_process: bool) -> tuple[dict, Plan]:
    """The validated config and its plan, from the parse cache when seen before. Raises
    :class:`ConfigError`."""
    try:
        salt = code_salt()
    except Exception:  # noqa: BLE001 - a library without metadata etc.: no cache, as with no folder
        salt = None
    cache = plan_cache_path(config, basedir, main_process, salt)
    cached = read_plan_cache(cache)
    if cached is not None:
        return cached
    study_config = load_config(config, basedir, check_data=main_process)
    candidates = None if strategy_class(study_config).expands_space else []
    memo = KeysFiles(cache.parent / "keys", salt) if cache is not None and salt is not None else None
    try:
        plan = make_plan(study_config, basedir, candidates=candidates, memo=memo)
    except Exception as exc:  # noqa: BLE001 - the checks missed something: still one line
        message = " ".join(str(exc).split())
        raise ConfigError([f"search: cannot plan the trials: {type(exc).__name__}: {message}"]) from None
    write_plan_cache(cache, study_config, plan)
    return study_config, plan


# Parse-time cache: every Snakemake process (and every cluster job) parses the workflow again.
# Validating against scikit-learn and expanding the space import scikit-learn (~1.4 s); a config
# seen before, with the same data files, library versions and snaketune code, skips both.
VERSIONED = ("scikit-learn", "numpy", "scipy", "snakemake")


def study_folder(config: dict) -> str | None:
    """``<output_dir>/<study>`` of a raw (not yet validated) config, or None unless both are plain.

    Used before validation (parse cache, early worker) to write only where a valid config would.
    """
    import re

    study, output_dir = config.get("study"), config.get("output_dir", "results")
    if not (isinstance(study, str) and re.fullmatch(r"[A-Za-z0-9_-]+", study)):
        return None
    if (
        not isinstance(output_dir, str)
        or not output_dir
        or Path(output_dir).is_absolute()
        or ".." in Path(output_dir).parts
    ):
        return None
    return f"{output_dir}/{study}"


def plan_cache_path(config: dict, basedir, main_process: bool, salt: str | None) -> Path | None:
    """``<study>/.snaketune/plan-<key>.json``: named by the raw config, its data files, the
    process kind and ``salt`` (:func:`code_salt`); None when the config cannot be cached."""
    from snaketune.base.data import source_digest
    from snaketune.base.jsonutil import digest

    if "command" in config or salt is None:
        return None  # a command study hashes its input files at every parse (search/command.py)
    folder = study_folder(config)
    if folder is None:
        return None
    try:
        data = source_digest(config.get("data") or {}, Path(basedir))
    except Exception:  # noqa: BLE001 - a missing file etc.: validate the slow way, which reports it
        return None
    # repr beside the JSON: canonical JSON writes NaN as null (a grid of [nan] is not one of [null]).
    key = digest({"config": config, "repr": repr(config), "data": data, "code": salt, "main": main_process}, 20)
    return Path(basedir) / folder / ".snaketune" / f"plan-{key}.json"


def code_salt() -> str:
    """A digest of what every parse-time result depends on besides its inputs: the library
    versions (``VERSIONED``), snaketune's code and its config schema."""
    import importlib.metadata

    from snaketune.base.jsonutil import digest, file_sha256
    from snaketune.base.paths import schema_path

    versions = {name: importlib.metadata.version(name) for name in VERSIONED}
    package = Path(__file__).resolve().parents[1]
    code = [file_sha256(p) for p in sorted(package.rglob("*.py"))]
    code.append(file_sha256(schema_path()))
    return digest({"versions": versions, "code": code}, 20)


def read_plan_cache(path: Path | None):
    if path is None or not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
        fields = saved["plan"]
        fields["candidates"] = _candidates(fields["candidates"])
        return saved["config"], Plan(**fields)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_plan_cache(path: Path | None, config: dict, plan: Plan) -> None:
    if path is None:
        return
    from snaketune.base.jsonutil import canonical, write_bytes_atomic

    fields = {
        "out": plan.out,
        "data_key": plan.data_key,
        "cv_key": plan.cv_key,
        "n_folds": plan.n_folds,
        "candidates": plan.candidates,
        "config_keys": plan.config_keys,
        "trial_spec_base": plan.trial_spec_base,
        "classifier": plan.classifier,
        "task": plan.task,
    }
    text = canonical({"config": config, "plan": fields})
    saved = json.loads(text)
    if saved["config"] != config or _candidates(saved["plan"]["candidates"]) != plan.candidates:
        return  # e.g. NaN, or a dict with integer keys: JSON would not give them back
    try:
        # Compact (json's C encoder) and not synced: a cache that reads back wrong is recomputed.
        write_bytes_atomic(path, text.encode(), sync=False)
    except OSError:
        pass


@dataclass(frozen=True)
class KeysFiles:
    """The :class:`~snaketune.search.plan.KeysMemo` of a study: one file a grid space in
    ``<study>/.snaketune/keys/``, named by its key and the ``salt`` (:func:`code_salt`), so
    other code or library versions never read it. A file that cannot be read is computed again."""

    folder: Path
    salt: str

    def path(self, key: str) -> Path:
        from snaketune.base.jsonutil import digest

        return self.folder / f"{digest({'key': key, 'salt': self.salt}, 20)}.json"

    def get(self, key: str) -> tuple[list[dict], list[str]] | None:
        try:
            saved = json.loads(self.path(key).read_text())
            candidates, keys = _candidates(saved["candidates"]), saved["config_keys"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        if not (isinstance(keys, list) and len(keys) == len(candidates) and all(isinstance(k, str) for k in keys)):
            return None
        return candidates, keys

    def put(self, key: str, candidates: list[dict], config_keys: list[str]) -> None:
        from snaketune.base.jsonutil import to_jsonable, write_bytes_atomic

        text = json.dumps({"candidates": to_jsonable(candidates), "config_keys": config_keys}, allow_nan=True)
        if _candidates(json.loads(text)["candidates"]) != candidates:
            return  # e.g. NaN, or a dict with integer keys: JSON would not give them back
        try:
            write_bytes_atomic(self.path(key), text.encode(), sync=False)
        except OSError:
            pass


def _candidates(saved: list[dict]) -> list[dict]:
    """Candidates read back from JSON (lists to tuples, as the search spaces give them)."""
    from snaketune.search.space import as_candidate

    return [{k: as_candidate(v) for k, v in c.items()} for c in saved]
