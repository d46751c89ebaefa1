"""What a finished run prints: the top of the leaderboard, the comparison with the best, nested
CV's answer, failures and warnings (through the terminal logger, :mod:`.terminal`)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from snaketune.workflow.study import Study


def print_top(study: Study, n: int = 5) -> None:
    """Show the top-n table at the end of a successful run."""
    path = Path(study.out) / "leaderboard.md"
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.startswith("|")]
    print(f"\nTop {n} of study {study.config['study']!r} ({path}):")
    print("\n".join(lines[: 2 + n]))
    try:
        best = json.loads((Path(study.out) / "best.json").read_text())
    except (OSError, ValueError):
        return
    if not best.get("no_best"):  # nothing to compare with
        print_comparison(best)
    print_nested(study)
    with contextlib.suppress(OSError, ValueError):
        refit = json.loads((Path(study.out) / "refit.json").read_text())
        if refit.get("status") == "timeout":
            print(f"\nno refit model: {refit['reason']}")
    failed = best.get("n_failed", 0) + best.get("n_timeout", 0)
    if failed:
        print(f"\n{failed} of {best['n_trials']} trials failed (recorded, scored {study.config['error_score']}):")
        for item in best.get("failures", []):
            print(f"  {item['trials']} x {item['error']}")
    for item in best.get("trial_warnings", [])[:3]:
        print(f"warning in {item['trials']} trials: {item['warning']}")


def no_best(study: Study) -> str | None:
    """best.json's reason why no configuration is best (every one failed or timed out), or None."""
    try:
        return json.loads((Path(study.out) / "best.json").read_text()).get("no_best")
    except (OSError, ValueError):
        return None


def print_comparison(best: dict) -> None:
    """The comparison with the best (best.json ``comparison``): one sentence, and its warning."""
    comparison = best.get("comparison")
    if comparison:
        print(comparison["sentence"])
        if comparison.get("warning"):
            print(f"warning: {comparison['warning']}")


def print_nested(study: Study) -> None:
    """Nested CV's one-sentence answer (nested.json), when the study has ``nested``."""
    try:
        doc = json.loads((Path(study.out) / "nested.json").read_text()) if study.nested else None
    except (OSError, ValueError):
        return
    if doc:
        print(doc["sentence"])
