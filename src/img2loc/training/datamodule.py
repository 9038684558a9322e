"""The training data as Lightning datamodules: shards (images) or features (``img2loc embed``).

Each works with a plain ``Trainer``: every per-epoch choice (shard order,
shuffling, augmentation, the crop size schedule, the feature order) reads the
trainer's epoch when an epoch's iteration starts, so no loader needs rebuilding.
The model's transforms are given to the shard datamodule
(:meth:`img2loc.training.task.GeoTask.transforms`); nothing is pushed into it later.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any, cast

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from img2loc.data.features import load_feature_info, load_features
from img2loc.data.shard_reader import read_info, split_urls
from img2loc.inference.preprocess import PreprocessConfig
from img2loc.models.transforms import AugmentConfig, Transforms
from img2loc.training.data import make_pipeline
from img2loc.training.targets import CellTargets


class ShardDataModule(L.LightningDataModule):
    """Train/val loaders over a shard folder written by ``img2loc data shards``."""

    def __init__(
        self,
        shards: str,
        transforms: Transforms | None = None,
        targets: CellTargets | None = None,
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
            transforms: the model's (``GeoTask.transforms``); default: ImageNet-style
                preprocessing at 224 px.
            targets: the loss's targets, built per batch by the loader
                (``GeoTask.cell_targets``); default: the task builds them.
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
        self.shards = shards
        self.transforms = transforms or Transforms(PreprocessConfig())
        self.targets = targets
        self.batch_size, self.num_workers = batch_size, num_workers
        self.shuffle_buffer, self.seed = shuffle_buffer, seed
        self.augment = augment or AugmentConfig()
        self.val_split = val_split
        info = read_info(shards)
        self.source_weights = (
            source_weights if source_weights is not None else info.get("source_weights", {})
        )
        self.train_urls, self.n_train = split_urls(shards, "train")
        self.epoch_samples = epoch_samples or self.n_train

    def batches_per_epoch(self, world_size: int = 1) -> int:
        workers = max(1, self.num_workers)
        per_rank = math.ceil(self.epoch_samples / self.batch_size / world_size)
        return math.ceil(per_rank / workers) * workers

    def train_dataloader(self) -> DataLoader:  # type: ignore[type-arg]
        trainer = self.trainer
        world = trainer.world_size if trainer is not None else 1

        def epoch() -> int:
            return trainer.current_epoch if trainer is not None else 0

        workers = max(1, self.num_workers)
        pipe = make_pipeline(
            self.train_urls,
            train=True,
            batch_size=self.batch_size,
            pre=self.transforms.preprocess,
            aug=self.augment,
            sizes=self.transforms.sizes,
            seed=self.seed,
            epoch=epoch,
            shuffle_buffer=self.shuffle_buffer,
            source_weights=self.source_weights,
            batches_per_worker=self.batches_per_epoch(world) // workers,
            targets=self.targets,
        )
        return DataLoader(
            pipe,
            batch_size=None,
            num_workers=self.num_workers,
            persistent_workers=False,
            pin_memory=torch.cuda.is_available(),
        )

    def val_dataloader(self) -> DataLoader:  # type: ignore[type-arg]
        urls, _ = split_urls(self.shards, self.val_split)
        pipe = make_pipeline(
            urls,
            train=False,
            batch_size=self.batch_size,
            pre=self.transforms.preprocess,
            targets=self.targets,
        )
        return DataLoader(pipe, batch_size=None, num_workers=min(self.num_workers, len(urls)))


class FeatureDataset:
    """Batches of precomputed features; training draws the flipped view half the time."""

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        train: bool,
        seed: int,
        targets: CellTargets | None = None,
    ) -> None:
        self.a, self.train, self.seed, self.targets = arrays, train, seed, targets
        self.rng = np.random.default_rng([seed, 0])
        self.flip = train and "features_flip" in arrays

    def __len__(self) -> int:
        return len(self.a["key"])

    def start_epoch(self, epoch: int) -> None:
        self.rng = np.random.default_rng([self.seed, epoch])

    def batch(self, idx: list[int]) -> dict[str, Any]:
        i = np.asarray(idx)
        feat = self.a["features"][i]
        if self.flip:
            use = self.rng.random(len(i)) < 0.5
            feat = np.where(use[:, None], self.a["features_flip"][i], feat)
        out: dict[str, Any] = {
            "feat": torch.from_numpy(np.ascontiguousarray(feat)),
            "lat": torch.from_numpy(self.a["latitude"][i]),
            "lon": torch.from_numpy(self.a["longitude"][i]),
            "key": self.a["key"][i].tolist(),
            "location_id": self.a["location_id"][i].tolist(),
            "source": self.a["source"][i].tolist(),
            "pad": torch.zeros(len(i), dtype=torch.bool),
        }
        if self.targets is not None:
            out["target"] = self.targets(self.a["latitude"][i], self.a["longitude"][i])
        return out


class _EpochSampler(Sampler[int]):
    """Indices in an order fixed by (seed, epoch), read when the epoch's iteration starts
    (the order ``DataLoader(shuffle=True)`` gives with that epoch's generator)."""

    def __init__(
        self, ds: FeatureDataset, shuffle: bool, epoch: Callable[[], int], served: set[int]
    ) -> None:
        self.ds, self.shuffle, self.epoch = ds, shuffle, epoch
        self.served = served  # epochs this datamodule has shuffled (shared by its loaders)

    def __len__(self) -> int:
        return len(self.ds)

    def __iter__(self) -> Iterator[int]:
        e = self.epoch()
        self.ds.start_epoch(e)
        if not self.shuffle:
            return iter(range(len(self.ds)))
        gen = torch.Generator().manual_seed(self.ds.seed * 1_000_003 + e)
        # Orders as the shipped heads were trained with them: the loader used to own this
        # generator and be rebuilt every epoch, and each start of its iterator drew a
        # worker seed from it first: once in a run's first epoch, twice in later ones.
        for _ in range(2 if self.served - {e} else 1):
            torch.empty((), dtype=torch.int64).random_(generator=gen)
        self.served.add(e)
        return iter(torch.randperm(len(self.ds), generator=gen).tolist())


class FeatureDataModule(L.LightningDataModule):
    """Train/val loaders over frozen-backbone features from ``img2loc embed``: the head
    trains on them in seconds on a CPU."""

    def __init__(
        self,
        features: str,
        batch_size: int = 64,
        seed: int = 0,
        val_split: str = "val",
        targets: CellTargets | None = None,
    ) -> None:
        super().__init__()
        self.features, self.batch_size, self.seed = features, batch_size, seed
        self.targets = targets
        self.val_split = val_split
        self.feature_info = load_feature_info(features)
        self._feats = {s: load_features(features, s) for s in ("train", val_split)}
        self.n_train = len(self._feats["train"]["key"])
        self._served: set[int] = set()

    def check_model(self, backbone: str, init_from: str | None) -> None:
        """Refuse a model whose backbone (or starting checkpoint) did not make these features."""
        info = self.feature_info
        ckpt = info.get("checkpoint")
        if info["backbone"] != backbone or (ckpt and ckpt != init_from):
            raise ValueError(
                f"features in {self.features} come from backbone {info['backbone']!r}"
                + (f" of checkpoint {ckpt}" if ckpt else "")
                + f"; train with --model.backbone {info['backbone']}"
                + (f" --model.init_from {ckpt}" if ckpt else "")
            )

    def batches_per_epoch(self, world_size: int = 1) -> int:
        return max(1, self.n_train // (self.batch_size * world_size))

    def _loader(self, split: str, train: bool) -> DataLoader:  # type: ignore[type-arg]
        trainer = self.trainer

        def epoch() -> int:
            return trainer.current_epoch if trainer is not None else 0

        ds = FeatureDataset(self._feats[split], train, self.seed, self.targets)
        return DataLoader(
            cast(Any, range(len(ds))),  # indices; the collate function reads the arrays
            batch_size=self.batch_size,
            sampler=_EpochSampler(ds, train, epoch, self._served),
            drop_last=train,
            # Its worker seed is drawn from this, not from the global generator.
            generator=torch.Generator(),
            collate_fn=ds.batch,
        )

    def train_dataloader(self) -> DataLoader:  # type: ignore[type-arg]
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:  # type: ignore[type-arg]
        return self._loader(self.val_split, False)


class TrainDataModule(L.LightningDataModule):
    """What ``img2loc train`` reads ``--data.*`` into: a shard folder or a feature folder.

    It builds a :class:`ShardDataModule` or a :class:`FeatureDataModule` (``.data``)
    and hands Lightning its loaders, so one set of ``--data.*`` options serves both.
    """

    def __init__(
        self,
        shards: str | None = None,
        features: str | None = None,
        transforms: Transforms | None = None,
        targets: CellTargets | None = None,
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
            transforms: the model's (set from the model by ``img2loc train``).
            targets: the loss's targets, built by the loader (set from the model too).
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
        self.data: ShardDataModule | FeatureDataModule
        if features is not None:
            self.data = FeatureDataModule(features, batch_size, seed, val_split, targets)
        else:
            assert shards is not None
            self.data = ShardDataModule(
                shards,
                transforms,
                targets,
                batch_size,
                num_workers,
                shuffle_buffer,
                seed,
                augment,
                source_weights,
                val_split,
                epoch_samples,
            )

    def batches_per_epoch(self, world_size: int = 1) -> int:
        return self.data.batches_per_epoch(world_size)

    def train_dataloader(self) -> DataLoader:  # type: ignore[type-arg]
        self.data.trainer = self.trainer
        return self.data.train_dataloader()

    def val_dataloader(self) -> DataLoader:  # type: ignore[type-arg]
        self.data.trainer = self.trainer
        return self.data.val_dataloader()
