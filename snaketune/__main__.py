"""``python -m snaketune <command>``: command-line tools next to the Snakemake workflow.

Each command is a subparser; a module adds its own with ``add_arguments(parser)`` and runs with
``run(args) -> exit status``.
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m snaketune", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    from snaketune import status

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


if __name__ == "__main__":
    sys.exit(main())
