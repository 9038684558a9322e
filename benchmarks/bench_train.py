"""Training throughput on this machine: the shard loader vs the model, side by side.

    python benchmarks/bench_train.py [--shards build/sv/shards] [--batches 6]

Without --shards it writes shards of 640 real Street View photos from
../shared/data to a temp folder. The loader is the real training pipeline
(shard shuffle, decode, RandomResizedCrop + flip + colour jitter, batching) with
0/1/2 worker processes; the model is a real training step (forward, BCE, backward,
AdamW) of tf_efficientnet_lite0 with ImageNet weights on ~180 cells at 224 px, in
channels-last and contiguous memory formats. Goal: loader >= 2x model.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from img2loc.data.shards import ShardConfig, write_shards
from img2loc.data.sources.table import import_table
from img2loc.geo import CellSet
from img2loc.training.datamodule import ShardDataModule
from img2loc.training.task import GeoTask

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def make_shards(tmp: Path) -> Path:
    df, _ = import_table(DATA / "streetview-world" / "locations.csv")
    df = df.iloc[:640]
    write_shards(
        df,
        tmp / "shards",
        ShardConfig(max_side=512, shard_size=80, val_frac=0.0, test_frac=0.0),
        progress=False,
    )
    return tmp / "shards"


def loader_rate(shards: Path, workers: int, batches: int, batch_size: int) -> float:
    dm = ShardDataModule(
        str(shards), batch_size=batch_size, num_workers=workers, shuffle_buffer=200
    )
    it = iter(dm.train_dataloader())
    next(it)  # worker start-up and the shuffle buffer's fill are not throughput
    t = time.perf_counter()
    n = 0
    for _ in range(batches):
        n += next(it)["image"].shape[0]
    return n / (time.perf_counter() - t)


def model_rate(cells: CellSet, channels_last: bool, steps: int, batch_size: int) -> float:
    torch.manual_seed(0)
    task = GeoTask(cells.to_dict(polygons=False), channels_last=channels_last)
    opt = torch.optim.AdamW(task.model.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    lat = torch.from_numpy(rng.uniform(-60, 70, batch_size))
    lon = torch.from_numpy(rng.uniform(-180, 180, batch_size))
    x = torch.randn(batch_size, 3, 224, 224)
    batch = {"image": x, "lat": lat, "lon": lon}
    task.model.train()

    def step() -> None:
        loss = task.compute_loss(task._logits(task.model, batch, train=True), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up (allocations, oneDNN kernel choice)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=Path, help="shard folder (default: 640 shared photos)")
    ap.add_argument("--batches", type=int, default=6, help="loader batches timed")
    ap.add_argument("--steps", type=int, default=3, help="training steps timed")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        shards = args.shards or make_shards(Path(tmp))
        rates = {w: loader_rate(shards, w, args.batches, args.batch_size) for w in (0, 1, 2)}
        rng = np.random.default_rng(0)
        cells = CellSet.build(
            rng.uniform(-60, 70, 20000),
            rng.uniform(-180, 180, 20000),
            min_samples=50,
            max_samples=300,
        )
        cl = model_rate(cells, True, args.steps, args.batch_size)
        contig = model_rate(cells, False, args.steps, args.batch_size)
    print(f"model: tf_efficientnet_lite0, {len(cells)} cells, batch {args.batch_size}, 224 px")
    print(f"  train step, channels_last : {cl:7.1f} img/s")
    print(f"  train step, contiguous    : {contig:7.1f} img/s  (channels_last {cl / contig:.2f}x)")
    print("loader (decode + augment + batch, real Street View shards):")
    for w, r in rates.items():
        print(f"  {w} worker(s)              : {r:7.1f} img/s  ({r / cl:.1f}x the model)")
    best = max(rates.values())
    verdict = "OK" if best >= 2 * cl else "BELOW GOAL"
    print(f"loader / model = {best / cl:.1f}x (goal >= 2x): {verdict}")


if __name__ == "__main__":
    main()
