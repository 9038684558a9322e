"""`img2loc distill` on the tiny model: a student learns teachers' cell probabilities."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch

from img2loc.data.cells import write_cells
from img2loc.data.manifest import read_manifest
from img2loc.data.sources.table import import_table
from img2loc.geo import CellSet
from img2loc.inference.predictor import Predictor
from img2loc.models.checkpoint import CKPT_KEY, load_checkpoint
from img2loc.models.embed import embed_shards
from img2loc.training.datamodule import FeatureDataModule, ShardDataModule
from img2loc.training.distill import DistillTask, Teachers, distill_targets
from img2loc.training.precheck import TrainSetupError
from img2loc.training.task import GeoTask
from tests.training.conftest import tiny_args

EXE = str(Path(sys.executable).with_name("img2loc"))


def _distill(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, "distill", *args], capture_output=True, text=True, timeout=timeout)


def _variant(src: Path, dst: Path, seed: int, head: float = 0.0, backbone: float = 0.0) -> Path:
    """A copy of a checkpoint with its head bias (and optionally its backbone) perturbed:
    a teacher whose probabilities differ from the labels and from ``src``'s."""
    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    g = torch.Generator().manual_seed(seed)
    sd = ckpt["state_dict"]
    bias = sd["model.head.1.bias"]
    sd["model.head.1.bias"] = bias + head * torch.randn(bias.shape, generator=g)
    if backbone:
        k = next(k for k, v in sd.items() if k.startswith("model.backbone.") and v.ndim == 4)
        sd[k] = sd[k] + backbone * torch.randn(sd[k].shape, generator=g)
    torch.save(ckpt, dst)
    return dst


@pytest.fixture(scope="module")
def sharp(tiny_ckpt, tmp_path_factory) -> Path:
    return _variant(tiny_ckpt, tmp_path_factory.mktemp("teachers") / "sharp.ckpt", 1, head=3.0)


def _batch(tiny_data: dict[str, Path], task: DistillTask) -> dict[str, Any]:
    dm = ShardDataModule(str(tiny_data["shards"]), task.transforms, batch_size=16, num_workers=0)
    return next(iter(dm.val_dataloader()))


def _task(tiny_data: dict[str, Path], teachers: list[Path], **kw: Any) -> DistillTask:
    torch.manual_seed(0)
    return DistillTask(
        str(tiny_data["cells"]), [str(t) for t in teachers], backbone="test_efficientnet",
        pretrained=False, lr=0.01, warmup_steps=2, **kw,
    )  # fmt: skip


def test_targets_make_the_teacher_the_optimum():
    p = torch.rand(4, 30)
    w = torch.linspace(1.0, 150.0, 30)
    q = distill_targets(p, torch.zeros_like(p), w)
    # BCE with positive weight w against q is minimised at sigmoid(z) = w q / (w q + 1 - q).
    torch.testing.assert_close(w * q / (w * q + 1 - q), p)
    hard = (p > 0.5).float()
    torch.testing.assert_close(distill_targets(hard, hard, w), hard)  # GeoTask's loss
    labels = torch.ones_like(p)
    torch.testing.assert_close(distill_targets(p, labels, w, alpha=1.0), labels)


def test_ensemble_of_two_averages(tiny_data, tiny_ckpt, sharp, tmp_path):
    cells = CellSet.from_dict(load_checkpoint(tiny_ckpt)[1].to_dict(polygons=False))
    other = _variant(sharp, tmp_path / "other.ckpt", 2, backbone=0.5)
    task = _task(tiny_data, [tiny_ckpt])
    batch, pre = _batch(tiny_data, task), task.model.preprocess
    a, b, c = (Teachers([str(t)], cells).probs(batch, pre) for t in (tiny_ckpt, sharp, other))
    shared = Teachers([str(tiny_ckpt), str(sharp)], cells)
    assert len(shared.groups) == 1  # one backbone pass for both heads
    torch.testing.assert_close(shared.probs(batch, pre), (a + b) / 2)
    apart = Teachers([str(sharp), str(other)], cells)
    assert len(apart.groups) == 2
    torch.testing.assert_close(apart.probs(batch, pre), (b + c) / 2)
    assert not torch.allclose(b, c, atol=1e-3)
    model = load_checkpoint(tiny_ckpt)[0]
    with torch.no_grad():
        soft = torch.sigmoid(model(batch["image"]) / 2.0)
    torch.testing.assert_close(Teachers([str(tiny_ckpt)], cells, 2.0).probs(batch, pre), soft)


def test_student_moves_towards_the_teacher(tiny_data, sharp):
    task = _task(tiny_data, [sharp], dropout=0.0)
    batch = _batch(tiny_data, task)
    teacher = task.teachers.probs(batch, task.model.preprocess)
    labels = torch.from_numpy(task.cells.multi_hot(batch["lat"].numpy(), batch["lon"].numpy()))
    assert (teacher - labels).abs().mean() > 0.1  # the teacher is not the labels

    def gap() -> tuple[float, float]:
        task.model.eval()
        with torch.no_grad():
            p = torch.sigmoid(task.model(batch["image"]))
        task.model.train()
        return float((p - teacher).abs().mean()), float((p - labels).abs().mean())

    before, _ = gap()
    opt = torch.optim.Adam(task.model.parameters(), lr=0.01)
    for _ in range(150):
        loss = task.compute_loss(task.model(batch["image"]), {**batch, "teacher": teacher})
        opt.zero_grad()
        loss.backward()
        opt.step()
    after, to_labels = gap()
    assert after < 0.25 * before, (before, after)
    assert after < 0.5 * to_labels  # it learned the teacher's distribution, not the labels


