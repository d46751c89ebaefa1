"""``snaketune COMMAND`` (same as ``python -m snaketune COMMAND``): run studies from any folder.

Commands: ``run`` (Snakemake on the packaged workflow), ``init`` (a starter config, from an
example), ``check`` (validate config files, run nothing), ``plan`` (what a config would run),
``status`` (progress of a running or finished study), ``report`` (Snakemake's HTML report of a
study) and ``watch`` (run again on every save of the config). Help texts are plain text: argparse prints them as written.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

DESCRIPTION = """\
Reproducible, parallel hyperparameter search for scikit-learn, driven by Snakemake.

A study is one config file (config.yaml, or the file given to snakemake --configfile).
Run it from any folder with:  snaketune run [CONFIG] --cores N
(in a clone of the repository, snakemake --cores N [--configfile FILE] does the same).
"""

EPILOG = """\
examples:
  snaketune init                        # ./config.yaml: the default study (snaketune init --list)
  snaketune run --cores 2               # runs ./config.yaml; outputs in ./results/<study>/
  snaketune run study.yaml -n           # what would run (any snakemake option passes through)
  snaketune run --profile slurm         # on SLURM, with the shipped profile
  snaketune check config.yaml examples/*.yaml
  snaketune plan examples/svc-digits.yaml
  snaketune status                      # the study running here (or the last one that ran)
  snaketune status --configfile examples/svc-digits.yaml --watch
  snaketune report                      # -> results/<study>/report.html
  snaketune watch --cores 2             # rerun on every save of config.yaml; prints the new top 5

The run itself prints a header, one progress line and a summary; Snakemake's
per-job listing: snakemake --cores N --logger-snaketune-jobs
"""


def check(args: argparse.Namespace) -> int:
    from snaketune.config.load import main as check_files

    return check_files(args.config)


def plan(args: argparse.Namespace) -> int:
    from snaketune.config.load import ConfigError, load_config, read_yaml
    from snaketune.strategies.registry import STRATEGIES, strategy_class, strategy_for

    try:
        raw = read_yaml(args.config)
        search = raw.get("search") or {}
        # A schedule needs only its budget keys: print it even for a config still being written.
        ((kind, spec),) = search.items() if isinstance(search, dict) and len(search) == 1 else ((None, None),)
        early = STRATEGIES[kind].early_plan_report(spec) if kind in STRATEGIES else None
        if early is None:
            config = load_config(raw, Path.cwd(), check_data=False)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    except (ValueError, KeyError, TypeError) as exc:
        print(f"{args.config}: {exc}", file=sys.stderr)
        return 1
    if early is None:
        from snaketune.search.plan import make_plan

        expands = strategy_class(config).expands_space
        early = strategy_for(config, make_plan(config, candidates=None if expands else [])).plan_report()
    summary, text = early
    print(json.dumps(summary, indent=1 if "brackets" in summary else None) if args.json else text)
    return 0


RUN_USAGE = "snaketune run [CONFIG] [--cores N] [--profile NAME|PATH] [SNAKEMAKE OPTIONS...]"
RUN_HELP = f"""\
usage: {RUN_USAGE}

Run a study (what is not done yet) with Snakemake on the workflow shipped in the package, in this
folder: outputs go to ./<output_dir>/<study>/ (results/<study>/ by default) and relative data paths
are read from here. The exit status is Snakemake's.

  CONFIG              the study config (default ./config.yaml; `snaketune init` writes one)
  --cores N           cores for the trials (default: all of this machine's, unless a profile is given)
  --profile NAME|PATH a Snakemake profile folder, or `slurm` for the shipped SLURM profile
                      (docs/slurm.md); the shipped default profile applies under it
  SNAKEMAKE OPTIONS   passed through as they are: -n, --unlock, --rerun-incomplete, --keep-going, ...
"""


def run_command(argv: list[str]) -> list[str]:
    """The Snakemake command of ``snaketune run ARGV`` (parsed by hand: every option we do not
    know is Snakemake's and passes through with its values)."""
    from snaketune.api import snakemake_command

    args = list(argv)
    config = None
    if args and not args[0].startswith("-"):
        config = args.pop(0)
    profile = None
    for i, arg in enumerate(args):
        if arg == "--profile" and i + 1 < len(args):
            profile = args[i + 1]
            del args[i : i + 2]
            break
        if arg.startswith("--profile="):
            profile = arg.split("=", 1)[1]
            del args[i]
            break
    if config is None:
        if not Path("config.yaml").exists():
            raise FileNotFoundError("no config.yaml here: give a config file, or write one with `snaketune init`")
        config = "config.yaml"
    elif not Path(config).is_file():
        raise FileNotFoundError(f"config file {config!r} not found (relative to {Path.cwd()})")
    return snakemake_command(config, None if profile else "all", profile, args)


def run(argv: list[str]) -> int:
    # An interrupt before Snakemake starts: the one line, not a traceback of our imports.
    signal.signal(signal.SIGINT, _interrupted_early)
    if argv[:1] in (["-h"], ["--help"]):
        print(RUN_HELP, end="")
        return 0
    try:
        cmd = run_command(argv)
    except FileNotFoundError as exc:
        print(f"run: {exc}", file=sys.stderr)
        return 2
    from snaketune.api import run_snakemake

    code, interrupted = run_snakemake(cmd)
    return 130 if interrupted and code != 0 else code


def _interrupted_early(signum, frame):
    from snaketune.runtime.snakemake_cli import EARLY

    print(EARLY, file=sys.stderr)
    sys.exit(130)


def init(args: argparse.Namespace) -> int:
    from snaketune.api import EXAMPLES, init_example

    if args.list:
        width = max(map(len, EXAMPLES))
        for name, (_, about) in EXAMPLES.items():
            print(f"{name:<{width}}  {about}")
        return 0
    try:
        written = init_example(args.example, Path(args.directory), force=args.force)
    except (KeyError, FileExistsError) as exc:
        print(f"init: {exc.args[0]}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    config = written[0]
    run_cmd = "snaketune run --cores 2" + ("" if config.name == "config.yaml" else f" {config}")
    print(f"next: {run_cmd}   (or: snaketune plan {config})")
    return 0


def report(args: argparse.Namespace) -> int:
    import subprocess

    from snaketune.api import snakemake_command
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
    cmd = snakemake_command(args.configfile, cores=None, snakemake_args=["--report", out])
    code = subprocess.call(cmd)
    if code == 0:
        print(f"report: {out}")
    return code


def build_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="snaketune", description=DESCRIPTION, epilog=EPILOG, formatter_class=raw)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # Parsed by `run` itself (see main): listed here for --help.
    commands.add_parser("run", help="run a study here with Snakemake: " + RUN_USAGE.removeprefix("snaketune run "))

    p = commands.add_parser(
        "init",
        help="write a starter config (and its data) into this folder, from an example",
        description="Write a study config that `snaketune run` accepts as is: the default study, or "
        "an example (--list); an example with data or a script writes those too. Existing files are "
        "kept unless --force.",
        formatter_class=raw,
    )
    p.add_argument("example", nargs="?", default="default", help="example name (default: the default study)")
    p.add_argument("--list", action="store_true", help="list the examples")
    p.add_argument("--directory", "-d", default=".", metavar="DIR", help="where to write (default .)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(run=init)

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

    p = commands.add_parser(
        "watch",
        help="run a study, then again whenever its config (or a data file it names) is saved",
        description="Run the study now and after every save of its config or declared inputs, through "
        "the warm engine: only new trials run, then the leaderboard, plots and report are written again "
        "and the new top 5 printed. Ctrl-C stops (finished trials are kept).",
        formatter_class=raw,
    )
    p.add_argument(
        "config", nargs="?", default="config.yaml", metavar="CONFIG", help="study config (default config.yaml)"
    )
    p.add_argument("--cores", default="all", help="cores for the trials (default all)")
    p.set_defaults(run=watch)
    return parser


def watch(args: argparse.Namespace) -> int:
    from snaketune.watch import watch as watch_study

    return watch_study(args.config, args.cores)


def main(argv=None) -> int:
    # `snaketune status | head`: end quietly when the reader goes away.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["run"]:
        return run(argv[1:])
    args = build_parser().parse_args(argv)
    return args.run(args)
