"""What the Snakefile needs at parse time: the validated config, the plan, the target list.

Kept out of the rule files so it is importable and tested without Snakemake.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from snaketune.config.load import ConfigError, load_config, read_yaml
from snaketune.search.plan import Plan, make_plan
from snaketune.strategies.base import Strategy
from snaketune.strategies.registry import strategy_class, strategy_for
from snaketune.workflow.workers import (  # noqa: F401 - the rules call the lifecycle as ws.*
    cancel_scheduler_timers,
    end_of_run,
    prestart_worker,
    start_worker,
    stop_worker,
)


@dataclass
class Study:
    """A validated study: its config, its trial plan and its search strategy."""

    config: dict
    plan: Plan
    # Grid/random search with trials_per_job > 1: batch id -> trial ids (see :func:`batches`).
    batches: dict[str, list[str]] = field(default_factory=dict)

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
        return f"{self.out}/batches/{batch}.json"

    @property
    def job_outputs(self) -> list[str]:
        """What Snakemake tracks for the trials: one manifest a batch, else every trial file.

        A batched study tracks its batches, not its trials: a DAG of 10,000 trial files costs
        Snakemake seconds on every run, one of 64 batch manifests does not. Each trial still has
        its own file; :func:`release_broken_batches` makes a deleted trial file rerun its batch.
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
        """Extra arguments of the prepare call: time-series CV holds out the last rows; the
        estimator's task says whether a shuffled held-out split is stratified (given only then,
        so studies whose split it cannot change keep their call)."""
        from snaketune.base.splits import ordered
        from snaketune.search.plan import stratified_holdout_possible

        if ordered(self.config["cv"]):
            return {"ordered": True}
        if stratified_holdout_possible(self.config) and self.plan.task is not None:
            return {"task": self.plan.task}
        return {}

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


def load_study(config: dict, workflow=None, basedir: str | Path = ".") -> Study:
    """Validate the config Snakemake loaded (or ./config.yaml) and build the plan.

    Called at parse time by every Snakemake process; only the main process checks the data
    source (that reads it), cluster jobs re-parsing the workflow skip it. Any problem ends the
    process with one ``config error:`` line each and exit status 1, before a job is scheduled.

    Parameters
    ----------
    config : dict
        Snakemake's ``config`` (from ``--configfile``/``--config``); empty means ./config.yaml.
    workflow : snakemake.workflow.Workflow, optional
        The running workflow, to tell the main process from jobs and find ``--configfile`` paths.
    basedir : path
        Folder that relative data paths are resolved against.
    """
    main_process = True
    configfiles = []
    if workflow is not None:
        main_process = is_main_process(workflow)
        configfiles = list(getattr(workflow, "overwrite_configfiles", None) or [])
    try:
        if not config or (workflow is not None and not configfiles and (Path(basedir) / "config.yaml").exists()):
            # No --configfile: ./config.yaml, with any --config values (e.g. from a profile) on
            # top, as Snakemake's own `configfile:` directive would merge them.
            overrides, config = config, read_yaml(Path(basedir) / "config.yaml")
            _merge(config, overrides)
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
        prestart_worker(config, _study_folder(config) if workflow is not None and main_process else None)
        cache = _plan_cache_path(config, basedir, main_process)
        cached = _read_plan_cache(cache)
        if cached is not None:
            study_config, plan = cached
        else:
            study_config = load_config(config, basedir, check_data=main_process)
            candidates = None if strategy_class(study_config).expands_space else []
            try:
                plan = make_plan(study_config, basedir, candidates=candidates)
            except Exception as exc:  # noqa: BLE001 - the checks missed something: still one line
                message = " ".join(str(exc).split())
                raise ConfigError([f"search: cannot plan the trials: {type(exc).__name__}: {message}"]) from None
            _write_plan_cache(cache, study_config, plan)
    except ConfigError as error:
        fail_config(error)
    set_run_settings(study_config)
    return Study(study_config, plan)


