"""Progress of a study from its trial files: ``python -m snaketune status``.

Read-only and safe while Snakemake runs: the plan (every trial id) comes from the config through
:func:`snaketune.plan.make_plan` without Snakemake, and the trials are read through the summary
aggregation keeps (:mod:`snaketune.results.summary`: one ``stat`` a trial, and only the files
that changed since the last aggregation are read); trial files are written atomically, and one
that vanishes or cannot be parsed while we read simply counts as not finished yet. Nothing is
written, locked or imported from Snakemake.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

DESCRIPTION = """\
Progress of a study from its trial files: trials done, failed and timed out, time left, whether
a Snakemake run is active here, and the top configurations among those with every fold done.
Read-only; safe while Snakemake runs.

Which study: --configfile FILE (as given to snakemake), or --study NAME; without either, the
study most recently active in this folder (a running one first), else ./config.yaml, the file
Snakemake reads by default.
"""

# Trials further apart than this (seconds) belong to different runs: elapsed time and the
# estimate of time left count the latest run only.
RUN_GAP = 120.0


@dataclass
class Status:
    study: str
    out: str
    total: int | None
    done: int = 0
    ok: int = 0
    failed: int = 0
    timeout: int = 0
    elapsed: float | None = None
    remaining: float | None = None
    rate: float | None = None
    idle: float | None = None
    refit: str = ""
    complete_configs: int = 0
    n_configs: int | None = None
    top: list[dict] = field(default_factory=list)
    top_table: str = ""
    running: bool | None = None

    def to_json(self) -> dict:
        data = dict(self.__dict__)
        data.pop("top_table")
        return data


def _parse_time(text) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        return None


def read_finished(paths) -> dict:
    """Trial id -> record for every complete trial file among ``paths`` (others are skipped)."""
    from snaketune.evaluation.records import CorruptTrialError, read_record

    records = {}
    for path in paths:
        try:
            record = read_record(path)
        except CorruptTrialError:  # not there yet, or (never with atomic writes) partial
            continue
        records[record.trial_id] = record
    return records


def read_study(out: Path, paths: list[Path]):
    """Trial id -> record of every finished trial among ``paths``: through the summary that
    aggregation keeps in ``out`` when every path is ``out/trials/<id>.json`` (read-only: stale
    entries are read from their files, nothing is written), else each file read."""
    from snaketune.results.summary import read_trials

    trials = (out / "trials").resolve()
    if all(p.suffix == ".json" and p.parent.resolve() == trials for p in paths[:1]) and all(
        p.parent == paths[0].parent for p in paths
    ):
        return read_trials(out, [p.stem for p in paths], write=False, skip_unreadable=True).records
    return read_finished(paths)


def _latest_run(records) -> tuple[float, float, int] | None:
    """(start, last end, trials) of the latest run: trials whose time spans chain together."""
    from snaketune.results.summary import column

    spans = []
    for start, end in zip(column(records, "start", records), column(records, "end", records), strict=True):
        start, end = _parse_time(start), _parse_time(end)
        if start is not None and end is not None:
            spans.append((start, max(start, end)))
    if not spans:
        return None
    spans.sort()
    block_start, block_end, count = spans[0][0], spans[0][1], 0
    for start, end in spans:
        if start > block_end + RUN_GAP:
            block_start, block_end, count = start, end, 0
        block_end = max(block_end, end)
        count += 1
    return block_start, block_end, count


def study_plan(config: dict, root: Path = Path(".")):
    """``(plan, slots)`` of a validated config: what :func:`trial_rows` lists (slots: the
    strategy's own layout of slots or rounds, else None). Reads no data file."""
    from snaketune.search.plan import make_plan
    from snaketune.strategies.registry import strategy_class

    strategy = strategy_class(config)
    plan = make_plan(config, root, candidates=None if strategy.expands_space else [])
    return plan, strategy(config, plan).layout


def trial_rows(plan, slots=None) -> list[list[str]]:
    """The trial files of every leaderboard row, one list per row (paths relative to the study's
    working folder)."""
    if slots is not None:
        return [slots.slot_trials(*s) for s in slots.slots]
    return [[plan.trial_path(f"{key}_{k}") for k in range(plan.n_folds)] for key in plan.config_keys]


def collect(config: dict, plan, now: float | None = None, top_n: int = 5, slots=None, root: Path = Path(".")) -> Status:
    """The progress of ``plan`` (and, for adaptive searches, its ``slots``) from its trial files
    (relative to ``root``, the folder the study runs in)."""
    from snaketune.results.aggregate import cv_results, to_frame, top_table
    from snaketune.results.summary import column
    from snaketune.search.space import as_candidate

    now = time.time() if now is None else now
    refit = config["refit"]
    rows = trial_rows(plan, slots)
    paths = [Path(root) / p for row in rows for p in row]
    status = Status(config["study"], plan.out, len(paths), refit=refit, n_configs=len(rows))
    records = read_study(Path(root) / plan.out, paths)
    outcomes = column(records, "status", records)
    status.done = len(records)
    status.ok = outcomes.count("ok")
    status.failed = outcomes.count("error")
    status.timeout = outcomes.count("timeout")

    run = _latest_run(records)
    if run is not None:
        start, last_end, in_run = run
        finished = status.done >= status.total
        status.elapsed = (last_end if finished else now) - start
        status.idle = None if finished else max(0.0, now - last_end)
        if finished:
            status.remaining = 0.0
        elif status.elapsed > 0:
            status.rate = in_run / status.elapsed
            status.remaining = (status.total - status.done) / status.rate

    complete = [[Path(p).stem for p in row] for row in rows if all(Path(p).stem in records for p in row)]
    status.complete_configs = len(complete)
    if complete:
        firsts = [ids[0] for ids in complete]
        results = cv_results(
            [{k: as_candidate(v) for k, v in p.items()} for p in column(records, "params", firsts)],
            column(records, "config_key", firsts),
            records,
            n_folds=len(complete[0]),
            scoring=config["scoring"],
            error_score=config["error_score"],
            trial_ids=complete,
        )
        frame = to_frame(results)
        status.top_table = top_table(frame, refit, config["scoring"], n=top_n)
        best = frame.sort_values([f"rank_test_{refit}", "mean_fit_time"], kind="stable").head(top_n)
        status.top = [
            {
                "rank": int(row[f"rank_test_{refit}"]),
                "config_key": row["config_key"],
                "params": json.loads(row["params"]),
                "mean": None if math.isnan(row[f"mean_test_{refit}"]) else float(row[f"mean_test_{refit}"]),
                "std": None if math.isnan(row[f"std_test_{refit}"]) else float(row[f"std_test_{refit}"]),
            }
            for _, row in best.iterrows()
        ]
    return status


def _clock(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def format_status(status: Status) -> str:
    lines = []
    pct = 100 * status.done / status.total if status.total else 100.0
    lines.append(f"study {status.study} ({status.out}): {status.done}/{status.total} trials done ({pct:.0f}%)")
    lines.append(f"  ok {status.ok}, failed {status.failed}, timed out {status.timeout}")
    if status.elapsed is None:
        lines.append("  no trial has finished yet")
    elif status.done >= status.total:
        lines.append(f"  finished: the last run took {_clock(status.elapsed)}")
    elif status.running is False:
        ago = f", last trial {_ago(status.idle)} ago" if status.idle is not None else ""
        lines.append(
            f"  not running{ago}: resume with `snakemake --cores N` (after a kill: `snakemake --unlock`, "
            "then `snakemake --cores N --rerun-incomplete`)"
        )
    else:
        left = f"about {_clock(status.remaining)} left" if status.remaining is not None else "time left unknown"
        rate = f" ({status.rate * 60:.1f} trials/min)" if status.rate else ""
        lines.append(f"  elapsed {_clock(status.elapsed)}, {left}{rate}")
        if status.idle is not None and status.idle > RUN_GAP:
            lines.append(f"  no trial finished in the last {_clock(status.idle)}: is the run still going?")
    if status.top_table:
        from snaketune.results.metrics import titled

        configs = f"{status.complete_configs} of {status.n_configs}"
        lines.append(
            f"top {len(status.top)} by {titled(status.refit)} among the {configs} configurations with every fold done:"
        )
        lines.append(status.top_table.rstrip())
    elif status.n_configs:
        lines.append(f"no configuration has every fold done yet (0 of {status.n_configs})")
    return "\n".join(lines)


def saved_studies(root: Path = Path(".")) -> list[tuple[float, dict]]:
    """(last activity, validated config) of every study that ran in ``root``, newest first.

    Every run leaves its validated config in ``<output_dir>/<study>/.snaketune/plan-*.json`` (the
    parse-time cache), so status can find a study started with ``--configfile`` too.
    """
    found: dict[str, tuple[float, dict]] = {}
    for plan_file in root.glob("*/*/.snaketune/plan-*.json"):
        try:
            config = json.loads(plan_file.read_text())["config"]
        except (OSError, ValueError, KeyError):
            continue
        study_dir = plan_file.parent.parent
        trials = study_dir / "trials"
        active = max(plan_file.stat().st_mtime, trials.stat().st_mtime if trials.exists() else 0.0)
        key = str(study_dir)
        if key not in found or found[key][0] < active:
            found[key] = (active, config)
    return sorted(found.values(), key=lambda item: -item[0])


def _find_config(study: str | None, config_path: str | None) -> dict:
    """The study config: ``--config FILE``; else the study named ``--study`` (or, without it,
    the study most recently active here) as its last run saved it; else ./config.yaml or a YAML
    file in . or examples/ that declares ``study: NAME``."""
    from snaketune.config.load import read_yaml

    if config_path:
        config = read_yaml(config_path)
        return dict(config, study=study) if study else config  # as `snakemake --config study=NAME`
    if study is None:
        running = running_config()
        if running is not None:
            return running
    saved = saved_studies()
    for _, candidate in saved:
        if study is None or candidate.get("study") == study:
            return candidate
    config = read_yaml("config.yaml") if Path("config.yaml").exists() else None
    if study and (config is None or config.get("study") != study):
        config = None
        for path in sorted(Path(".").glob("*.yaml")) + sorted(Path("examples").glob("*.y*ml")):
            try:
                candidate = read_yaml(path)
            except Exception:  # noqa: BLE001 - not a study config
                continue
            if isinstance(candidate, dict) and candidate.get("study") == study:
                config = candidate
                break
        if config is None:
            known = sorted({str(c.get("study")) for _, c in saved})
            default = read_yaml("config.yaml").get("study") if Path("config.yaml").exists() else None
            if default and default not in known:
                known.append(f"{default} (config.yaml, not run yet)")
            raise FileNotFoundError(
                f"no study {study!r} here; known studies: {', '.join(known) or 'none'}; "
                "or pass --configfile FILE (the file given to snakemake --configfile)"
            )
    if config is None:
        raise FileNotFoundError("no config.yaml here; pass --config FILE (the file given to snakemake --configfile)")
    return config


def _snakemake_commands(directory: Path = Path(".")):
    """Command lines of the Snakemake processes working in ``directory`` (Linux /proc)."""
    here = directory.resolve()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            if not any(part.endswith((b"snakemake", b"snakemake_cli")) for part in cmdline[:3]):
                continue
            if Path(os.readlink(entry / "cwd")).resolve() == here:
                yield [part.decode(errors="replace") for part in cmdline if part]  # it ends in NUL
        except OSError:
            continue


def snakemake_running(directory: Path = Path(".")) -> bool | None:
    """Whether a Snakemake process works in ``directory`` (Linux /proc; None where unknown)."""
    if not Path("/proc").is_dir():
        return None
    return any(True for _ in _snakemake_commands(directory))


def running_config() -> dict | None:
    """The config of the Snakemake run active here, resolved as Snakemake does: its
    ``--configfile`` (the last one given), else ./config.yaml; ``--config study=NAME`` and
    ``output_dir=DIR`` on its command line override the file. None when nothing runs here."""
    from snaketune.config.load import read_yaml

    if not Path("/proc").is_dir():
        return None
    for cmd in _snakemake_commands():
        if "--target-jobs" in cmd:  # a job's own Snakemake, not the run
            continue
        files, overrides, option = [], {}, None
        for arg in cmd[1:]:
            if arg.startswith("-"):
                option = arg
            elif option in ("--configfile", "--configfiles"):
                files.append(arg)
            elif option == "--config" and "=" in arg:
                key, value = arg.split("=", 1)
                if key in ("study", "output_dir"):
                    overrides[key] = value
        path = files[-1] if files else "config.yaml"
        if Path(path).exists():
            return dict(read_yaml(path), **overrides)
    return None


def add_arguments(parser) -> None:
    parser.add_argument(
        "--configfile",
        "--config",
        dest="config",
        metavar="FILE",
        help="the study config, as given to snakemake --configfile (default: see above)",
    )
    parser.add_argument("--study", help="study name; its outputs are <output_dir>/<study>/")
    parser.add_argument("--top", type=int, default=5, help="configurations to list (default 5)")
    parser.add_argument("--json", action="store_true", help="machine-readable output (one JSON object)")
    parser.add_argument(
        "--watch",
        nargs="?",
        type=float,
        const=5.0,
        metavar="SECONDS",
        help="show the status again every SECONDS (default 5) until every trial is done; Ctrl-C ends it",
    )


def run(args) -> int:
    from snaketune.config.load import ConfigError, load_config

    try:
        raw = _find_config(args.study, args.config)
        config = load_config(raw, ".", check_data=False)
        plan, slots = study_plan(config)
    except (ConfigError, OSError) as error:
        print(f"status: {error}", file=sys.stderr)
        return 2
    watch = getattr(args, "watch", None)
    clear = watch and sys.stdout.isatty()
    try:
        while True:
            status = collect(config, plan, top_n=args.top, slots=slots)
            if status.done < status.total:
                status.running = snakemake_running()
                if status.running is False:
                    status.remaining = status.rate = None  # nothing is running: no time left to estimate
            text = json.dumps(status.to_json(), default=str) if args.json else format_status(status)
            if clear:
                text = "\033[H\033[2J" + text  # redraw in place
            print(text, flush=True)
            if not watch or status.done >= status.total:
                return 0
            time.sleep(watch)
            if not (args.json or clear):
                print()
    except KeyboardInterrupt:
        return 0
