"""``python -m snaketune.config FILE...`` (same as ``python -m snaketune check FILE...``)."""

import sys

from snaketune.config.load import main

if {"-h", "--help"} & set(sys.argv[1:]):
    print("usage: python -m snaketune.config CONFIG [CONFIG ...]  (same as: snaketune check CONFIG ...)\n")
    print("Check study config files without running anything: one 'config error:' line per problem.")
    sys.exit(0)
sys.exit(main())
