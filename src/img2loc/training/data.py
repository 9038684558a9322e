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

import hashlib
import io
import json
import logging
import math
import random
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import webdataset as wds
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset
from torchvision.transforms import v2

from img2loc.data.shards import read_info
from img2loc.inference.preprocess import PreprocessConfig, preprocess

log = logging.getLogger(__name__)


@dataclass
class AugmentConfig:
    """Training augmentation. The original author found strong hue/saturation jitter hurt."""

    scale_min: float = 0.35
    hflip: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.1
    hue: float = 0.0


def split_urls(shards: str | Path, split: str) -> tuple[list[str], int]:
    info = read_info(shards)
    if split not in info["splits"]:
        raise ValueError(f"{shards} has no {split!r} split (has {sorted(info['splits'])})")
    s = info["splits"][split]
    return [str(Path(shards) / name) for name in s["shards"]], int(s["n"])


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
    """Apply a torch transform with randomness fixed by (seed, epoch, sample key).

    Augmentations then do not depend on what else drew random numbers (dropout,
    prefetching, worker count), which keeps a resumed run identical.
    """

    def __init__(self, tf: Callable[..., Any], seed: int, epoch: Epoch) -> None:
        self.tf, self.seed, self.epoch = tf, seed, epoch

    def __call__(self, im: Image.Image, key: str) -> Any:
        h = hashlib.blake2b(f"{self.seed}:{_now(self.epoch)}:{key}".encode(), digest_size=8)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int.from_bytes(h.digest(), "big") >> 1)
            return self.tf(im)


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


def decode_sample(sample: dict[str, Any]) -> tuple[Image.Image, dict[str, Any]]:
    """A shard sample's RGB image and metadata."""
    with Image.open(io.BytesIO(sample["jpg"])) as im:
        rgb = im.convert("RGB")
    return rgb, json.loads(sample["json"])


def train_transform(size: int, pre: PreprocessConfig, aug: AugmentConfig) -> Callable[..., Any]:
    t: list[Any] = [
        v2.RandomResizedCrop(
            size,
            scale=(aug.scale_min, 1.0),
            interpolation=v2.InterpolationMode.BICUBIC,
            antialias=True,
        )
    ]
    if aug.hflip > 0:
        t.append(v2.RandomHorizontalFlip(aug.hflip))
    if max(aug.brightness, aug.contrast, aug.saturation, aug.hue) > 0:
        t.append(v2.ColorJitter(aug.brightness, aug.contrast, aug.saturation, aug.hue))
    t += [
        v2.PILToTensor(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(pre.mean), list(pre.std)),
    ]
    return v2.Compose(t)


def _collate(batch: list[tuple[Any, dict[str, Any]]]) -> dict[str, Any]:
    images = torch.stack([torch.as_tensor(x) for x, _ in batch])
    metas = [m for _, m in batch]
    return {
        "image": images,
        "lat": torch.tensor([m["latitude"] for m in metas], dtype=torch.float64),
        "lon": torch.tensor([m["longitude"] for m in metas], dtype=torch.float64),
        "key": [m["key"] for m in metas],
        "location_id": [m.get("location_id", m["key"]) for m in metas],
        "source": [m.get("source", "") for m in metas],
        "pad": torch.tensor([bool(m.get("pad", False)) for m in metas]),
    }


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


def make_pipeline(
    urls: list[str],
    *,
    train: bool,
    batch_size: int,
    pre: PreprocessConfig,
    aug: AugmentConfig | None = None,
    size: int | None = None,
    seed: int = 0,
    epoch: Epoch = 0,
    shuffle_buffer: int = 2000,
    source_weights: dict[str, float] | None = None,
    batches_per_worker: int | None = None,
) -> wds.DataPipeline:
    """The stage list; ``batches_per_worker`` sets ``with_epoch`` for training."""
    if train:
        tf: Callable[[Image.Image, str], Any] = _SeededPerSample(
            train_transform(size or pre.input_size, pre, aug or AugmentConfig()), seed, epoch
        )
    else:

        def tf(im: Image.Image, key: str) -> np.ndarray:
            return preprocess(im, pre)

    stages: list[Any] = [EpochShards(urls, seed, epoch, resampled=train)]
    if train:
        stages += [
            wds.split_by_node,
            wds.split_by_worker,
            wds.tarfile_to_samples(handler=warn_and_continue),
            lambda src: _weighted(src, source_weights or {}, seed, epoch),
            lambda src: _shuffle(src, shuffle_buffer, seed, epoch),
            wds.map(decode_sample, handler=warn_and_continue),
            wds.map(lambda x: (tf(x[0], x[1]["key"]), x[1]), handler=warn_and_continue),
        ]
    else:
        # Ranks split by sample, workers by shard: see _rank_share.
        stages += [
            wds.split_by_worker,
            wds.tarfile_to_samples(handler=warn_and_continue),
            _rank_share,
            wds.map(_eval_sample(tf, pre)),
        ]
    stages.append(wds.batched(batch_size, collation_fn=_collate, partial=not train))
    pipe = wds.DataPipeline(*stages)
    if train and batches_per_worker is not None:
        pipe = pipe.with_epoch(batches_per_worker)
    return pipe


