"""Package functions a workflow job may run in the warm worker instead of a new Python.

Only the names in :data:`CALLS` can be called, with JSON keyword arguments; nothing else in the
package (or outside it) is reachable through the worker. Each call writes only the paths listed
in its ``outputs`` argument, which the worker checks are inside the study folder.
"""

from __future__ import annotations

import json
import sys


def hyperband_eval(*, spec: dict, outputs: list[str], promotion: str | None = None) -> str:
    from snaketune.hyperband_workflow import run_eval

    result, state = outputs
    record = run_eval(spec, result, state, promotion=promotion)
    return (
        f"{record['model_id']} ({record['config_key']}): {record['units']} units, status {record['status']}, "
        f"scores {record['mean_test']}{', stopped early' if record['stopped'] else ''}"
        f"{', reused' if record.get('reused') else ''}{', carried' if record.get('carried') else ''}"
    )


def hyperband_promote(*, results: list[str], keep: int, refit: str, outputs: list[str]) -> str:
    from snaketune.hyperband_workflow import promote

    doc = promote(results, keep, refit, outputs[0])
    return f"promoted {[s['model_id'] for s in doc['survivors']]}"


CALLS = {
    "hyperband_eval": hyperband_eval,
    "hyperband_promote": hyperband_promote,
}

# Modules a worker imports up front so forked calls start warm.
PRELOAD = ("snaketune.hyperband_workflow",)


def run_call(name: str, kwargs: dict) -> str:
    """Run a registered call; return its log line."""
    if name not in CALLS:
        raise KeyError(f"unknown call {name!r}; known: {sorted(CALLS)}")
    return CALLS[name](**kwargs)


def main(argv=None) -> int:
    """``python -m snaketune.calls NAME KWARGS_JSON``: run a call in this process."""
    argv = sys.argv[1:] if argv is None else argv
    print(run_call(argv[0], json.loads(argv[1])), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
