"""Reproduction of issue #25's failures under load: several studies at once beside busy loops.

    python bench/bench_load.py                                   # 3 studies + 2 busy loops, 5 rounds
    python bench/bench_load.py --repo /tmp/old-checkout --name load-before

Each round starts ``--studies`` copies of ``--config`` (each its own folder, Snakemake and worker,
``--cores 2``) while ``--busy`` processes spin on the same 2 cores, and waits for all. For every
run it records: the exit status and wall time, failed jobs (Snakemake's "Error in rule"), job logs
that are empty, jobs that lost their worker and ran in a new Python (the client's line), and every
line of ``logs/worker.log`` other than "serving" (warm-up skips, deaths, restarts). The folders of
failed runs are kept and named. Writes ``bench/results/<name>.json`` and ``.md``.
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

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
FALLBACK = "running the call in a new Python"


def busy_loops(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def run_round(config: dict, n: int, repo: Path, round_index: int) -> list[dict]:
    runs = []
    for i in range(n):
        workdir = Path(tempfile.mkdtemp(prefix=f"snaketune-load-r{round_index}-s{i}-"))
        study = dict(config, study=f"{config['study']}-{i}")
        (workdir / "config.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
        cmd = [SNAKEMAKE, "-s", str(repo / "Snakefile"), "--directory", str(workdir), "--cores", "2"]
        log = open(workdir / "snakemake.out", "w")  # noqa: SIM115 - closed below
        runs.append((workdir, study, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log, time.time()))
    results = []
    for workdir, study, proc, log, started in runs:
        rc = proc.wait()
        log.close()
        results.append(inspect(workdir, study, rc, time.time() - started))
    return results


def inspect(workdir: Path, study: dict, rc: int, wall: float) -> dict:
    out = workdir / study.get("output_dir", "results") / study["study"]
    text = (workdir / "snakemake.out").read_text(errors="replace")
    logs = list((out / "logs").rglob("*.log")) if (out / "logs").exists() else []
    job_logs = [p for p in logs if p.name != "worker.log"]
    worker_log = (
        (out / "logs" / "worker.log").read_text(errors="replace") if (out / "logs" / "worker.log").exists() else ""
    )
    result = {
        "rc": rc,
        "wall_s": round(wall, 1),
        "failed_jobs": text.count("Error in rule"),
        "empty_logs": [str(p.relative_to(out)) for p in job_logs if p.stat().st_size == 0],
        "fallbacks": sum(FALLBACK in p.read_text(errors="replace") for p in job_logs),
        "worker_notes": worker_notes(worker_log),
        "folder": str(workdir),
    }
    if rc == 0 and not result["empty_logs"]:
        shutil.rmtree(workdir, ignore_errors=True)
        result["folder"] = None
    return result


def worker_notes(text: str) -> list[str]:
    """Every line of a worker log but "serving" and the stop at the end of the run (onsuccess)."""
    lines = text.splitlines()
    if lines and lines[-1].endswith("stopping: SIGTERM"):
        lines = lines[:-1]
    return [line for line in lines if " serving " not in line]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "examples" / "mlp-circles-hyperband.yaml"))
    parser.add_argument("--repo", default=str(REPO), help="checkout whose Snakefile runs (an older one: before)")
    parser.add_argument("--studies", type=int, default=3)
    parser.add_argument("--busy", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-iter", type=int, default=9, help="Hyperband's max_iter (the example's 27 takes minutes)")
    parser.add_argument("--name", default="load")
    args = parser.parse_args(argv)
    config = yaml.safe_load(Path(args.config).read_text())
    if "hyperband" in config["search"] and args.max_iter:
        config["search"]["hyperband"]["max_iter"] = args.max_iter
    spinners = busy_loops(args.busy)
    rounds = []
    try:
        for r in range(args.rounds):
            t0 = time.time()
            results = run_round(config, args.studies, Path(args.repo), r)
            rounds.append({"round": r, "wall_s": round(time.time() - t0, 1), "runs": results})
            print(json.dumps(rounds[-1]), flush=True)
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    runs = [run for r in rounds for run in r["runs"]]
    summary = {
        "config": args.config,
        "repo": args.repo,
        "studies": args.studies,
        "busy": args.busy,
        "rounds": rounds,
        "failed_runs": sum(run["rc"] != 0 for run in runs),
        "failed_jobs": sum(run["failed_jobs"] for run in runs),
        "empty_logs": sum(len(run["empty_logs"]) for run in runs),
        "fallbacks": sum(run["fallbacks"] for run in runs),
    }
    results_dir = REPO / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"{args.name}.json").write_text(json.dumps(summary, indent=1))
    lines = [
        f"# {args.name}: {args.studies} studies at once + {args.busy} busy loops, {args.rounds} rounds",
        "",
        f"config `{args.config}`, code `{args.repo}`",
        "",
        f"failed runs {summary['failed_runs']} of {len(runs)}, failed jobs {summary['failed_jobs']}, "
        f"empty job logs {summary['empty_logs']}, jobs run in a new Python after losing the worker "
        f"{summary['fallbacks']}",
        "",
        "| round | wall s | exit codes | failed jobs | empty logs | fallbacks | worker notes |",
        "|---:|---:|---|---:|---:|---:|---|",
    ]
    for r in rounds:
        notes = sorted({n.split(" ", 1)[-1][:80] for run in r["runs"] for n in run["worker_notes"]})
        lines.append(
            f"| {r['round']} | {r['wall_s']} | {' '.join(str(x['rc']) for x in r['runs'])} | "
            f"{sum(x['failed_jobs'] for x in r['runs'])} | {sum(len(x['empty_logs']) for x in r['runs'])} | "
            f"{sum(x['fallbacks'] for x in r['runs'])} | {'; '.join(notes)} |"
        )
    (results_dir / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if summary["failed_runs"] == 0 else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
