"""The default study on the one-node SLURM cluster, through the shipped profile.

    scripts/slurm-local.sh up
    .venv/bin/python bench/bench_slurm.py [--config config.yaml] [--out bench/results/slurm.md]

Runs `snakemake --profile workflow/profiles/slurm` (as shipped, plus the local cluster's fast
first status poll) from a fresh folder and reports the whole wall time, the SLURM submissions and
the trials, against the same study run locally (`--cores 2`) in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def run(config: Path, *flags: str) -> tuple[float, str, int]:
    with tempfile.TemporaryDirectory(prefix="st-slurm-", dir=os.environ.get("SNAKETUNE_BENCH_TMP")) as tmp:
        shutil.copy(config, Path(tmp) / "config.yaml")
        t0 = time.perf_counter()
        proc = subprocess.run(
            [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", tmp, *flags],
            capture_output=True, text=True,
        )  # fmt: skip
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-4000:])
        trials = sum(len(list(p.glob("*.json"))) for p in Path(tmp, "results").glob("*/trials"))
        # The quiet terminal leaves Snakemake's per-job lines to its complete log.
        text = proc.stdout + proc.stderr + "".join(p.read_text() for p in Path(tmp, ".snakemake", "log").glob("*.log"))
        return wall, text, trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "config.yaml"))
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "slurm.md"))
    args = parser.parse_args()
    load0 = os.getloadavg()[0]
    local, _, n_local = run(Path(args.config), "--cores", "2")
    slurm, text, n = run(
        Path(args.config),
        "--profile", str(REPO / "workflow" / "profiles" / "slurm"),
        "--slurm-init-seconds-before-status-checks", "2",
    )  # fmt: skip
    submissions = [line for line in text.splitlines() if "has been submitted with SLURM jobid" in line]
    trial_jobs = [line for line in submissions if "trials" in line]
    lines = [
        "# The default study on the one-node SLURM cluster (shipped profile)",
        "",
        f"Load average at the start {load0:.1f}, at the end {os.getloadavg()[0]:.1f}.",
        "",
        "| run | trials | SLURM submissions (trial jobs) | wall s |",
        "|---|---:|---:|---:|",
        f"| local `--cores 2` | {n_local} | – | {local:.1f} |",
        f"| SLURM, `--profile workflow/profiles/slurm` | {n} | {len(submissions)} ({len(trial_jobs)}) | {slurm:.1f} |",
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    Path(args.out).with_suffix(".json").write_text(json.dumps({"local_s": local, "slurm_s": slurm, "trials": n}))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
