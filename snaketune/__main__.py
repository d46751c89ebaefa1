"""``python -m snaketune``: the ``snaketune`` command (see :mod:`snaketune.cli`)."""

import sys

from snaketune.cli import main

sys.exit(main())