def test_cli_distills_end_to_end_and_exports(tiny_data, tiny_ckpt, sharp, tmp_path):
    run = tmp_path / "run"
    args = tiny_args(tiny_data, run, "--trainer.max_epochs", "1", "--model.ema_decay", "0.9")
    proc = _distill("--teacher", str(tiny_ckpt), "--teacher", str(sharp), *args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ckpt = run / "checkpoints" / "last.ckpt"
    raw = torch.load(ckpt, map_location="cpu", weights_only=True)
    teacher_keys = torch.load(tiny_ckpt, map_location="cpu", weights_only=True)["state_dict"]
    # The student's weights and their average, nothing of the teachers'.
    keys = set(raw["state_dict"])
    assert keys == set(teacher_keys) | {k.replace("model.", "ema.module.", 1) for k in teacher_keys}
    assert raw[CKPT_KEY]["model"]["backbone"] == "test_efficientnet"
    assert raw["hyper_parameters"]["teachers"] == [str(tiny_ckpt), str(sharp)]
    assert list((run / "checkpoints").glob("best-*.ckpt"))
    # `--resume auto` continues the run, teachers reloaded from their paths.
    teach = ["--teacher", str(tiny_ckpt), "--teacher", str(sharp)]
    more = _distill(*teach, *args, "--trainer.max_epochs", "2", "--resume", "auto")
    assert more.returncode == 0, more.stdout[-3000:] + more.stderr[-3000:]
    resumed = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert resumed["epoch"] == 1 and resumed["global_step"] == 2 * raw["global_step"] > 0

    out = tmp_path / "model"
    exp = subprocess.run(
        [EXE, "export", str(ckpt), "-o", str(out), "--data", str(tiny_data["shards"])],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert exp.returncode == 0, exp.stdout[-3000:] + exp.stderr[-3000:]
    images = list(import_table(tiny_data["root"] / "set" / "locations.csv")[0]["image"][:2])
    probs = Predictor.load(out).probabilities(images)
    assert probs.shape == (2, len(load_checkpoint(ckpt)[1])) and np.isfinite(probs).all()


def test_features_mode_and_a_teacher_of_other_features(tiny_data, tiny_ckpt, sharp, tmp_path):
    feats = tmp_path / "feats"
    embed_shards(tiny_data["shards"], feats, checkpoint=str(tiny_ckpt), progress=False)
    moved = _variant(sharp, tmp_path / "moved.ckpt", 3, backbone=0.5)

    def fit(teacher: Path) -> DistillTask:
        task = _task(tiny_data, [teacher], init_from=str(tiny_ckpt))
        L.Trainer(
            max_epochs=1, accelerator="cpu", logger=False, enable_progress_bar=False,
            enable_checkpointing=False, enable_model_summary=False, default_root_dir=tmp_path,
        ).fit(task, datamodule=FeatureDataModule(str(feats), batch_size=8))  # fmt: skip
        return task

    start = load_checkpoint(tiny_ckpt)[0].head.state_dict()
    task = fit(sharp)
    assert not torch.equal(task.model.head.state_dict()["1.bias"], start["1.bias"])
    with pytest.raises(TrainSetupError, match=r"did not compute --data\.features"):
        fit(moved)


def _one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    # One error line, no traceback (Lightning may log "Seed set to 0" before it).
    lines = [x for x in proc.stderr.strip().splitlines() if x != "Seed set to 0"]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    assert all(w in lines[0] for w in words), lines[0]


def test_cell_mismatch_is_one_line(tiny_data, tiny_ckpt, tmp_path):
    df = read_manifest(tiny_data["manifest"])
    cells = CellSet.build(df["latitude"], df["longitude"], min_samples=1, max_samples=1)
    assert len(cells) != len(load_checkpoint(tiny_ckpt)[1])
    write_cells(cells, tmp_path / "other.json")
    args = tiny_args(tiny_data, tmp_path / "run", "--model.cells", str(tmp_path / "other.json"))
    proc = _distill("--teacher", str(tiny_ckpt), *args)
    _one_line_error(proc, str(tiny_ckpt), "cells", "cell set the teacher was trained with")


def test_bad_teacher_is_one_line(tiny_data, tmp_path):
    args = tiny_args(tiny_data, tmp_path / "run")
    _one_line_error(_distill("--teacher", str(tmp_path / "nope.ckpt"), *args), "no such file")
    _one_line_error(_distill(*args), "no teacher", "--teacher")
    bad = _distill("--teacher", str(tiny_data["cells"]), *args)
    _one_line_error(bad, str(tiny_data["cells"]), "not a checkpoint")


def test_alpha_one_is_plain_training_and_bad_settings_are_refused(tiny_data, tiny_ckpt):
    task = _task(tiny_data, [tiny_ckpt], alpha=1.0)
    batch = _batch(tiny_data, task)
    logits = torch.randn(len(batch["lat"]), len(task.cells), generator=torch.Generator())
    mixed = task.compute_loss(logits, {**batch, "teacher": torch.rand_like(logits)})
    torch.testing.assert_close(mixed, GeoTask.compute_loss(task, logits, batch))
    half = _task(tiny_data, [tiny_ckpt], alpha=0.5)
    assert not torch.allclose(
        half.compute_loss(logits, {**batch, "teacher": torch.rand_like(logits)}), mixed
    )
    with pytest.raises(ValueError, match="alpha"):
        _task(tiny_data, [tiny_ckpt], alpha=1.5)
    with pytest.raises(ValueError, match=r"drop --model\.loss ce"):
        _task(tiny_data, [tiny_ckpt], loss="ce")
    with pytest.raises(ValueError, match="temperature"):
        _task(tiny_data, [tiny_ckpt], temperature=0.0)
