"""Snakemake script: train one slot's model up to its rung's units and score it."""

import sys

from snaketune.hyperband_workflow import run_eval

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by Snakemake
record = run_eval(
    snakemake.params.spec,  # noqa: F821
    snakemake.output.result,  # noqa: F821
    snakemake.output.state,  # noqa: F821
    promotion=snakemake.input.get("promotion") or None,  # noqa: F821
)
print(
    f"{record['model_id']} ({record['config_key']}): {record['units']} units, status {record['status']}, "
    f"scores {record['mean_test']}{', stopped early' if record['stopped'] else ''}"
    f"{', reused' if record.get('reused') else ''}{', carried' if record.get('carried') else ''}",
    file=sys.stderr,
)
