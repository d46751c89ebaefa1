"""Does a flat ``trials/`` folder of 100,000 to a million files cost anything? (issue 28)

    .venv/bin/python bench/bench_folder.py [--sizes 10000,100000,300000,1000000] [--layout flat|sharded]

Grows one folder of ~1 KB JSON files (a trial record's size) to each size, and at each size
measures, per file: creating one (write to a temp name + rename, as trials are written), ``stat``
of every file (what incremental aggregation does), reading 1,000 random files, and listing the
folder. ``--layout sharded`` puts each file in one of 256 subfolders by the first two hex
digits of its name, for comparison. Page cache warm (the machine is shared: no cache drops).
Results: bench/results/folder-<layout>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

RECORD = json.dumps({"trial_id": "x", "pad": "p" * 950})


def path_of(root: Path, i: int, sharded: bool) -> Path:
    name = f"{(i * 2654435761) % 2**48:012x}_{i % 5}.json"
    return root / name[:2] / name if sharded else root / name


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,300000,1000000")
    parser.add_argument("--layout", choices=["flat", "sharded"], default="flat")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    sharded = args.layout == "sharded"
    root = Path(tempfile.mkdtemp(prefix="snaketune-folder-", dir=args.workdir))
    if sharded:
        for h in range(256):
            (root / f"{h:02x}").mkdir()
    rows, made = [], 0
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            t0 = time.perf_counter()
            for i in range(made, size):
                path = path_of(root, i, sharded)
                tmp = path.with_name(f".{path.name}.tmp")
                tmp.write_text(RECORD)
                os.replace(tmp, path)
            create = (time.perf_counter() - t0) / max(1, size - made)
            made = size
            paths = [path_of(root, i, sharded) for i in range(size)]
            t0 = time.perf_counter()
            for p in paths:
                os.stat(p)
            stat_all = time.perf_counter() - t0
            sample = random.Random(0).sample(paths, 1000)
            t0 = time.perf_counter()
            for p in sample:
                p.read_bytes()
            read = (time.perf_counter() - t0) / len(sample)
            t0 = time.perf_counter()
            n = sum(len(os.listdir(d)) for d in ([root / f"{h:02x}" for h in range(256)] if sharded else [root]))
            listing = time.perf_counter() - t0
            row = {
                "files": size,
                "layout": args.layout,
                "create_us": round(create * 1e6, 1),
                "stat_us": round(stat_all / size * 1e6, 2),
                "stat_all_s": round(stat_all, 3),
                "read_us": round(read * 1e6, 1),
                "list_s": round(listing, 3),
                "listed": n,
                "load": [round(x, 2) for x in os.getloadavg()],
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"folder-{args.layout}.json").write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
