"""``python -m snaketune``: see :mod:`snaketune.cli`."""

import signal
import sys

from snaketune.cli import main

# `python -m snaketune status | head`: end quietly when the reader goes away.
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
sys.exit(main())