class FeatureDataset:
    """Batches of precomputed features; training draws the flipped view half the time."""

    def __init__(self, arrays: dict[str, np.ndarray], train: bool, seed: int, epoch: int) -> None:
        self.a, self.train = arrays, train
        self.rng = np.random.default_rng([seed, epoch])
        self.flip = train and "features_flip" in arrays

    def __len__(self) -> int:
        return len(self.a["key"])

    def batch(self, idx: list[int]) -> dict[str, Any]:
        i = np.asarray(idx)
        feat = self.a["features"][i]
        if self.flip:
            use = self.rng.random(len(i)) < 0.5
            feat = np.where(use[:, None], self.a["features_flip"][i], feat)
        return {
            "feat": torch.from_numpy(np.ascontiguousarray(feat)),
            "lat": torch.from_numpy(self.a["latitude"][i]),
            "lon": torch.from_numpy(self.a["longitude"][i]),
            "key": self.a["key"][i].tolist(),
            "location_id": self.a["location_id"][i].tolist(),
            "source": self.a["source"][i].tolist(),
            "pad": torch.zeros(len(i), dtype=torch.bool),
        }


class ShardDataModule(L.LightningDataModule):
    """Train/val loaders over a shard folder written by ``img2loc data shards``."""

    def __init__(
        self,
        shards: str | None = None,
        features: str | None = None,
        batch_size: int = 64,
        num_workers: int = 2,
        shuffle_buffer: int = 2000,
        seed: int = 0,
        augment: AugmentConfig | None = None,
        source_weights: dict[str, float] | None = None,
        val_split: str = "val",
        epoch_samples: int | None = None,
    ) -> None:
        """
        Args:
            shards: folder with ``_info.json`` and tar shards.
            features: instead of shards, a folder from ``img2loc embed``: the head
                trains on frozen-backbone features (seconds on a CPU).
            batch_size: images per batch per device.
            num_workers: loader processes per device.
            shuffle_buffer: samples held for shuffling (shards are pre-shuffled).
            seed: seed of shard order, shuffling, sampling and augmentation.
            augment: training augmentation.
            source_weights: per-source sampling weights (default: those in _info.json).
            val_split: split used for validation.
            epoch_samples: samples per epoch (default: the train split's size).
        """
        super().__init__()
        if (shards is None) == (features is None):
            raise ValueError("give exactly one of --data.shards or --data.features")
        self.shards, self.features = shards, features
        self.batch_size, self.num_workers = batch_size, num_workers
        self.shuffle_buffer, self.seed = shuffle_buffer, seed
        self.augment = augment or AugmentConfig()
        self.val_split = val_split
        self.preprocess = PreprocessConfig()
        self.train_size: int | None = None
        if features is not None:
            from img2loc.data.features import load_feature_info, load_features

            self.feature_info = load_feature_info(features)
            self._feats = {s: load_features(features, s) for s in ("train", val_split)}
            self.n_train = self.epoch_samples = len(self._feats["train"]["key"])
            return
        info = read_info(shards)
        self.source_weights = (
            source_weights if source_weights is not None else info.get("source_weights", {})
        )
        self.train_urls, self.n_train = split_urls(shards, "train")
        self.epoch_samples = epoch_samples or self.n_train

    def set_model_preprocess(self, pre: PreprocessConfig) -> None:
        self.preprocess = pre

    def batches_per_epoch(self, world_size: int = 1) -> int:
        if self.features is not None:
            return max(1, self.n_train // (self.batch_size * world_size))
        workers = max(1, self.num_workers)
        per_rank = math.ceil(self.epoch_samples / self.batch_size / world_size)
        return math.ceil(per_rank / workers) * workers

    def _feature_loader(self, split: str, train: bool) -> DataLoader:  # type: ignore[type-arg]
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        ds = FeatureDataset(self._feats[split], train=train, seed=self.seed, epoch=epoch)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return DataLoader(
            range(len(ds)),
            batch_size=self.batch_size,
            shuffle=train,
            drop_last=train,
            generator=gen,
            collate_fn=ds.batch,
        )

    def train_dataloader(self) -> DataLoader:  # type: ignore[type-arg]
        if self.features is not None:
            return self._feature_loader("train", True)
        trainer = self.trainer
        world = trainer.world_size if trainer is not None else 1

        def epoch() -> int:
            return trainer.current_epoch if trainer is not None else 0

        workers = max(1, self.num_workers)
        pipe = make_pipeline(
            self.train_urls,
            train=True,
            batch_size=self.batch_size,
            pre=self.preprocess,
            aug=self.augment,
            size=self.train_size,
            seed=self.seed,
            epoch=epoch,
            shuffle_buffer=self.shuffle_buffer,
            source_weights=self.source_weights,
            batches_per_worker=self.batches_per_epoch(world) // workers,
        )
        return DataLoader(
            pipe,
            batch_size=None,
            num_workers=self.num_workers,
            persistent_workers=False,
            pin_memory=torch.cuda.is_available(),
        )

    def val_dataloader(self) -> DataLoader:  # type: ignore[type-arg]
        if self.features is not None:
            return self._feature_loader(self.val_split, False)
        assert self.shards is not None
        urls, _ = split_urls(self.shards, self.val_split)
        pipe = make_pipeline(urls, train=False, batch_size=self.batch_size, pre=self.preprocess)
        return DataLoader(pipe, batch_size=None, num_workers=min(self.num_workers, len(urls)))
