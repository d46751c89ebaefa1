"""Snakemake script: load the data source once and write the prepared arrays."""

import sys
from pathlib import Path

from snaketune.data import prepare

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by Snakemake
meta = prepare(snakemake.params.data, Path.cwd(), Path(snakemake.output[0]).parent)  # noqa: F821
print(f"prepared {meta['n_samples']} x {meta['n_features']} ({meta['n_test']} held out), "
      f"fingerprint {meta['fingerprint'][:16]}", file=sys.stderr)
