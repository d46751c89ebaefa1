"""Snakemake script: rank a rung's results and write its survivors, best first."""

import sys

from snaketune.hyperband_workflow import promote

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by Snakemake
doc = promote(list(snakemake.input), snakemake.params.keep, snakemake.params.refit, snakemake.output[0])  # noqa: F821
print(f"promoted {[s['model_id'] for s in doc['survivors']]}", file=sys.stderr)