def _merge(config: dict, overrides: dict) -> None:
    """Deep-merge ``overrides`` into ``config`` (Snakemake's rule for ``--config`` values)."""
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            _merge(config[key], value)
        else:
            config[key] = value


# Parse-time cache: every Snakemake process (and every cluster job) parses the workflow again.
# Validating against scikit-learn and expanding the space import scikit-learn (~1.4 s); a config
# seen before, with the same data files, library versions and snaketune code, skips both.
_VERSIONED = ("scikit-learn", "numpy", "scipy", "snakemake")


def _study_folder(config: dict) -> str | None:
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


def _plan_cache_path(config: dict, basedir, main_process: bool) -> Path | None:
    import importlib.metadata

    from snaketune.base.data import source_digest
    from snaketune.base.jsonutil import digest, file_sha256

    if "command" in config:
        return None  # a command study hashes its input files at every parse (search/command.py)
    folder = _study_folder(config)
    if folder is None:
        return None
    try:
        data = source_digest(config.get("data") or {}, Path(basedir))
        versions = {name: importlib.metadata.version(name) for name in _VERSIONED}
    except Exception:  # noqa: BLE001 - a missing file etc.: validate the slow way, which reports it
        return None
    from snaketune.base.paths import schema_path

    package = Path(__file__).resolve().parents[1]
    code = [file_sha256(p) for p in sorted(package.rglob("*.py"))]
    code.append(file_sha256(schema_path()))
    key = digest({"config": config, "data": data, "versions": versions, "code": code, "main": main_process}, 20)
    return Path(basedir) / folder / ".snaketune" / f"plan-{key}.json"


def _read_plan_cache(path: Path | None):
    if path is None or not path.exists():
        return None
    from snaketune.search.space import as_candidate

    try:
        saved = json.loads(path.read_text())
        fields = saved["plan"]
        fields["candidates"] = [{k: as_candidate(v) for k, v in c.items()} for c in fields["candidates"]]
        return saved["config"], Plan(**fields)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_plan_cache(path: Path | None, config: dict, plan: Plan) -> None:
    if path is None:
        return
    from snaketune.base.jsonutil import write_json_atomic

    fields = {
        "out": plan.out,
        "data_key": plan.data_key,
        "cv_key": plan.cv_key,
        "n_folds": plan.n_folds,
        "candidates": plan.candidates,
        "config_keys": plan.config_keys,
        "trial_spec_base": plan.trial_spec_base,
        "classifier": plan.classifier,
    }
    try:
        write_json_atomic(path, {"config": config, "plan": fields})
    except OSError:
        pass


def export_job_environment() -> str:
    """Environment every job inherits: the package on PYTHONPATH (SNAKETUNE_PACKAGE_PARENT for
    the job client, which runs isolated from it), this Python first on PATH, and SNAKETUNE_HOME,
    the workflow's folder (the job client's path; absolute, so --directory works).

    Found from the package, not from ``workflow.basedir``: in a Snakemake ``module`` that is the
    including Snakefile's folder. Returns the workflow's folder.
    """
    from snaketune.base.paths import PACKAGE_PARENT, workflow_root

    parent = str(PACKAGE_PARENT)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (parent, os.environ.get("PYTHONPATH")) if p)
    os.environ["PATH"] = os.pathsep.join((os.path.dirname(sys.executable), os.environ.get("PATH", "")))
    os.environ["SNAKETUNE_HOME"] = str(workflow_root())
    os.environ["SNAKETUNE_PACKAGE_PARENT"] = parent
    return os.environ["SNAKETUNE_HOME"]


def set_run_settings(config: dict) -> None:
    """How trials run (timeout, error_score raise, cache folder) as one JSON value every job
    inherits: not a rule parameter, so changing it does not rerun finished trials."""
    from snaketune.evaluation.records import RunSettings
    from snaketune.runtime.protocol import ENV_SETTINGS

    settings = RunSettings(
        timeout=config.get("trial_timeout") or None,
        raise_errors=config["error_score"] == "raise",
        cache_dir=os.path.abspath(f"{config['output_dir']}/{config['study']}/.cache/trials"),
    )
    os.environ[ENV_SETTINGS] = settings.to_json()


