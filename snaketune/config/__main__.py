"""``python -m snaketune.config FILE...`` (same as ``python -m snaketune check FILE...``)."""

import sys

from snaketune.config.load import main

sys.exit(main())
