"""Adding one configuration to a finished study, this code against a baseline checkout, interleaved
(issue 28): how long until the new batch starts, and the CPU of the parse and DAG.

    .venv/bin/python bench/bench_add_one.py --study DIR --baseline /work/main [--repeats 3]

``DIR`` is a finished study of ``bench_scale.py`` (``--keep``; the 100,000-trial one is
``--configs 20000``); it is copied once for each code (never changed). Each repeat, for each code
in turn: one configuration added and ``snakemake -n`` (the parse and DAG alone: wall and CPU
seconds), then another added and a real run (when the first new trial started, from the trial
files; the whole run), then a rerun with nothing to do. Results go to bench/results/add-one.{json,md} with the load average of
every run (the machine is shared: read the CPU seconds, which hold still).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_scale  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def add_one(workdir: Path) -> None:
    """One more alpha value in the config's added space (as bench_scale's additions)."""
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    grid = config["search"]["grid"]
    n_configs = grid[0]["alpha"]["logspace"][2]
    added = len(grid[1]["alpha"]) if len(grid) > 1 else 0
    (workdir / "config.yaml").write_text(yaml.safe_dump(bench_scale.study_config(n_configs, added + 1)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, required=True, help="a finished bench_scale study folder")
    parser.add_argument("--baseline", type=Path, required=True, help="another checkout (with .venv)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "add-one")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="snaketune-add-one-", dir=args.workdir))
    codes = {"baseline": args.baseline.resolve(), "this branch": REPO}
    copies = {}
    for label in codes:
        copies[label] = root / label.replace(" ", "-")
        shutil.copytree(args.study, copies[label], symlinks=True)
    runs: dict[str, list] = {label: [] for label in codes}
    try:
        # A first parse with each code (the parse cache is keyed by the code): not measured.
        for label, repo in codes.items():
            bench_scale.snakemake(repo, copies[label], "warm.log", args.cores, "-n")
        for i in range(args.repeats):
            for label, repo in codes.items():
                work = copies[label]
                out = work / "results" / "ridge-scale"
                add_one(work)
                dry = bench_scale.snakemake(repo, work, f"add-dry-{i}.log", args.cores, "-n")
                add_one(work)
                real = bench_scale.snakemake(repo, work, f"add-{i}.log", args.cores)
                phases = bench_scale.phases(out, real)
                same = bench_scale.snakemake(repo, work, f"no-change-{i}.log", args.cores)
                runs[label].append({"dry": dry.to_dict(), "real": real.to_dict(), "phases": phases,
                                    "no_change": same.to_dict()})  # fmt: skip
                print(f"  {label}: dry run {dry.wall_s:.2f} s ({dry.cpu_s:.2f} CPU-s, load {dry.loadavg_before[0]}), "
                      f"first new trial at {phases['first_trial_start_s']} s, run {real.wall_s:.2f} s "
                      f"({real.cpu_s:.2f} CPU-s, load {real.loadavg_before[0]}), no-change rerun {same.wall_s:.2f} s "
                      f"({same.cpu_s:.2f} CPU-s)", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    lines = [
        "# Adding one configuration: this code against a baseline, interleaved (bench/bench_add_one.py)",
        "",
        f"Study: {args.study} (copied once a code), --cores {args.cores}, medians of {args.repeats}; "
        "load average (1 min) before each run in brackets.",
        "",
        "| code | dry run after the addition | its CPU | first new trial starts | whole addition | its CPU | "
        "no-change rerun | its CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, rs in runs.items():

        def med(f, rs=rs):
            return statistics.median(f(r) for r in rs)

        loads = ", ".join(str(r["dry"]["loadavg_before"][0]) for r in rs)
        lines.append(
            f"| {label} | {med(lambda r: r['dry']['wall_s']):.2f} s [{loads}] | {med(lambda r: r['dry']['cpu_s']):.2f} "
            f"CPU-s | {med(lambda r: r['phases']['first_trial_start_s']):.2f} s | "
            f"{med(lambda r: r['real']['wall_s']):.2f} s | {med(lambda r: r['real']['cpu_s']):.2f} CPU-s | "
            f"{med(lambda r: r['no_change']['wall_s']):.2f} s | {med(lambda r: r['no_change']['cpu_s']):.2f} CPU-s |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"codes": {k: str(v) for k, v in codes.items()}, "runs": runs},
                                                        indent=1) + "\n")  # fmt: skip
    md = "\n".join(lines) + "\n"
    args.out.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
