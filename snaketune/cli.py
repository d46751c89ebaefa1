"""``python -m snaketune COMMAND``: the command-line tools that sit beside the Snakemake workflow.

Commands: ``check`` (validate config files, run nothing), ``plan`` (the trial or Hyperband plan
of a config, run nothing) and ``status`` (progress of a running or finished study).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def check(args: argparse.Namespace) -> int:
    """Check config files without running Snakemake; one ``config error:`` line per problem."""
    from snaketune.config.load import main as check_files

    return check_files(args.config)


def plan(args: argparse.Namespace) -> int:
    """Print what a config would run: brackets and rungs of an adaptive search, or trial counts."""
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m snaketune", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = commands.add_parser("check", help="validate config files; nothing runs", description=check.__doc__)
    p.add_argument("config", nargs="+", metavar="CONFIG")
    p.set_defaults(run=check)

    p = commands.add_parser(
        "plan", help="what a config would run (Hyperband brackets and rungs)", description=plan.__doc__
    )
    p.add_argument("config", metavar="CONFIG")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(run=plan)

    from snaketune.results import status

    p = commands.add_parser(
        "status",
        help="progress of a running (or finished) study: trials done, failed, time left, top 5",
        description=status.__doc__.split("\n")[0],
    )
    status.add_arguments(p)
    p.set_defaults(run=status.run)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)
