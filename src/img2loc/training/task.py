"""GeoTask: the LightningModule that trains a GeoLocator on multi-label S2 targets.

The typed ``__init__`` arguments are the configuration (LightningCLI reads them
from YAML), saved once with ``save_hyperparameters``. The network is built from
its :class:`~img2loc.models.config.ModelConfig` by :mod:`img2loc.models`; the task
keeps the loss, the optimiser and its schedule, the weight average, staged
unfreezing and the validation metrics. Every checkpoint also carries the cell set
and the model config, so a checkpoint alone is enough to predict, evaluate or
export (:func:`img2loc.models.checkpoint.load_checkpoint`, no training code).
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from img2loc.data.cells import read_cells
from img2loc.geo.cells import CellSet
from img2loc.models.backbone import last_layer_groups
from img2loc.models.checkpoint import CKPT_KEY, model_state, read_checkpoint
from img2loc.models.config import ModelConfig, build_model
from img2loc.models.geolocator import GeoLocator
from img2loc.models.transforms import Transforms, create_transforms
from img2loc.training.datamodule import FeatureDataModule, TrainDataModule
from img2loc.training.metrics import GeoMetrics
from img2loc.training.targets import CellTargets


def _load_cells(cells: str | dict[str, Any]) -> CellSet:
    if isinstance(cells, dict):
        return CellSet.from_dict(cells)
    return read_cells(cells)


class GeoTask(L.LightningModule):
    """Multi-label S2-cell classification with positive-weighted BCE."""

    model: GeoLocator
    pos_weight: torch.Tensor

    def __init__(
        self,
        cells: str | dict[str, Any],
        backbone: str = "tf_efficientnet_lite0",
        pretrained: bool = True,
        weights: str | None = None,
        head: str = "linear",
        dropout: float = 0.2,
        hidden_dim: int = 1024,
        loss: str = "bce",
        pos_weight: str | float = "auto",
        max_pos_weight: float = 150.0,
        label_smoothing_km: float = 0.0,
        lr: float = 1e-3,
        backbone_lr_mult: float = 0.1,
        weight_decay: float = 0.01,
        warmup_steps: int = 100,
        min_lr_ratio: float = 0.01,
        head_only_epochs: int = 0,
        last_blocks_epochs: int = 0,
        last_blocks: int = 2,
        train_sizes: list[int] | None = None,
        random_sizes: bool = False,
        ema_decay: float = 0.0,
        channels_last: bool = True,
        decode_rule: str = "score",
        init_from: str | None = None,
        seed: int = 0,
    ) -> None:
        """
        Args:
            cells: cell set JSON path (from ``img2loc cells build``) or its dict.
            backbone: timm model name.
            pretrained: start from ImageNet weights (offline for tf_efficientnet_lite0).
            weights: state dict file for the backbone (offline use of other backbones).
            head: ``linear``, ``mlp`` or ``hierarchical``.
            dropout: dropout before the head.
            hidden_dim: hidden width of the ``mlp`` head.
            loss: ``bce`` (multi-label over all cells, parents included) or ``ce``
                (single-label over finest cells, for comparison).
            pos_weight: ``auto`` (from cell frequencies) or a constant (the seed used 150).
            max_pos_weight: cap of the automatic positive weight.
            label_smoothing_km: geographic smoothing: cells get targets
                ``exp(-d / km)`` by distance d from the photo to their centre (0 = off).
            lr: peak learning rate of the head.
            backbone_lr_mult: backbone learning rate as a fraction of ``lr``.
            weight_decay: AdamW weight decay (not on biases and norms).
            warmup_steps: linear warmup steps before the cosine decay.
            min_lr_ratio: final learning rate as a fraction of the peak.
            head_only_epochs: staged fine-tuning: epochs training the head alone.
            last_blocks_epochs: then epochs training the head and the last blocks.
            last_blocks: how many of the backbone's layer groups (timm's
                ``group_matcher``: a stage of blocks each) count as "last".
            train_sizes: crop size per epoch from epoch 1 on (epoch 0 at the model's
                size, as the shipped models were trained; the last one repeats), or the
                sizes to draw from per batch with ``random_sizes``.
            random_sizes: draw a random size from ``train_sizes`` for each batch.
            ema_decay: keep an exponential moving average of the weights (0 = off);
                validation and checkpoints' ``ema`` use it.
            channels_last: channels-last memory format (about 1.7x faster on CPU).
            decode_rule: decoding rule of validation metrics: ``score`` (default),
                ``hierarchical`` or ``seed``.
            init_from: start from this checkpoint's weights (same cell set), e.g. a head
                trained in seconds on ``img2loc embed`` features, then fine-tune.
            seed: seed of per-epoch randomness (dropout, size draws).
        """
        super().__init__()
        self.save_hyperparameters()
        self.cells = _load_cells(cells)
        self.model_config = ModelConfig(backbone, head, dropout, hidden_dim, pretrained, weights)
        self.configure_models()
        self.configure_losses()
        self._frozen_backbone = False
        self.configure_metrics()
        self._t0 = time.perf_counter()

    def configure_losses(self) -> None:
        """The loss's targets (built by the loader, see :attr:`cell_targets`) and each
        cell's positive weight."""
        hp = self.hparams
        self.cell_targets = CellTargets(self.cells, hp["loss"], hp["label_smoothing_km"])
        self.register_buffer("pos_weight", self._pos_weight(), persistent=False)

    def configure_metrics(self) -> None:
        """Validation figures (torchmetrics: gathered across ranks at epoch end)."""
        self.val_metrics = GeoMetrics(self.cells, self.hparams["decode_rule"])

    def configure_models(self) -> None:
        """The network (from :attr:`model_config`), its weight average and starting weights."""
        hp = self.hparams
        self.model = build_model(self.model_config, self.cells)
        if hp["channels_last"]:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.ema: Any = None  # timm's ModelEmaV3: .module is the averaged GeoLocator
        if hp["ema_decay"] > 0:
            from timm.utils.model_ema import ModelEmaV3

            self.ema = ModelEmaV3(self.model, decay=hp["ema_decay"])
        if hp["init_from"]:
            self._init_from(hp["init_from"])

    @property
    def transforms(self) -> Transforms:
        """The train/eval transforms of this model, for :class:`ShardDataModule`."""
        hp = self.hparams
        return create_transforms(self.model.preprocess, hp["train_sizes"], hp["random_sizes"])

    def _init_from(self, path: str) -> None:
        # The averaged weights, when the run kept them, are the ones it validated.
        state = model_state(read_checkpoint(path)["state_dict"])
        own = self.model.state_dict()
        bad = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
        if bad or not state:
            raise ValueError(
                f"{path} does not fit this model (cells or backbone differ: "
                f"{bad[:3] or 'no model weights'}); use the same --model.cells "
                "and --model.backbone as the run that wrote it"
            )
        self.model.load_state_dict(state, strict=True)
        if self.ema is not None:
            self.ema.module.load_state_dict(state, strict=True)

    # ------------------------------------------------------------------ targets
    def _pos_weight(self) -> torch.Tensor:
        pw = self.hparams["pos_weight"]
        if pw == "auto":
            n = float(self.cells.params.get("n_counted") or self.cells.counts.max())
            c = np.maximum(self.cells.counts.astype(np.float64), 1.0)
            w = np.clip((n - c) / c, 1.0, self.hparams["max_pos_weight"])
        else:
            w = np.full(len(self.cells), float(pw))
        return torch.tensor(w, dtype=torch.float32)

    def targets(self, lat: torch.Tensor, lon: torch.Tensor) -> torch.Tensor:
        """The loss's targets for these coordinates (what the loader adds as ``target``)."""
        return self.cell_targets(lat.cpu().numpy(), lon.cpu().numpy()).to(self.device)

    def compute_loss(self, logits: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        # Loaders given cell_targets build them in their workers; others get them here.
        if "target" in batch:
            y = batch["target"].to(self.device)
        else:
            y = self.targets(batch["lat"], batch["lon"])
        if self.hparams["loss"] == "ce":
            return F.cross_entropy(logits.float(), y)
        return F.binary_cross_entropy_with_logits(logits.float(), y, pos_weight=self.pos_weight)

    # ------------------------------------------------------------------ steps
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.model(x)
        return out

    def _input(self, x: torch.Tensor, train: bool) -> torch.Tensor:
        sizes = self.hparams["train_sizes"]
        if train and sizes and self.hparams["random_sizes"]:
            rng = random.Random(f"{self.hparams['seed']}:{self.global_step}")
            s = rng.choice(sizes)
            if s != x.shape[-1]:
                x = F.interpolate(
                    x, size=(s, s), mode="bilinear", antialias=True, align_corners=False
                )
        if self.hparams["channels_last"]:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _logits(self, model: GeoLocator, batch: dict[str, Any], train: bool) -> torch.Tensor:
        if "feat" in batch:  # precomputed frozen-backbone features (img2loc embed)
            out: torch.Tensor = model.forward_head(batch["feat"].float())
            return out
        out = model(self._input(batch["image"], train))
        return out

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        # Dropout draws from a generator fixed per step, so a resumed run repeats it exactly.
        torch.manual_seed(self.hparams["seed"] * 1_000_003 + self.global_step)
        logits = self._logits(self.model, batch, train=True)
        loss = self.compute_loss(logits, batch)
        n = logits.shape[0]
        now = time.perf_counter()
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        self.log("train/img_s", n / max(now - self._t0, 1e-6), prog_bar=True, batch_size=n)
        self._t0 = now
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update(self.model, step=self.global_step)

    def _eval_model(self) -> GeoLocator:
        model: GeoLocator = self.ema.module if self.ema is not None else self.model
        return model

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        logits = self._logits(self._eval_model(), batch, train=False)
        # Ranks see padded, equal-length shares (see data._rank_share): drop the padding.
        keep = ~batch["pad"].to(logits.device)
        logits = logits[keep]
        rows = ("lat", "lon", "target")
        batch = {k: (v[keep.to(v.device)] if k in rows else v) for k, v in batch.items()}
        n = logits.shape[0]
        loss = float(self.compute_loss(logits, batch)) if n else 0.0
        probs = torch.sigmoid(logits.float()).cpu().numpy()
        lat, lon = batch["lat"].cpu().numpy(), batch["lon"].cpu().numpy()
        self.val_metrics.update(probs, lat, lon, loss)

    def on_validation_epoch_end(self) -> None:
        if not self.val_metrics.update_called:
            # A rank that saw no validation batch still joins the gather (and torchmetrics
            # would warn that compute came before update).
            empty = np.zeros(0)
            self.val_metrics.update(np.zeros((0, len(self.cells)), np.float32), empty, empty, 0.0)
        m = self.val_metrics.compute()  # gathered across ranks by torchmetrics
        self.val_metrics.reset()
        if m["n"] == 0:
            return
        for k, v in m["acc_km"].items():
            self.log(f"val/acc_{k}km", v)
        self.log("val/median_km", m["median_km"])
        self.log("val/geoguessr", m["geoguessr_mean"], prog_bar=True)
        self.log("val/loss", m["loss"])
        self.log("val/f1", m["f1"])

    # ------------------------------------------------------------------ staging
    def setup(self, stage: str) -> None:
        # Before DDP wraps the model: a frozen backbone must have no trainable parameters.
        dm = getattr(self.trainer, "datamodule", None)
        dm = dm.data if isinstance(dm, TrainDataModule) else dm
        if not isinstance(dm, FeatureDataModule):
            return
        dm.check_model(self.hparams["backbone"], _resolved(self.hparams["init_from"]))
        self._frozen_backbone = True
        self.model.backbone.requires_grad_(False)

    def on_train_epoch_start(self) -> None:
        if self._frozen_backbone:
            self.model.backbone.eval()
            return
        e = self.current_epoch
        ho, lb = self.hparams["head_only_epochs"], self.hparams["last_blocks_epochs"]
        bb = self.model.backbone
        if e < ho:
            trainable: list[nn.Module] = []
        elif e < ho + lb:
            trainable = last_layer_groups(bb, self.hparams["last_blocks"])
        else:
            trainable = [bb]
        for p in bb.parameters():
            p.requires_grad_(False)
        for m in trainable:
            for p in m.parameters():
                p.requires_grad_(True)
        # Frozen parts keep their BatchNorm statistics.
        bb.train(bool(trainable))
        if trainable and trainable[0] is not bb:
            bb.eval()
            for m in trainable:
                m.train()

    # ------------------------------------------------------------------ optimiser
    def configure_optimizers(self) -> Any:
        hp = self.hparams
        groups: dict[str, list[nn.Parameter]] = {"bb": [], "bb_nd": [], "head": [], "head_nd": []}
        for name, p in self.model.named_parameters():
            part = "bb" if name.startswith("backbone.") else "head"
            nd = p.ndim <= 1
            groups[part + ("_nd" if nd else "")].append(p)
        lr_bb = hp["lr"] * hp["backbone_lr_mult"]
        opt = torch.optim.AdamW(
            [
                {"params": groups["bb"], "lr": lr_bb, "weight_decay": hp["weight_decay"]},
                {"params": groups["bb_nd"], "lr": lr_bb, "weight_decay": 0.0},
                {"params": groups["head"], "lr": hp["lr"], "weight_decay": hp["weight_decay"]},
                {"params": groups["head_nd"], "lr": hp["lr"], "weight_decay": 0.0},
            ]
        )
        total = self._total_steps()
        warm, floor = hp["warmup_steps"], hp["min_lr_ratio"]

        def schedule(step: int) -> float:
            if step < warm:
                return float((step + 1) / warm)
            prog = min(1.0, (step - warm) / max(1, total - warm))
            return float(floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * prog)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def _total_steps(self) -> int:
        """Optimizer steps of the whole run (the cosine schedule's length)."""
        tr = self.trainer
        if tr.max_steps and tr.max_steps > 0:
            return int(tr.max_steps)
        dm = getattr(tr, "datamodule", None)
        if dm is not None and hasattr(dm, "batches_per_epoch") and tr.max_epochs:
            per_epoch = dm.batches_per_epoch(tr.world_size) // max(1, tr.accumulate_grad_batches)
            return max(1, int(per_epoch) * int(tr.max_epochs))
        return max(1, int(tr.estimated_stepping_batches))

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CKPT_KEY] = {
            "cells": self.cells.to_dict(polygons=False),
            "model": self.model.config(),
        }


def _resolved(path: str | None) -> str | None:
    return str(Path(path).resolve()) if path else None
