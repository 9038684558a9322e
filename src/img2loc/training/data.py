"""Read WebDataset shards for training: a flat list of stages (open_clip style).

Training stream: seeded shard order (resampled forever, so every rank and
worker yields exactly ``with_epoch`` batches — DDP needs equal counts) →
split by node → split by worker → tar samples (bad tars skipped with a
warning) → per-source sampling weights → seeded shuffle buffer → decode (bad
images skipped with a warning) → augment → batch. Every random choice is
seeded by (seed, epoch, rank, worker), so an epoch's batches are reproducible,
which is what makes ``--resume`` exact.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import random
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import webdataset as wds
from PIL import Image
from torch.utils.data import IterableDataset

from img2loc.data.shard_reader import decode_sample, read_shard
from img2loc.inference.preprocess import PreprocessConfig
from img2loc.models.transforms import AugmentConfig, Transforms
from img2loc.training.targets import CellTargets

log = logging.getLogger(__name__)


def _rank_worker() -> tuple[int, int, int, int]:
    rank, world = 0, 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    info = torch.utils.data.get_worker_info()
    wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
    return rank, world, wid, nw


def _rng(seed: int, epoch: int, tag: str) -> random.Random:
    rank, _, wid, _ = _rank_worker()
    return random.Random(f"{seed}:{epoch}:{rank}:{wid}:{tag}")


def warn_and_continue(exn: Exception) -> bool:
    warnings.warn(f"skipping a bad sample: {exn!r}", stacklevel=2)
    return True


Epoch = int | Callable[[], int]


def _now(epoch: Epoch) -> int:
    # Read when iteration starts: a resumed run builds its loaders before it knows its epoch.
    return epoch() if callable(epoch) else epoch


class EpochShards(IterableDataset):  # type: ignore[type-arg]
    """Shard URLs in an order fixed by (seed, epoch); ``resampled`` cycles forever."""

    def __init__(self, urls: list[str], seed: int, epoch: Epoch, resampled: bool) -> None:
        self.urls, self.seed, self.epoch, self.resampled = urls, seed, epoch, resampled

    def __iter__(self) -> Iterator[dict[str, str]]:
        epoch = _now(self.epoch)
        rng = random.Random(f"{self.seed}:{epoch}:shards")  # same order on every rank
        rounds = 0
        while True:
            order = list(self.urls)
            if self.resampled:
                rng.shuffle(order)
            yield from ({"url": u} for u in order)
            rounds += 1
            if not self.resampled:
                return


class _SeededPerSample:
    """Apply the epoch's train transform with randomness fixed by (seed, epoch, sample key).

    Augmentations then do not depend on what else drew random numbers (dropout,
    prefetching, worker count), which keeps a resumed run identical. The epoch is
    read per sample, so the size schedule needs no loader rebuilt per epoch.
    """

    def __init__(self, transforms: Transforms, aug: AugmentConfig, seed: int, epoch: Epoch) -> None:
        self.transforms, self.aug, self.seed, self.epoch = transforms, aug, seed, epoch
        self._tf: dict[int, Callable[..., Any]] = {}

    def __call__(self, im: Image.Image, key: str) -> Any:
        epoch = _now(self.epoch)
        size = self.transforms.train_size(epoch)
        if size not in self._tf:
            self._tf[size] = self.transforms.train(epoch, self.aug)
        h = hashlib.blake2b(f"{self.seed}:{epoch}:{key}".encode(), digest_size=8)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int.from_bytes(h.digest(), "big") >> 1)
            return self._tf[size](im)


def _shuffle(src: Iterator[Any], bufsize: int, seed: int, epoch: Epoch) -> Iterator[Any]:
    rng = _rng(seed, _now(epoch), "samples")
    buf: list[Any] = []
    for x in src:
        if len(buf) < bufsize:
            buf.append(x)
            continue
        k = rng.randrange(len(buf))
        yield buf[k]
        buf[k] = x
    rng.shuffle(buf)
    yield from buf


def _weighted(
    src: Iterator[dict[str, Any]], weights: dict[str, float], seed: int, epoch: Epoch
) -> Iterator[dict[str, Any]]:
    """Keep each sample with probability weight(source) / max weight."""
    if not weights:
        yield from src
        return
    top = max(weights.values())
    rng = _rng(seed, _now(epoch), "weights")
    for s in src:
        w = weights.get(json.loads(s["json"]).get("source", ""), top)
        if w >= top or rng.random() < w / top:
            yield s


def _rank_share(src: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every rank reads this worker's shards and keeps every world-th sample, padded so all
    ranks yield the same count.

    DDP runs collectives inside every forward (buffer broadcast), so ranks that saw
    different numbers of validation batches would hang. Padding samples carry
    ``pad=True`` and are masked out of the metrics (as DistributedSampler pads).
    """
    rank, world, _, _ = _rank_worker()
    seen = kept = 0
    template: dict[str, Any] | None = None
    for s in src:
        template = template or s
        if seen % world == rank:
            kept += 1
            yield s
        seen += 1
    if template is not None:
        for _ in range(-(-seen // world) - kept):
            yield {**template, "__pad__": True}


def _collate(
    batch: list[tuple[Any, dict[str, Any]]], targets: CellTargets | None = None
) -> dict[str, Any]:
    images = torch.stack([torch.as_tensor(x) for x, _ in batch])
    metas = [m for _, m in batch]
    out: dict[str, Any] = {
        "image": images,
        "lat": torch.tensor([m["latitude"] for m in metas], dtype=torch.float64),
        "lon": torch.tensor([m["longitude"] for m in metas], dtype=torch.float64),
        "key": [m["key"] for m in metas],
        "location_id": [m.get("location_id", m["key"]) for m in metas],
        "source": [m.get("source", "") for m in metas],
        "pad": torch.tensor([bool(m.get("pad", False)) for m in metas]),
    }
    if targets is not None:
        out["target"] = targets(out["lat"].numpy(), out["lon"].numpy())
    return out


def _eval_sample(
    tf: Callable[[Image.Image, str], Any], pre: PreprocessConfig
) -> Callable[[dict[str, Any]], tuple[Any, dict[str, Any]]]:
    """Decode + transform for evaluation: a bad sample becomes a masked pad, never a gap,
    so every rank still yields the same number of batches."""

    def run(sample: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        try:
            im, meta = decode_sample(sample)
            return tf(im, meta["key"]), {**meta, "pad": bool(sample.get("__pad__"))}
        except Exception as exn:
            warn_and_continue(exn)
            blank = np.zeros((3, pre.input_size, pre.input_size), np.float32)
            return blank, {
                "latitude": 0.0,
                "longitude": 0.0,
                "key": str(sample.get("__key__")),
                "pad": True,
            }

    return run


def _tar_samples(src: Iterator[dict[str, str]]) -> Iterator[dict[str, Any]]:
    """The shard reader of :mod:`img2loc.data.shard_reader` as a WebDataset stage: a bad
    shard is skipped with a warning, as ``wds.tarfile_to_samples`` skipped it."""
    for d in src:
        try:
            for sample in read_shard(d["url"]):
                yield sample.as_webdataset()
        except Exception as exn:
            warn_and_continue(exn)


def make_pipeline(
    urls: list[str],
    *,
    train: bool,
    batch_size: int,
    pre: PreprocessConfig,
    aug: AugmentConfig | None = None,
    sizes: tuple[int, ...] = (),
    seed: int = 0,
    epoch: Epoch = 0,
    shuffle_buffer: int = 2000,
    source_weights: dict[str, float] | None = None,
    batches_per_worker: int | None = None,
    targets: CellTargets | None = None,
) -> wds.DataPipeline:
    """The stage list; ``batches_per_worker`` sets ``with_epoch`` for training.

    ``sizes``: the training crop size per epoch (default: the model's input size).
    """
    transforms = Transforms(pre, sizes)
    if train:
        tf: Callable[[Image.Image, str], Any] = _SeededPerSample(
            transforms, aug or AugmentConfig(), seed, epoch
        )
    else:

        def tf(im: Image.Image, key: str) -> np.ndarray:
            return transforms.eval(im)

    stages: list[Any] = [EpochShards(urls, seed, epoch, resampled=train)]
    if train:
        stages += [
            wds.split_by_node,
            wds.split_by_worker,
            _tar_samples,
            lambda src: _weighted(src, source_weights or {}, seed, epoch),
            lambda src: _shuffle(src, shuffle_buffer, seed, epoch),
            wds.map(decode_sample, handler=warn_and_continue),
            wds.map(lambda x: (tf(x[0], x[1]["key"]), x[1]), handler=warn_and_continue),
        ]
    else:
        # Ranks split by sample, workers by shard: see _rank_share.
        stages += [
            wds.split_by_worker,
            _tar_samples,
            _rank_share,
            wds.map(_eval_sample(tf, pre)),
        ]
    collate = functools.partial(_collate, targets=targets)
    stages.append(wds.batched(batch_size, collation_fn=collate, partial=not train))
    pipe = wds.DataPipeline(*stages)
    if train and batches_per_worker is not None:
        pipe = pipe.with_epoch(batches_per_worker)
    return pipe
