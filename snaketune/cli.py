"""``snaketune COMMAND`` (same as ``python -m snaketune COMMAND``): the tools beside the workflow.

Commands: ``check`` (validate config files, run nothing), ``plan`` (what a config would run),
``status`` (progress of a running or finished study) and ``report`` (Snakemake's HTML report of a
study). Help texts are plain text: argparse prints them as written.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from pathlib import Path

DESCRIPTION = """\
Reproducible, parallel hyperparameter search for scikit-learn, driven by Snakemake.

A study is one config file (config.yaml, or the file given to snakemake --configfile).
Run it with:  snakemake --cores N [--configfile FILE]
"""

EPILOG = """\
examples:
  snaketune check config.yaml examples/*.yaml
  snaketune plan examples/svc-digits.yaml
  snaketune status                      # the study running here (or the last one that ran)
  snaketune status --configfile examples/svc-digits.yaml --watch
  snaketune report                      # -> results/<study>/report.html

The run itself prints a header, one progress line and a summary; Snakemake's
per-job listing: snakemake --cores N --logger-snaketune-jobs
"""


def check(args: argparse.Namespace) -> int:
    from snaketune.config.load import main as check_files

    return check_files(args.config)


def plan(args: argparse.Namespace) -> int:
    from snaketune.config.load import ConfigError, load_config, read_yaml
    from snaketune.search.hyperband import schedule_from_config

    try:
        raw = read_yaml(args.config)
        search = raw.get("search") or {}
        if {"hyperband", "successive_halving"} & set(search):
            # The schedule needs only the budget keys: print it even for a config still being written.
            schedule = schedule_from_config(search)
            print(json.dumps(schedule.to_dict(), indent=1) if args.json else schedule.table())
            return 0
        config = load_config(raw, Path.cwd(), check_data=False)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    except (ValueError, KeyError, TypeError) as exc:
        print(f"{args.config}: {exc}", file=sys.stderr)
        return 1
    from snaketune.search.plan import make_plan

    if "optuna" in config["search"]:
        from types import SimpleNamespace

        from snaketune.evaluation.rounds import setup

        rounds = setup(SimpleNamespace(config=config, plan=make_plan(config, candidates=[])))
        summary = {"rounds": rounds.n_rounds, "batch_size": rounds.batch_size, "configurations": rounds.n_trials}
        summary.update(folds=rounds.n_folds, trials=len(rounds.trial_paths))
        print(json.dumps(summary) if args.json else rounds.summary() + f" = {summary['trials']} trials")
        return 0
    trials = make_plan(config)
    summary = {"candidates": len(trials.candidates), "folds": trials.n_folds, "trials": len(trials.trial_ids)}
    print(
        json.dumps(summary)
        if args.json
        else f"{summary['candidates']} configurations x {summary['folds']} folds = {summary['trials']} trials"
    )
    return 0


def report(args: argparse.Namespace) -> int:
    from snaketune.config.load import ConfigError, read_yaml

    configfile = args.configfile or "config.yaml"
    try:
        config = read_yaml(configfile)
    except ConfigError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    study = config.get("study") if isinstance(config, dict) else None
    if not study:
        print(f"report: {configfile}: no 'study' key", file=sys.stderr)
        return 2
    out = args.output or f"{config.get('output_dir', 'results')}/{study}/report.html"
    snakefile = Path(__file__).resolve().parents[1] / "Snakefile"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--report", out]
    if args.configfile:
        cmd += ["--configfile", args.configfile]
    code = subprocess.call(cmd)
    if code == 0:
        print(f"report: {out}")
    return code


def build_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="snaketune", description=DESCRIPTION, epilog=EPILOG, formatter_class=raw)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = commands.add_parser(
        "check",
        help="validate config files; nothing runs",
        description="Check config files without running anything: one 'config error:' line per problem "
        "(exit 1), or 'FILE: ok'.",
        formatter_class=raw,
    )
    p.add_argument("config", nargs="+", metavar="CONFIG", help="study config file(s)")
    p.set_defaults(run=check)

    p = commands.add_parser(
        "plan",
        help="what a config would run: configurations x folds, or Hyperband brackets and rungs",
        description="Print what a config would run, without running it: configurations x folds = trials "
        "for a grid or random search; brackets, rungs and budgets for Hyperband and successive halving.",
        formatter_class=raw,
    )
    p.add_argument("config", metavar="CONFIG", help="study config file")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(run=plan)

    from snaketune.results import status

    p = commands.add_parser(
        "status",
        help="progress of a running (or finished) study: trials done, failed, time left, top 5",
        description=status.DESCRIPTION,
        formatter_class=raw,
    )
    status.add_arguments(p)
    p.set_defaults(run=status.run)

    p = commands.add_parser(
        "report",
        help="Snakemake's self-contained HTML report of a study (after it ran)",
        description="Build Snakemake's HTML report of a study that ran: snakemake --report "
        "<output_dir>/<study>/report.html [--configfile FILE].",
        formatter_class=raw,
    )
    p.add_argument("--configfile", metavar="FILE", help="the study config, as given to snakemake (default config.yaml)")
    p.add_argument("--output", metavar="HTML", help="report file (default <output_dir>/<study>/report.html)")
    p.set_defaults(run=report)
    return parser


def main(argv=None) -> int:
    # `snaketune status | head`: end quietly when the reader goes away.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = build_parser().parse_args(argv)
    return args.run(args)