def call_args(**kwargs) -> str:
    """A call's keyword arguments as JSON (rule params: what the call computes)."""
    return json.dumps(kwargs, sort_keys=True, separators=(",", ":"), default=str)


def call_file(study: Study, **kwargs) -> str:
    """A call's keyword arguments written once to ``<study>/.snaketune/calls/<digest>.json``;
    returns ``@<path>``.

    A file, not a rule parameter: Snakemake stores a job's params and command with every output,
    and one command-line argument is capped at 128 KiB. The name is a content hash, so the params
    check still reruns a job whose arguments change, and an existing file never needs rewriting.
    """
    from snaketune.base.jsonutil import digest, to_jsonable, write_json_atomic

    kwargs = to_jsonable(kwargs)
    path = Path(study.out) / ".snaketune" / "calls" / f"{digest(kwargs, 16)}.json"
    if not path.exists():
        write_json_atomic(path, kwargs)
    return f"@{path}"


def trial_args(plan: Plan, trial_id: str) -> str:
    return call_args(specs=[plan.spec(trial_id)], outputs=[plan.trial_path(trial_id)])


def batch_args(study: Study, batch: str) -> str:
    """A batch's trials and its manifest, in a file (see :func:`call_file`).

    The rules pass this as a *derived* param (a function of ``output``), which Snakemake's params
    check leaves out: a batch that loses members (an edit reverted) is not rerun for nothing. A
    batch with a member that has no trial file yet (a new configuration) reruns because
    :func:`release_broken_batches` deletes its manifest; trial files are named by their content,
    so a member with a file has nothing to compute.
    """
    from snaketune.base.jsonutil import digest, to_jsonable, write_json_atomic

    plan, trial_ids = study.plan, study.batches[batch]
    # Named by what fixes the file's content without building it: a trial id names its parameters
    # by content hash, the rest is the plan's spec base. Hashing every batch's full specs (100,000
    # trials) was most of a rerun's parse (issue 28).
    manifest = study.batch_manifest(batch)
    name = digest(
        {"base": to_jsonable(plan.trial_spec_base), "out": plan.out, "trials": trial_ids, "manifest": manifest}, 16
    )
    path = Path(study.out) / ".snaketune" / "calls" / f"batch-{name}.json"
    if not path.exists():
        specs = [plan.spec(t) for t in trial_ids]
        write_json_atomic(
            path, {"specs": specs, "outputs": [plan.trial_path(t) for t in trial_ids], "manifest": manifest}
        )
    return f"@{path}"


def nested_trial_args(study: Study, trial_id: str) -> str:
    """One inner trial of nested CV (its outer fold's plan knows it)."""
    return trial_args(study.nested.plan_of(trial_id), trial_id)


def nested_batch_args(study: Study, o: int, trial_ids: list[str]) -> str:
    """A batch of outer fold ``o``'s inner trials, in a file (see :func:`call_file`)."""
    plan = study.nested.inner[o]
    return call_file(study, specs=[plan.spec(t) for t in trial_ids], outputs=[plan.trial_path(t) for t in trial_ids])


def nested_batches(study: Study) -> list[tuple[int, str, list[str]]]:
    """(outer fold, batch id, trial ids) with the study's trials per job (``auto``: as measured
    for the study's own trials); empty when every inner trial is its own job."""
    from snaketune.runtime.batching import make_batches, resolve_trials_per_job

    per_job = resolve_trials_per_job(study.config, study.plan, Path("."), 1, measure=False)
    return [
        (o, batch, ids)
        for o, plan in enumerate(study.nested.inner)
        for batch, ids in make_batches(plan.config_keys, plan.n_folds, per_job).items()
    ]


