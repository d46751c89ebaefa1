"""``python -m snaketune.runtime.snakemake_cli ARGS``: Snakemake's own command line, as
``snaketune run`` and :func:`snaketune.run` start it.

The one difference: an interrupt that comes before Snakemake handles interrupts itself (while
Python imports Snakemake, ~1 s) ends with one line and exit status 130 instead of a traceback.
Later ones are Snakemake's, told in one line by our terminal logger (``workflow/terminal.py``).
"""

import signal
import sys

EARLY = "interrupted before any trial ran; nothing was changed: run the same command again to start"

# Whether the interrupt was told already (by the terminal logger, in this same process).
_told = []


def tell_interrupt() -> bool:
    """True the first time: the caller tells the user; later callers stay quiet."""
    first = not _told
    _told.append(True)
    return first


def main() -> None:
    # `snaketune run` starts us with SIGINT ignored, so an interrupt cannot land in Python's own
    # start-up; it passes interrupts on once this handler is in place.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        from snakemake.cli import main as snakemake_main

        snakemake_main(sys.argv[1:])  # exits with Snakemake's status
    except KeyboardInterrupt:
        # This file runs as __main__; the logger shares the package's module of the same code.
        from snaketune.runtime import snakemake_cli

        if snakemake_cli.tell_interrupt():
            print(EARLY, file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
