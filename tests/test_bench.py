"""Smoke test of the benchmark harness (bench/run.py): it runs and writes well-formed results.

Timings belong in the benchmark, not here: only keys, shapes and positive numbers are checked.
"""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def test_bench_quick_tiny(tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "run.py"),
            "--quick",
            "--only",
            "tiny",
            "--tiny-k",
            "1",
            "--out",
            str(out),
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    report = json.loads((out / "bench-quick.json").read_text())
    assert report["quick"] is True and report["cores"] == 2
    machine = report["machine"]
    for key in ("date", "nproc", "python", "versions", "loadavg_start"):
        assert key in machine
    assert machine["versions"]["sklearn"] and machine["versions"]["snakemake"]

    tiny = report["results"]["tiny"]
    assert tiny["parity"]["same_candidates"] and tiny["parity"]["max_abs_score_diff"] < 1e-12
    for variant in ("trials_per_job_1", "trials_per_job_auto"):
        row = tiny[variant]
        for key in ("ratio", "limit_s", "ours_over_limit", "sklearn_over_limit"):
            assert row[key] > 0, (variant, key)
        assert row["ours"]["trials"] == tiny["trials"] > 0
        assert row["ours"]["wall_s"] > 0 and row["ours"]["sum_trial_cpu_s"] > 0
        assert row["ours"]["measure"]["peak_tree_rss_mb"] > 0 and row["ours"]["measure"]["max_rss_mb"] > 0
        assert row["sklearn"]["wall_s"] > 0 and row["sklearn"]["fits"] == tiny["trials"]
        assert row["sklearn"]["measure"]["peak_tree_rss_mb"] > 0
    assert tiny["trials_per_job_1"]["ours"]["trial_jobs"] == tiny["trials"]
    assert tiny["trials_per_job_auto"]["ours"]["trial_jobs"] < tiny["trials"]

    with open(out / "bench-quick.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert any(r["section"] == "tiny" and float(r["value"]) > 0 for r in rows)
    assert "| Workload |" in (out / "bench-quick.md").read_text()