def nested_outer_args(study: Study, o: int) -> str:
    """Outer fold ``o``: its inner plan (to pick the winner) and where its data and splits are."""
    nested, config = study.nested, study.config
    plan = nested.inner[o]
    return call_file(
        study,
        plan={"candidates": plan.candidates, "config_keys": plan.config_keys, "n_folds": plan.n_folds,
              "data_dir": plan.data_dir},
        config={k: config[k] for k in ("scoring", "refit", "error_score", "return_train_score", "estimator",
                                        "allowed_modules", "seed")},
        outer_splits=nested.outer_splits_path,
        outer_fold=o,
        trials_dir=f"{nested.out}/trials",
        outputs=[nested.outer_result_path(o)],
    )  # fmt: skip


def slot_args(study: Study, b: int, i: int, j: int) -> str:
    """The trials of one adaptive slot (one per fold)."""
    slots = study.strategy.layout
    return call_args(specs=slots.slot_specs(b, i, j), outputs=slots.slot_trials(b, i, j))


def slot_group_args(study: Study, b: int, i: int, group: list[int]) -> str:
    """The trials of several slots of one rung, in a file (see :func:`call_file`)."""
    slots = study.strategy.layout
    specs = [s for j in group for s in slots.slot_specs(b, i, j)]
    outputs = [p for j in group for p in slots.slot_trials(b, i, j)]
    return call_file(study, specs=specs, outputs=outputs)


def slot_groups(study: Study) -> list[tuple[int, int, list[int]]]:
    """Slots per job for an adaptive study; empty when every slot is its own job."""
    groups = study.strategy.layout.slot_groups(study.config.get("trials_per_job", "auto"))
    return [] if all(len(g) == 1 for _, _, g in groups) else groups


def print_top(study: Study, n: int = 5) -> None:
    """Show the top-n table at the end of a successful run."""
    path = Path(study.out) / "leaderboard.md"
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.startswith("|")]
    print(f"\nTop {n} of study {study.config['study']!r} ({path}):")
    print("\n".join(lines[: 2 + n]))
    try:
        best = json.loads((Path(study.out) / "best.json").read_text())
    except (OSError, ValueError):
        return
    if not best.get("no_best"):  # nothing to compare with
        print_comparison(best)
    print_nested(study)
    with contextlib.suppress(OSError, ValueError):
        refit = json.loads((Path(study.out) / "refit.json").read_text())
        if refit.get("status") == "timeout":
            print(f"\nno refit model: {refit['reason']}")
    failed = best.get("n_failed", 0) + best.get("n_timeout", 0)
    if failed:
        print(f"\n{failed} of {best['n_trials']} trials failed (recorded, scored {study.config['error_score']}):")
        for item in best.get("failures", []):
            print(f"  {item['trials']} x {item['error']}")
    for item in best.get("trial_warnings", [])[:3]:
        print(f"warning in {item['trials']} trials: {item['warning']}")


def no_best(study: Study) -> str | None:
    """best.json's reason why no configuration is best (every one failed or timed out), or None."""
    try:
        return json.loads((Path(study.out) / "best.json").read_text()).get("no_best")
    except (OSError, ValueError):
        return None


def print_comparison(best: dict) -> None:
    """The comparison with the best (best.json ``comparison``): one sentence, and its warning."""
    comparison = best.get("comparison")
    if comparison:
        print(comparison["sentence"])
        if comparison.get("warning"):
            print(f"warning: {comparison['warning']}")


def print_nested(study: Study) -> None:
    """Nested CV's one-sentence answer (nested.json), when the study has ``nested``."""
    try:
        doc = json.loads((Path(study.out) / "nested.json").read_text()) if study.nested else None
    except (OSError, ValueError):
        return
    if doc:
        print(doc["sentence"])


