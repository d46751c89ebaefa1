"""Which Snakemake settings to ship in the workflow profile (profiles/default/config.yaml).

    .venv/bin/python bench/profile_settings.py [--repeats 3] [--out bench/results/profile-settings.md]

Each workload runs as a whole `snakemake` process from a fresh folder, once per setting, the
settings interleaved round by round (so machine load hits them alike); medians are reported with
each setting's ratio to Snakemake's defaults measured in the same rounds. The shipped profile is
switched off (`--workflow-profile none`) so only the flags under test differ.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")

SETTINGS = {
    "defaults": [],
    "greedy": ["--scheduler", "greedy"],
    "rate-1000": ["--max-jobs-per-timespan", "1000/1s"],
    "quiet": ["--quiet", "rules", "progress"],
}


def knn(trials_per_job):
    return {
        "study": "knn",
        "data": {"loader": "iris"},
        "estimator": {"class": "sklearn.neighbors.KNeighborsClassifier"},
        "search": {
            "grid": {"n_neighbors": {"range": [1, 31]}, "metric": ["euclidean", "manhattan", "chebyshev", "braycurtis"]}
        },
        "cv": {"kind": "stratified", "n_splits": 5, "shuffle": True, "seed": 0},
        "scoring": "accuracy",
        "trials_per_job": trials_per_job,
    }


WORKLOADS = {"knn-600-one-a-job": knn(1), "knn-600-auto": knn("auto")}


def run_once(config: dict, flags: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system of the whole process tree) of one run."""
    with tempfile.TemporaryDirectory(prefix="st-prof-") as tmp:
        Path(tmp, "config.yaml").write_text(yaml.safe_dump(config))
        cmd = [
            SNAKEMAKE,
            "-s",
            str(REPO / "Snakefile"),
            "--directory",
            tmp,
            "--cores",
            "2",
            "--workflow-profile",
            "none",
            *flags,
        ]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            raise SystemExit(f"{cmd} failed:\n{proc.stderr[-3000:]}")
        return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "profile-settings.md"))
    args = parser.parse_args()
    times = {(w, s): [] for w in WORKLOADS for s in SETTINGS}
    load = []
    for _ in range(args.repeats):
        for w, config in WORKLOADS.items():
            for s, flags in SETTINGS.items():
                load.append(os.getloadavg()[0])
                times[w, s].append(run_once(config, flags))
    lines = [
        "# Snakemake settings for many small jobs (2 cores, whole processes)",
        "",
        f"Medians of {args.repeats} interleaved rounds; load average during the runs "
        f"{min(load):.1f}-{max(load):.1f} (other work on the machine). CPU = user + system seconds of",
        "the whole process tree (Snakemake, job clients, worker, trials): less sensitive to load than wall.",
        "",
        "| workload | setting | median wall s | wall ratio | median CPU s | CPU ratio | wall runs |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for w in WORKLOADS:
        base_wall = statistics.median(t[0] for t in times[w, "defaults"])
        base_cpu = statistics.median(t[1] for t in times[w, "defaults"])
        for s in SETTINGS:
            wall = statistics.median(t[0] for t in times[w, s])
            cpu = statistics.median(t[1] for t in times[w, s])
            runs = ", ".join(f"{t[0]:.1f}" for t in times[w, s])
            lines.append(
                f"| {w} | {s} | {wall:.2f} | {wall / base_wall:.2f} | {cpu:.2f} | {cpu / base_cpu:.2f} | {runs} |"
            )
    Path(args.out).write_text("\n".join(lines) + "\n")
    Path(args.out).with_suffix(".json").write_text(json.dumps({f"{w}|{s}": t for (w, s), t in times.items()}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
