"""Tiny CPU runs, with a plain Lightning Trainer, of every option a shipped config uses:
EMA, label smoothing, staged unfreezing, the size schedule, random sizes, ``ce``, ``mlp``
and training a head on features."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch

from img2loc.models.backbone import create_backbone
from img2loc.models.checkpoint import load_checkpoint
from img2loc.models.embed import embed_shards
from img2loc.training.datamodule import FeatureDataModule, ShardDataModule, TrainDataModule
from img2loc.training.task import GeoTask


class Record(L.Callback):
    """What each epoch trained: input sizes, and whether parts of the backbone learned."""

    def __init__(self) -> None:
        self.sizes: dict[int, set[int]] = {}
        self.trainable: dict[int, set[str]] = {}
        self.hook: Any = None

    def on_train_start(self, trainer: L.Trainer, task: Any) -> None:
        def see(_m: Any, args: tuple[torch.Tensor, ...]) -> None:
            if task.training:
                self.sizes.setdefault(trainer.current_epoch, set()).add(args[0].shape[-1])

        self.hook = task.model.backbone.register_forward_pre_hook(see)

    def on_train_epoch_start(self, trainer: L.Trainer, task: Any) -> None:
        self.trainable[trainer.current_epoch] = set()

    def on_train_batch_end(self, trainer: L.Trainer, task: Any, *args: Any) -> None:
        names = {n for n, p in task.model.named_parameters() if p.requires_grad}
        self.trainable[trainer.current_epoch] |= names

    def parts(self, epoch: int) -> set[str]:
        return {n.split(".")[0] for n in self.trainable[epoch]}


def _fit(task: GeoTask, dm: L.LightningDataModule, root: Path, epochs: int) -> Record:
    rec = Record()
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        callbacks=[rec],
    )
    trainer.fit(task, datamodule=dm)
    trainer.save_checkpoint(root / "last.ckpt")
    return rec


def _task(tiny_data: dict[str, Path], **kw: Any) -> GeoTask:
    torch.manual_seed(0)
    return GeoTask(
        str(tiny_data["cells"]), backbone="test_efficientnet", pretrained=False, lr=0.01,
        warmup_steps=2, **kw,
    )  # fmt: skip


def _shards(tiny_data: dict[str, Path], task: GeoTask) -> ShardDataModule:
    return ShardDataModule(
        str(tiny_data["shards"]), task.transforms, batch_size=8, num_workers=0, shuffle_buffer=32
    )


def test_staged_ema_smoothing_mlp_and_size_schedule(tiny_data, tmp_path):
    task = _task(
        tiny_data,
        head="mlp",
        hidden_dim=16,
        ema_decay=0.9,
        label_smoothing_km=300.0,
        head_only_epochs=1,
        last_blocks_epochs=1,
        last_blocks=1,
        train_sizes=[128, 96],
    )
    start = {k: v.clone() for k, v in task.model.state_dict().items()}
    rec = _fit(task, _shards(tiny_data, task), tmp_path, epochs=3)
    # Epoch 0 at the model's own size, then the schedule (see Transforms.train_size).
    assert rec.sizes == {0: {160}, 1: {128}, 2: {96}}
    assert rec.parts(0) == {"head"}
    # Epoch 1: the last layer group (the last stage and the layers after it) learns.
    last = f"backbone.blocks.{len(task.model.backbone.blocks) - 1}."
    group = {n for n in rec.trainable[1] if n.startswith("backbone.")}
    assert group and all(
        n.startswith((last, "backbone.conv_head.", "backbone.bn2.")) for n in group
    )
    assert rec.parts(2) == {"head", "backbone"} and "backbone.conv_stem.weight" in rec.trainable[2]
    model = task.model.state_dict()
    stem = "backbone.conv_stem.weight"
    assert not torch.equal(model["head.1.weight"], start["head.1.weight"])
    assert not torch.equal(model[stem], start[stem])  # epoch 2 trains everything
    ema = task.ema.module.state_dict()
    assert not torch.equal(ema["head.1.weight"], model["head.1.weight"])
    loaded, *_ = load_checkpoint(tmp_path / "last.ckpt")
    assert torch.equal(loaded.state_dict()["head.1.weight"], ema["head.1.weight"])
    assert loaded.head_type == "mlp"
    smooth = task.targets(torch.tensor([10.0]), torch.tensor([20.0]))
    assert ((smooth > 0) & (smooth < 1)).any()  # smoothing spreads weight to near cells


def test_random_sizes_with_ce_loss(tiny_data, tmp_path):
    task = _task(tiny_data, loss="ce", train_sizes=[96, 128], random_sizes=True)
    rec = _fit(task, _shards(tiny_data, task), tmp_path, epochs=1)
    seen = set().union(*rec.sizes.values())
    assert seen <= {96, 128} and len(seen) == 2  # drawn per batch, on the device
    assert all(np.isfinite(v.numpy()).all() for v in task.model.state_dict().values())


def test_head_on_features_freezes_the_backbone(tiny_data, tmp_path):
    net, pre = create_backbone("test_efficientnet", pretrained=False)
    feats = tmp_path / "feats"
    embed_shards(
        tiny_data["shards"], feats, network=(net, pre, "test_efficientnet"), progress=False
    )
    task = _task(tiny_data)
    start = {k: v.clone() for k, v in task.model.state_dict().items()}
    rec = _fit(task, FeatureDataModule(str(feats), batch_size=8), tmp_path, epochs=2)
    assert rec.parts(0) == rec.parts(1) == {"head"}
    after = task.model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in start.items() if k.startswith("backbone."))
    assert not torch.equal(after["head.1.weight"], start["head.1.weight"])


def test_features_of_another_backbone_are_refused(tiny_data, tmp_path):
    net, pre = create_backbone("test_efficientnet", pretrained=False)
    feats = tmp_path / "feats"
    embed_shards(tiny_data["shards"], feats, network=(net, pre, "other_net"), progress=False)
    task = _task(tiny_data)
    with pytest.raises(ValueError, match="come from backbone 'other_net'"):
        _fit(task, TrainDataModule(features=str(feats), batch_size=8), tmp_path, epochs=1)