def batches(study: Study, workflow=None) -> dict[str, list[str]]:
    """Batches of trials for ``trials_per_job`` (``auto`` measured in the main process only)."""
    from snaketune.runtime.batching import make_batches, resolve_trials_per_job

    if not study.strategy.batched:
        return {}
    if study.command and study.config.get("trials_per_job", 1) == "auto":
        return {}  # nothing to measure without running the user's command: one trial a job
    main_process, cores = True, 1
    if workflow is not None:
        main_process = is_main_process(workflow)
        try:
            cores = workflow.cores or 1
        except Exception:  # noqa: BLE001 - `--report` and `--lint` run without --cores
            cores = 1
    per_job = resolve_trials_per_job(study.config, study.plan, Path("."), cores, main_process)
    return make_batches(study.plan.config_keys, study.plan.n_folds, per_job)


def release_broken_batches(study: Study) -> int:
    """Delete the manifest of every batch with a member that has no trial file, so Snakemake
    reruns it.

    Snakemake tracks a batch by its manifest alone; a trial file deleted by hand (or found
    corrupt and deleted, as the aggregation error says) must still rerun, and so must a
    configuration new to the batch (its params are not checked: see :func:`batch_args`). The
    batch's remaining trial files are kept as they are (a batch skips trials whose file is a
    complete record).
    Returns the number of manifests removed.
    """
    removed = 0
    for batch, trial_ids in study.batches.items():
        manifest = Path(study.batch_manifest(batch))
        if manifest.exists() and not all(os.path.exists(study.plan.trial_path(t)) for t in trial_ids):
            manifest.unlink(missing_ok=True)
            removed += 1
    return removed


def is_main_process(workflow) -> bool:
    """The Snakemake process the user started (not a job re-parsing the workflow)."""
    from snakemake.settings.types import ExecMode

    return workflow.exec_mode == ExecMode.DEFAULT


def release_finished_trials(study: Study, snakemake_dir: str = ".snakemake") -> int:
    """Clear Snakemake's "incomplete" mark on trial files that are complete records.

    Snakemake marks a job's outputs incomplete when it starts the job and clears the mark when it
    notices the job ended. A ``kill -9`` between a trial's (atomic) write and that moment leaves a
    complete trial marked incomplete, and ``--rerun-incomplete`` would compute it again. A trial
    file exists only once it is whole, so a readable record needs no rerun. Reads Snakemake 9's
    file persistence layout (``.snakemake/incomplete/<urlsafe-b64 of the path>``); does nothing if
    that layout is absent. Returns the number of marks cleared.
    """
    import base64

    from snaketune.results.aggregate import CorruptTrialError, read_record

    root = Path(snakemake_dir) / "incomplete"
    if not root.is_dir():
        return 0
    prefix = (f"{study.out}/trials/", f"{study.out}/nested/trials/")  # the study's and nested CV's
    cleared = 0
    for marker in root.rglob("*"):
        if not marker.is_file():
            continue
        parts = marker.relative_to(root).parts
        encoded = "".join(p.removeprefix("@") for p in parts)
        try:
            key = base64.urlsafe_b64decode(encoded.encode()).decode()
        except (ValueError, UnicodeDecodeError):
            continue
        if not (key.startswith(prefix) and key.endswith(".json")):
            continue
        try:
            read_record(key)
        except CorruptTrialError:
            continue  # missing or partial: leave it to --rerun-incomplete
        marker.unlink(missing_ok=True)
        cleared += 1
    return cleared


def trial_environment(study: Study) -> tuple[str, str | None]:
    """``conda:`` and ``container:`` of the trial rules: a command study's env file and image
    (else our own env, no image).

    A command study's jobs run the trial client with this Python (``SNAKETUNE_PYTHON``), so
    ``--use-conda`` / ``--sdm apptainer`` put only the user's command in its environment.
    """
    ours = "../../envs/snaketune.yaml"  # relative to workflow/rules/, as the rules' own
    if not study.command:
        return ours, None
    os.environ["SNAKETUNE_PYTHON"] = sys.executable
    conda = study.command.get("conda")
    return (os.path.abspath(conda) if conda else ours), study.command.get("container")


