import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from img2loc.models.checkpoint import load_checkpoint
from img2loc.training.datamodule import ShardDataModule
from img2loc.training.task import GeoTask
from tests.training.conftest import tiny_args

EXE = str(Path(sys.executable).with_name("img2loc"))


def _train(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([EXE, "train", *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _metrics(run: Path) -> list[dict[str, str]]:
    files = sorted(run.glob("logs/version_*/metrics.csv"))
    return list(csv.DictReader(files[-1].open()))


def test_cli_trains_end_to_end(tiny_data, tmp_path):
    run = tmp_path / "run"
    _train(tiny_args(tiny_data, run, "--trainer.max_epochs", "1"))
    assert (run / "checkpoints" / "last.ckpt").exists()
    assert list((run / "checkpoints").glob("best-*.ckpt"))
    rows = [r for r in _metrics(run) if r.get("val/geoguessr")]
    assert rows and 0 <= float(rows[-1]["val/geoguessr"]) <= 5000
    assert {"val/acc_1km", "val/acc_2500km", "val/median_km", "val/f1"} <= set(rows[-1])
    assert (run / "config.yaml").exists() or list(run.rglob("config.yaml"))


def test_tiny_overfit_reaches_high_f1(tiny_data):
    torch.manual_seed(0)
    task = GeoTask(
        str(tiny_data["cells"]),
        backbone="test_efficientnet",
        pretrained=False,
        lr=0.01,
        dropout=0.0,
        pos_weight=1.0,
    )
    dm = ShardDataModule(str(tiny_data["shards"]), task.transforms, batch_size=16, num_workers=0)
    batch = next(iter(dm.val_dataloader()))
    opt = torch.optim.Adam(task.model.parameters(), lr=0.01)
    task.model.train()
    losses = []
    for _ in range(150):
        loss = task.compute_loss(task.model(batch["image"]), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    task.model.eval()
    with torch.no_grad():
        p = torch.sigmoid(task.model(batch["image"])).numpy() >= 0.5
    y = task.cells.multi_hot(batch["lat"].numpy(), batch["lon"].numpy()) > 0
    f1 = 2 * (p & y).sum() / (2 * (p & y).sum() + (p & ~y).sum() + (~p & y).sum())
    assert losses[-1] < 0.2 * losses[0]
    assert f1 > 0.95


KILLER = """
import os, signal, sys
from lightning.pytorch.callbacks import Callback
import img2loc.training.cli as tc

class KillAt(Callback):
    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step >= int(os.environ["KILL_AT"]):
            os.kill(os.getpid(), signal.SIGKILL)

_orig = tc._callbacks
tc._callbacks = lambda: [*_orig(), KillAt()]
tc.train(sys.argv[1:])
"""


def test_kill_9_then_resume_equals_uninterrupted(tiny_data, tmp_path):
    import os

    full, part = tmp_path / "full", tmp_path / "part"
    args = ["--trainer.max_epochs", "3"]
    _train(tiny_args(tiny_data, full, *args))
    # SIGKILL in the middle of the second epoch (5 steps per epoch), then resume.
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, *tiny_args(tiny_data, part, *args)],
        env={**os.environ, "KILL_AT": "7"},
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    _train([*tiny_args(tiny_data, part, *args), "--resume", "auto"])
    a = torch.load(full / "checkpoints" / "last.ckpt", weights_only=False)
    b = torch.load(part / "checkpoints" / "last.ckpt", weights_only=False)
    assert a["global_step"] == b["global_step"] > 0
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k


def test_checkpoint_alone_rebuilds_the_model(tiny_data, tmp_path):
    run = tmp_path / "run"
    _train(tiny_args(tiny_data, run, "--trainer.max_epochs", "1", "--model.head", "hierarchical"))
    ckpt = run / "checkpoints" / "last.ckpt"
    tiny_data["cells"].rename(tiny_data["cells"].with_suffix(".moved"))
    try:
        model, cells, pre, hp = load_checkpoint(ckpt)
    finally:
        tiny_data["cells"].with_suffix(".moved").rename(tiny_data["cells"])
    assert hp["head"] == "hierarchical" and pre.input_size == 160
    x = torch.randn(2, 3, 160, 160)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, len(cells))
    assert np.isfinite(out.numpy()).all()


@pytest.mark.skipif(sys.platform != "linux", reason="gloo DDP test runs on Linux")
def test_ddp_two_cpu_processes(tiny_data, tmp_path):
    run = tmp_path / "ddp"
    _train(
        tiny_args(
            tiny_data,
            run,
            "--trainer.max_epochs",
            "1",
            "--trainer.devices",
            "2",
            "--trainer.strategy",
            "ddp",
        ),
        timeout=600,
    )
    rows = [r for r in _metrics(run) if r.get("val/geoguessr")]
    assert rows and (run / "checkpoints" / "last.ckpt").exists()
