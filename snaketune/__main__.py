"""``python -m snaketune``: see :mod:`snaketune.cli`."""

import sys

from snaketune.cli import main

sys.exit(main())