def command_refit_args(study: Study) -> str:
    """The refit call of a command study."""
    command = study.command
    return call_args(
        best=f"{study.out}/best.json",
        spec=study.plan.trial_spec_base["command"],
        template=command.get("refit", False),
        seed=study.config["seed"],
        budget=study.refit_budget(),
        outputs=[f"{study.out}/refit.json"],
    )


def ask_inputs(study: Study, r: int) -> dict:
    """Round ``r``'s ask job needs round ``r - 1``'s ask file, Optuna state and trial files."""
    if r == 0:
        return {}
    previous = study.strategy.layout.ask_args(r)["previous"]
    trials = [p for paths in previous["trials"] for p in paths]
    return {"ask": previous["ask"], "state": previous["state"], "trials": trials}


def optuna_trial_args(study: Study, r: int, k: int, fold: int) -> str:
    """One trial of a model-based search (its configuration is read from the round's ask file)."""
    rounds = study.strategy.layout
    return call_args(specs=[rounds.trial_specs(r, k)[fold]], outputs=[rounds.slot_trials(r, k)[fold]])


def optuna_group_args(study: Study, r: int, trials: list[tuple[int, int]]) -> str:
    """Several trials of one round in one job, in a file (see :func:`call_file`)."""
    rounds = study.strategy.layout
    specs = [rounds.trial_specs(r, k)[f] for k, f in trials]
    outputs = [rounds.slot_trials(r, k)[f] for k, f in trials]
    return call_file(study, specs=specs, outputs=outputs)


def optuna_groups(study: Study, workflow=None) -> list[tuple[int, list[tuple[int, int]]]]:
    """Trials per job for a model-based search; empty when every trial is its own job.

    ``auto`` on a local run deals each round's trials into as many jobs as run at once (cores
    over a trial's threads): one wave of jobs a round, so no core idles while another runs a
    second wave, and the fewest per-job costs (TPE example, 2 cores: 2 jobs of 15 trials a round 18.7-19.8 s, 6 of 5
    20.2-20.8 s, 3 of 10 22.9-24.2 s). The first real run's core count is kept in
    ``<study>/.snaketune/optuna_jobs_per_round.json``, so a resume with another ``--cores``, a
    dry run (which Snakemake gives one core) and ``--report`` build the same jobs instead of
    rerunning every round; delete the file to regroup. Elsewhere (a cluster, where a job is one
    allocation, and the jobs that re-parse the workflow there) a job holds ``n_folds`` trials:
    decided from the config alone, so every process builds the same rules.
    """
    setting = study.config.get("trials_per_job", 1)
    jobs_per_round = None
    if setting == "auto" and workflow is not None and workflow.local_exec and is_main_process(workflow):
        jobs_per_round = _jobs_per_round(study, workflow)
    groups = study.strategy.layout.trial_groups(setting, jobs_per_round)
    return [] if all(len(g) == 1 for _, g in groups) else groups


def _jobs_per_round(study: Study, workflow) -> int | None:
    from snaketune.base.jsonutil import write_json_atomic

    memo = Path(study.out) / ".snaketune" / "optuna_jobs_per_round.json"
    try:
        return int(json.loads(memo.read_text())["jobs_per_round"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        cores = workflow.cores or None
    except Exception:  # noqa: BLE001 - `--report` and `--lint` run without --cores
        cores = None
    if not cores:
        return None
    jobs = max(1, cores // max(1, int(study.config["resources"]["threads"])))  # jobs that fit at once
    if not workflow.dryrun:
        write_json_atomic(memo, {"jobs_per_round": jobs})
    return jobs


def round_groups(workflow, n_rounds: int) -> None:
    """Let group ``trials-r<round>`` (the trials of one round of a model-based search) take the
    settings of group ``trials``, so ``--group-components trials=N`` packs them as it packs any
    search's trials, but only within a round: packing two rounds together would make the group
    depend on itself through the ask job between them, which Snakemake refuses. Uses the mapping
    Snakemake itself keeps from a wildcard group's instances to the group's template."""
    for r in range(n_rounds):
        workflow.parent_groupids[f"trials-r{r}"] = "trials"
