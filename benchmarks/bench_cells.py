"""Cell-set speed: build from 1M coordinates and label 1M coordinates (target: <= 10 s each).

    python benchmarks/bench_cells.py [--n 1000000]

Coordinates are clustered like real photo collections (around the shared Street
View locations when ../shared/data is present, else around random centres).
The s2sphere per-point loop is timed on a slice as the baseline.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import s2sphere

from img2loc.geo import CellSet
from img2loc.geo.s2 import leaf_ids

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def coordinates(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    csvs = sorted(SHARED.glob("streetview-*/locations.csv"))
    if csvs:
        import pandas as pd

        df = pd.concat(pd.read_csv(p, usecols=["latitude", "longitude"]) for p in csvs)
        centres = df.to_numpy(np.float64)
    else:
        centres = np.c_[rng.uniform(-60, 70, 2000), rng.uniform(-180, 180, 2000)]
    pick = centres[rng.integers(0, len(centres), n)]
    # ~2 km jitter around each place, then wrap into range.
    lat = np.clip(pick[:, 0] + rng.normal(0, 0.02, n), -90, 90)
    lon = (pick[:, 1] + rng.normal(0, 0.02, n) + 180) % 360 - 180
    return lat, lon


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1_000_000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    lat, lon = coordinates(args.n, rng)

    t = time.perf_counter()
    cells = CellSet.build(lat, lon, min_samples=50, max_samples=2000, max_level=16)
    t_build = time.perf_counter() - t

    t = time.perf_counter()
    labels = cells.labels(lat, lon)
    fin = cells.finest(lat, lon)
    t_label = time.perf_counter() - t

    k = 20_000
    t = time.perf_counter()
    for a, b in zip(lat[:k], lon[:k], strict=True):
        s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(a, b))
    t_ref = (time.perf_counter() - t) * args.n / k
    t = time.perf_counter()
    leaf_ids(lat, lon)
    t_ids = time.perf_counter() - t

    print(f"coordinates:            {args.n:,}")
    print(
        f"cells:                  {len(cells):,} ({int(cells.is_leaf.sum()):,} leaves, "
        f"levels {min(cells.level_list)}-{max(cells.level_list)})"
    )
    print(f"build from {args.n:,}:     {t_build:6.2f} s   (target <= 10 s)")
    print(
        f"label {args.n:,}:          {t_label:6.2f} s   (target <= 10 s; "
        f"{labels.shape[1]} levels, {np.mean(fin >= 0) * 100:.1f}% inside a cell)"
    )
    print(f"leaf ids, numpy:        {t_ids:6.2f} s")
    print(
        f"leaf ids, s2sphere loop:{t_ref:6.2f} s   (extrapolated from {k:,}; "
        f"numpy is {t_ref / t_ids:.0f}x faster)"
    )


if __name__ == "__main__":
    main()
