"""models/: the typed config builds the network; a checkpoint rebuilds it without training/."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from img2loc.geo.cells import CellSet
from img2loc.inference.preprocess import PreprocessConfig
from img2loc.models import ModelConfig, build_model, create_transforms, load_checkpoint
from img2loc.models.backbone import create_backbone, last_layer_groups
from img2loc.models.checkpoint import CKPT_KEY, model_state


@pytest.fixture(scope="module")
def cells() -> CellSet:
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(-60, 60, 200), rng.uniform(-180, 180, 200)
    return CellSet.build(lat, lon, min_samples=1, max_samples=30)


def _cfg(**kw: object) -> ModelConfig:
    return ModelConfig(backbone="test_efficientnet", pretrained=False, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("head", ["linear", "mlp", "hierarchical"])
def test_build_model_follows_the_config(cells, head):
    model = build_model(_cfg(head=head, hidden_dim=16), cells)
    assert model.head_type == head and model.num_cells == len(cells)
    if head == "mlp":
        assert model.head[1].out_features == 16
    with torch.no_grad():
        out = model.eval()(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, len(cells))


def test_config_refuses_unknown_head_and_wrong_cell_count(cells):
    with pytest.raises(ValueError, match="head must be one of"):
        _cfg(head="deep")
    with pytest.raises(ValueError, match="cells but the cell set"):
        build_model(_cfg(num_cells=len(cells) + 1), cells)


def test_stored_config_fetches_nothing():
    cfg = ModelConfig(pretrained=True, weights="w.pth").stored()
    assert cfg.pretrained is False and cfg.weights is None


def _checkpoint(model, cells, hp, ema_state=None) -> dict:
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    if ema_state is not None:
        state.update({f"ema.module.{k}": v for k, v in ema_state.items()})
    return {
        "state_dict": state,
        "hyper_parameters": hp,
        CKPT_KEY: {"cells": cells.to_dict(polygons=False), "model": model.config()},
    }


def test_load_checkpoint_rebuilds_identical_weights_and_outputs(cells, tmp_path):
    torch.manual_seed(1)
    model = build_model(_cfg(head="mlp", hidden_dim=8), cells).eval()
    path = tmp_path / "m.ckpt"
    hp = {"backbone": "test_efficientnet", "head": "mlp", "hidden_dim": 8}
    torch.save(_checkpoint(model, cells, hp), path)
    loaded, lcells, pre, got_hp = load_checkpoint(path)
    assert not loaded.training and got_hp["hidden_dim"] == 8
    assert len(lcells) == len(cells) and pre == model.preprocess
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_load_checkpoint_prefers_the_weight_average(cells, tmp_path):
    torch.manual_seed(2)
    model = build_model(_cfg(), cells)
    ema = {k: v + 1 if v.is_floating_point() else v for k, v in model.state_dict().items()}
    path = tmp_path / "ema.ckpt"
    torch.save(_checkpoint(model, cells, {"backbone": "test_efficientnet"}, ema), path)
    w = "head.1.weight"
    assert torch.equal(load_checkpoint(path)[0].state_dict()[w], ema[w])
    assert torch.equal(
        load_checkpoint(path, use_ema=False)[0].state_dict()[w], model.state_dict()[w]
    )


def test_old_checkpoint_without_stored_model_config_uses_hyperparameters(cells, tmp_path):
    model = build_model(_cfg(head="hierarchical"), cells)
    ckpt = _checkpoint(model, cells, {"backbone": "test_efficientnet", "head": "hierarchical"})
    del ckpt[CKPT_KEY]["model"]
    torch.save(ckpt, tmp_path / "old.ckpt")
    loaded = load_checkpoint(tmp_path / "old.ckpt")[0]
    assert loaded.head_type == "hierarchical"


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "x.ckpt")
    with pytest.raises(ValueError, match="not an img2loc training checkpoint"):
        load_checkpoint(tmp_path / "x.ckpt")


def test_model_state_picks_prefix():
    sd = {"model.a": 1, "ema.module.a": 2, "pos_weight": 3}
    assert model_state(sd) == {"a": 2}
    assert model_state(sd, use_ema=False) == {"a": 1}


def test_last_layer_groups_are_the_last_stages_and_what_follows():
    bb, _ = create_backbone("test_efficientnet", pretrained=False)
    names = {id(m): n for n, m in bb.named_modules()}
    got = [names[id(m)] for m in last_layer_groups(bb, 2)]
    last = len(bb.blocks)
    assert got == [f"blocks.{last - 2}", f"blocks.{last - 1}", "conv_head", "bn2"]
    assert last_layer_groups(bb, 0) == []


def test_transforms_follow_the_size_schedule():
    pre = PreprocessConfig(input_size=32, resize_size=40)
    t = create_transforms(pre, [16, 24])
    # Epoch 0 at the model's size, then the schedule (the shipped models' offset).
    assert [t.train_size(e) for e in range(5)] == [32, 16, 24, 24, 24]
    assert create_transforms(pre, [16, 24], random_sizes=True).train_size(1) == 32
    assert create_transforms(pre).train_size(5) == 32


def test_models_never_import_training_or_lightning():
    code = (
        "import sys, img2loc.models, img2loc.models.embed, img2loc.export.exporter, "
        "img2loc.evaluation.models; "
        "bad = [m for m in sys.modules if m.startswith(('img2loc.training', 'lightning'))]; "
        "print(bad); sys.exit(bool(bad))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
