"""The loader builds the loss's targets: the same tensors the task would build."""

from __future__ import annotations

import numpy as np
import torch

from img2loc.data.cells import read_cells
from img2loc.training.datamodule import ShardDataModule
from img2loc.training.targets import CellTargets
from img2loc.training.task import GeoTask


def test_targets_multi_hot_smoothed_and_ce(tiny_data):
    cells = read_cells(tiny_data["cells"])
    lat, lon = np.array([10.0, -20.0]), np.array([30.0, 40.0])
    hot = CellTargets(cells)(lat, lon)
    assert torch.equal(hot, torch.from_numpy(cells.multi_hot(lat, lon)))
    smooth = CellTargets(cells, label_smoothing_km=500.0)(lat, lon)
    assert (smooth >= hot).all() and (smooth > hot).any()
    ce = CellTargets(cells, loss="ce")(lat, lon)
    assert ce.tolist() == cells.nearest(lat, lon).tolist()


def test_loader_batches_carry_the_task_targets(tiny_data):
    task = GeoTask(
        str(tiny_data["cells"]),
        backbone="test_efficientnet",
        pretrained=False,
        label_smoothing_km=300.0,
    )
    dm = ShardDataModule(
        str(tiny_data["shards"]), task.transforms, task.cell_targets, batch_size=8, num_workers=0
    )
    batch = next(iter(dm.val_dataloader()))
    assert torch.equal(batch["target"], task.targets(batch["lat"], batch["lon"]))
    logits = torch.zeros(batch["lat"].shape[0], len(task.cells))
    without = {k: v for k, v in batch.items() if k != "target"}
    assert torch.equal(task.compute_loss(logits, batch), task.compute_loss(logits, without))
