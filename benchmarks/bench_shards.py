"""Shard-writing throughput on the shared Street View photos (images/s).

    python benchmarks/bench_shards.py [--limit 3000] [--workers N]

Imports the three shared Street View tables, then writes shards (decode,
validate, resize to 384, re-encode) into a temp folder, with 1 worker and with
all cores, and prints images/s for each (the 1-worker run is the baseline).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from img2loc.data.shards import ShardConfig, write_shards
from img2loc.data.sources.table import import_table

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--limit", type=int, default=3000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    frames = [import_table(p)[0] for p in sorted(SHARED.glob("streetview-*/locations.csv"))]
    if not frames:
        raise SystemExit(f"no shared data under {SHARED}")
    df = pd.concat(frames, ignore_index=True).sample(frac=1, random_state=0).head(args.limit)
    results = {}
    for workers in sorted({1, args.workers}):
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            info = write_shards(
                df, tmp, ShardConfig(shard_size=250), workers=workers, progress=False
            )
            dt = time.perf_counter() - t
        n = sum(s["n"] for s in info["splits"].values())
        results[workers] = n / dt
        print(f"workers={workers}: {n} images in {dt:.2f} s = {n / dt:.0f} images/s")
    if len(results) > 1:
        print(f"speed-up with {args.workers} workers: {results[args.workers] / results[1]:.2f}x")


if __name__ == "__main__":
    main()
