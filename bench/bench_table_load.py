"""What a trial pays to load prepared data: memory-mapped ``.npy`` against a table's Arrow file.

For each table (an all-numeric one and the penguins table, repeated to more rows) the data is
prepared as snaketune prepares it (``snaketune.base.data.prepare``): arrays for the numeric one
read as a generator-like source, Arrow for the tables; Parquet is measured beside them as the
alternative. Two figures, medians of ``--repeats`` runs:

* ``cold``: a new Python that imports what it needs and loads the training data once (what a
  cluster job without a warm worker pays; numpy-only for ``.npy``, pandas + pyarrow otherwise);
* ``warm``: the load alone in a process that has the imports (what a forked trial pays when the
  worker did not load the data before the fork).

Every figure is also given as a ratio to the ``.npy`` memory map of the same run.

    .venv/bin/python bench/bench_table_load.py --rows 100000 --repeats 7 --out bench/results/table-load.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from snaketune.base.data import load_prepared, prepare  # noqa: E402

COLD = {
    "npy": "import numpy as np; X = np.load({x!r}, mmap_mode='r'); X[::7].sum()",
    "arrow": "import pyarrow.feather as f; X = f.read_table({x!r}, memory_map=True).to_pandas(); len(X)",
    "parquet": "import pandas as pd; X = pd.read_parquet({x!r}); len(X)",
}


def _tables(rows: int, folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    numeric = pd.DataFrame(rng.normal(size=(rows, 20)), columns=[f"x{i}" for i in range(20)])
    numeric["y"] = rng.integers(0, 2, rows)
    penguins = pd.read_csv(REPO / "examples" / "data" / "penguins.csv")
    penguins = penguins.iloc[np.arange(rows) % len(penguins)].reset_index(drop=True)
    paths = {"numeric": folder / "numeric.csv", "penguins": folder / "penguins.csv"}
    numeric.to_csv(paths["numeric"], index=False)
    penguins.to_csv(paths["penguins"], index=False)
    return paths


def _median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        function()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _cold(code: str, repeats: int) -> float:
    return _median_seconds(lambda: subprocess.run([sys.executable, "-c", code], check=True), repeats)


def measure(rows: int, repeats: int) -> dict:
    results = {"rows": rows, "repeats": repeats, "loadavg_before": os.getloadavg(), "tables": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = _tables(rows, folder)
        for name, path in paths.items():
            target = "y" if name == "numeric" else "species"
            table_dir = folder / f"{name}-table"
            prepare({"csv": str(path), "target": target}, folder, table_dir)
            frame = load_prepared(table_dir)["X"]
            frame.to_parquet(folder / f"{name}.parquet", index=False)
            files = {"arrow": table_dir / "X.arrow", "parquet": folder / f"{name}.parquet"}
            if name == "numeric":
                array_dir = folder / "numeric-arrays"
                array_dir.mkdir()
                np.save(array_dir / "X.npy", frame.to_numpy(float))
                files["npy"] = array_dir / "X.npy"
            row = {"mb": {k: round(p.stat().st_size / 2**20, 2) for k, p in files.items()}, "cold_s": {}, "warm_s": {}}
            import pyarrow.feather as feather

            warm = {
                "npy": lambda p: np.load(p, mmap_mode="r")[::7].sum(),
                "arrow": lambda p: feather.read_table(p, memory_map=True).to_pandas(),
                "parquet": pd.read_parquet,
            }
            for fmt, path_ in files.items():
                row["cold_s"][fmt] = _cold(COLD[fmt].format(x=str(path_)), repeats)
                row["warm_s"][fmt] = _median_seconds(partial(warm[fmt], path_), repeats)
            if "npy" in files:
                row["cold_ratio_to_npy"] = {k: v / row["cold_s"]["npy"] for k, v in row["cold_s"].items()}
                row["warm_ratio_to_npy"] = {k: v / row["warm_s"]["npy"] for k, v in row["warm_s"].items()}
            results["tables"][name] = row
    results["loadavg_after"] = os.getloadavg()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results = measure(args.rows, args.repeats)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
