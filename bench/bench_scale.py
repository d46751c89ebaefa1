"""Studies of 10,000 and 100,000 trials (issue 28): the first run, a rerun with nothing to do, and
one configuration added, whole Snakemake processes on a fresh folder.

    .venv/bin/python bench/bench_scale.py [--configs 2000,20000] [--repeats 3] [--baseline /work/main]

RidgeClassifier on iris, a grid of N alpha values (``logspace(-4, 4, N)``) x 5 stratified folds,
``trials_per_job: auto``. Per size: the first run (ms a trial), ``--repeats`` no-change reruns
and ``--repeats`` additions of one configuration (a sub-grid of new alpha values, one more each
time: 5 trials), medians. Each addition is profiled from what the run leaves behind: the new
trial files' start times, the batch manifest, leaderboard.csv, the plots and the report pages'
mtimes (how long until the batch starts, the batch, aggregation, plots, refit/report, the end).
After the last addition the leaderboard is rebuilt from every trial file with the summary moved
aside and compared byte for byte (``identical_to_full``).

``--baseline REPO`` runs the same steps with another checkout's Snakefile and venv (the code
before this change) in the same session, for the "no worse than today" rows. Results go to
bench/results/scale.{json,md} with the load average around every run (the machine is shared).
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
import measure  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
N_FOLDS = 5
TARGETS = {  # issue 28: the 100,000-trial study; 10,000 trials no worse than before
    20000: {"no_change_s": 5.0, "add_one_s": 10.0, "first_ms_per_trial": 3.3},
}


def study_config(n_configs: int, added: int = 0) -> dict:
    grid = [{"alpha": {"logspace": [-4, 4, n_configs]}, "fit_intercept": [True], "tol": [1e-4]}]
    if added:  # new alpha values between the grid's: every one a new configuration
        grid.append({"alpha": [round(1.2345 + 0.001 * i, 6) for i in range(added)], "fit_intercept": [True],
                     "tol": [1e-4]})  # fmt: skip
    return {
        "study": "ridge-scale",
        "data": {"loader": "iris"},
        "estimator": {"class": "sklearn.linear_model.RidgeClassifier"},
        "search": {"grid": grid},
        "cv": {"kind": "stratified", "n_splits": N_FOLDS, "shuffle": True, "seed": 0},
        "scoring": "accuracy",
        "trials_per_job": "auto",
    }


def snakemake(repo: Path, workdir: Path, log_name: str, cores: int, *args: str) -> measure.Measurement:
    cmd = [str(repo / ".venv" / "bin" / "snakemake"), "-s", str(repo / "Snakefile"), "--directory", str(workdir)]
    m = measure.run([*cmd, "--cores", str(cores), *args], cwd=workdir, log_path=workdir / log_name, timeout=3600)
    if m.returncode != 0:
        raise RuntimeError(f"snakemake failed in {workdir}:\n{(workdir / log_name).read_text()[-3000:]}")
    return m


def phases(out: Path, m: measure.Measurement) -> dict:
    """Where an addition's wall time went, from the files it wrote (seconds from the start;
    None: a step that wrote nothing in this run)."""
    t0 = m.start_epoch
    new = []
    for path in (out / "trials").glob("*.json"):
        if path.stat().st_mtime >= t0:
            new.append(json.loads(path.read_text()))
    starts = [measure.epoch(r["start"]) for r in new if r.get("start")]
    ends = [measure.epoch(r["end"]) for r in new if r.get("end")]
    manifests = [p.stat().st_mtime for p in (out / "batches").glob("*.json") if p.stat().st_mtime >= t0]
    steps = {name: (s if s >= 0 else None) for name, s in measure.timeline(out, t0).items()}
    done = [s for s in (steps.get("refit"), steps.get("report_pages")) if s is not None]

    def at(t):
        return None if t is None else round(t - t0, 3)

    return {
        "new_trials": len(new),
        "first_trial_start_s": at(min(starts) if starts else None),
        "last_trial_end_s": at(max(ends) if ends else None),
        "batch_done_s": at(max(manifests) if manifests else None),
        "leaderboard_s": steps.get("aggregate"),
        "plots_done_s": steps.get("plots"),
        "refit_report_done_s": max(done) if done else None,
        "end_s": round(m.wall_s, 3),
    }


def identical_to_full(repo: Path, out: Path) -> bool | None:
    """The leaderboard the run wrote against one from every trial file (summary moved aside),
    through the same aggregate call file the run used. None for code without a summary."""
    summary = out / ".cache" / "summary"
    if not summary.exists():
        return None
    calls = (out / ".snaketune" / "calls").glob("*.json")
    calls = [p for p in calls if "plan" in json.loads(p.read_text())]  # the aggregate call's
    call = max(calls, key=lambda p: p.stat().st_mtime)
    args = json.loads(call.read_text())
    names = [Path(p).name for p in args["outputs"][:3]]
    args["outputs"] = [str(out / f"full-{n}") for n in names] + args["outputs"][3:]
    aside = out / ".cache" / "summary-aside"
    summary.rename(aside)
    try:
        code = (
            "import json, sys; from snaketune.results.leaderboard import write_leaderboard; "
            "write_leaderboard(**json.load(open(sys.argv[1])))"
        )
        (out / "full-args.json").write_text(json.dumps(args))
        m = measure.run([str(repo / ".venv" / "bin" / "python"), "-c", code, str(out / "full-args.json")], cwd=out,
                        log_path=out / "full-aggregate.log")  # fmt: skip
        if m.returncode != 0:
            raise RuntimeError((out / "full-aggregate.log").read_text())
        same = all((out / n).read_bytes() == (out / f"full-{n}").read_bytes() for n in names)
    finally:
        shutil.rmtree(summary, ignore_errors=True)
        aside.rename(summary)
    return same


def bench_size(repo: Path, n_configs: int, root: Path, cores: int, repeats: int, study: Path | None) -> dict:
    workdir = study or root / f"{repo.name}-{n_configs}"
    out = workdir / "results" / "ridge-scale"
    trials = n_configs * N_FOLDS
    result: dict = {"repo": str(repo), "configs": n_configs, "trials": trials}
    if study is None:
        if workdir.exists():
            shutil.rmtree(workdir)
        workdir.mkdir(parents=True)
        (workdir / "config.yaml").write_text(yaml.safe_dump(study_config(n_configs)))
        first = snakemake(repo, workdir, "first.log", cores)
        result["first"] = first.to_dict()
        result["first_ms_per_trial"] = 1000 * first.wall_s / trials
        print(f"  {repo.name} {trials} trials: first run {first.wall_s:.1f} s "
              f"({result['first_ms_per_trial']:.2f} ms a trial), load {first.loadavg_after}", flush=True)  # fmt: skip
    text = yaml.safe_load((workdir / "config.yaml").read_text())
    added = len(text["search"]["grid"][1]["alpha"]) if len(text["search"]["grid"]) > 1 else 0
    reruns = []
    for i in range(repeats):
        m = snakemake(repo, workdir, f"no-change-{i}.log", cores)
        reruns.append(m.to_dict())
    result["no_change"] = reruns
    result["no_change_s"] = statistics.median(r["wall_s"] for r in reruns)
    dry = snakemake(repo, workdir, "dry-run.log", cores, "-n")
    result["dry_run_s"] = dry.wall_s
    print(f"  {repo.name} {trials} trials: no-change {[round(r['wall_s'], 2) for r in reruns]} s, "
          f"dry run {dry.wall_s:.2f} s", flush=True)  # fmt: skip
    adds = []
    for i in range(repeats):
        added += 1
        (workdir / "config.yaml").write_text(yaml.safe_dump(study_config(n_configs, added)))
        m = snakemake(repo, workdir, f"add-one-{i}.log", cores)
        adds.append(dict(m.to_dict(), phases=phases(out, m)))
        print(f"  {repo.name} {trials} trials: add one configuration {m.wall_s:.2f} s {adds[-1]['phases']}",
              flush=True)  # fmt: skip
    result["add_one"] = adds
    result["add_one_s"] = statistics.median(a["wall_s"] for a in adds)
    result["identical_to_full"] = identical_to_full(repo, out)
    return result


def markdown(results: list[dict], info: dict) -> str:
    lines = [
        "# Studies of 10,000 and 100,000 trials (bench/bench_scale.py)",
        "",
        f"RidgeClassifier on iris, grid of N alpha values x {N_FOLDS} folds, trials_per_job auto, "
        f"--cores {info['cores']}; medians of {info['repeats']}. Load average before/after: "
        f"{info['load_start']} / {info['load_end']} (2 cores shared with other agents).",
        "",
        "| code | trials | first run | ms a trial | no-change rerun | dry run | add one configuration | "
        "leaderboard = full rebuild |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]

    def cpu(runs) -> str:  # on a loaded machine wall time is mostly waiting: the CPU seconds too
        return f"{statistics.median(r['cpu_s'] for r in runs):.2f} CPU-s"

    for r in results:
        first = f"{r['first']['wall_s']:.1f} s" if "first" in r else "-"
        ms = f"{r['first_ms_per_trial']:.2f}" if "first" in r else "-"
        lines.append(
            f"| {r['label']} | {r['trials']:,} | {first} | {ms} | {r['no_change_s']:.2f} s ({cpu(r['no_change'])}) | "
            f"{r['dry_run_s']:.2f} s | {r['add_one_s']:.2f} s ({cpu(r['add_one'])}) | {r['identical_to_full']} |"
        )
    lines += ["", "Where an addition's time goes (seconds from the start; median run):", ""]
    lines.append("| code | trials | first new trial starts | batch done | leaderboard | plots | refit+report | end |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        p = sorted(r["add_one"], key=lambda a: a["wall_s"])[len(r["add_one"]) // 2]["phases"]
        lines.append(
            f"| {r['label']} | {r['trials']:,} | {p['first_trial_start_s']} | {p['batch_done_s']} | "
            f"{p['leaderboard_s']} | {p['plots_done_s']} | {p['refit_report_done_s']} | {p['end_s']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="2000,20000", help="grid sizes (configurations), comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--baseline", type=Path, help="another checkout (with .venv) measured the same way")
    parser.add_argument("--study", type=Path, help="reuse this finished study folder (no first run; one size)")
    parser.add_argument("--baseline-only", action="store_true", help="measure only the --baseline checkout")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the studies (scratch folder)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "scale")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.configs.split(",")]
    root = Path(tempfile.mkdtemp(prefix="snaketune-scale-", dir=args.workdir))
    info = {"cores": args.cores, "repeats": args.repeats, "load_start": measure.loadavg()}
    results = []
    try:
        for n in sizes:
            for label, repo in (("baseline", args.baseline), ("this branch", None if args.baseline_only else REPO)):
                if repo is None:
                    continue
                result = bench_size(repo.resolve(), n, root, args.cores, args.repeats, args.study)
                results.append(dict(result, label=label))
                args.out.parent.mkdir(parents=True, exist_ok=True)  # so far, in case a later size fails
                args.out.with_suffix(".json").write_text(json.dumps({"machine": info, "results": results}, indent=1))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    info["load_end"] = measure.loadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"machine": info, "results": results}, indent=1) + "\n")
    md = markdown(results, info)
    args.out.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
