import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from img2loc.data.features import load_feature_info, load_features
from img2loc.models.checkpoint import load_checkpoint
from tests.training.conftest import tiny_args

EXE = str(Path(sys.executable).with_name("img2loc"))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([EXE, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_embed_then_train_head_on_features_then_fine_tune(tiny_data, tiny_ckpt, tmp_path):
    feats = tmp_path / "feats"
    _run("embed", str(tiny_data["shards"]), "-o", str(feats), "--checkpoint", str(tiny_ckpt))
    info = load_feature_info(feats)
    assert info["splits"]["train"]["n"] == 36 and info["splits"]["val"]["n"] == 12
    train = load_features(feats, "train")
    assert train["features"].shape[0] == 36 and train["features_flip"].shape == (
        train["features"].shape
    )
    # The stored features are the checkpoint backbone's embeddings of the eval transform.
    model, _, _, _ = load_checkpoint(tiny_ckpt)
    assert train["features"].shape[1] == model.num_features

    # Resume: a second run recomputes nothing (files untouched) and gives the same info.
    mtimes = {p.name: p.stat().st_mtime_ns for p in feats.glob("*.npz")}
    _run("embed", str(tiny_data["shards"]), "-o", str(feats), "--checkpoint", str(tiny_ckpt))
    assert {p.name: p.stat().st_mtime_ns for p in feats.glob("*.npz")} == mtimes

    head = tmp_path / "head"
    args = [a for a in tiny_args(tiny_data, head, "--trainer.max_epochs", "3")]
    i = args.index("--data.shards")
    args[i : i + 2] = ["--data.features", str(feats)]
    _run("train", *args, "--model.init_from", str(tiny_ckpt))
    ckpt = head / "checkpoints" / "last.ckpt"
    a = torch.load(tiny_ckpt, weights_only=False)["state_dict"]
    b = torch.load(ckpt, weights_only=False)["state_dict"]
    bb = [k for k in a if k.startswith("model.backbone.")]
    assert bb and all(torch.equal(a[k], b[k]) for k in bb), "frozen backbone changed"
    assert not torch.equal(a["model.head.1.weight"], b["model.head.1.weight"])

    # Fine-tuning on images starts from the feature-trained head.
    fine = tmp_path / "fine"
    _run(
        "train",
        *tiny_args(tiny_data, fine, "--trainer.max_epochs", "1"),
        "--model.init_from",
        str(ckpt),
    )
    m, cells, _, _ = load_checkpoint(fine / "checkpoints" / "last.ckpt")
    with torch.no_grad():
        out = m(torch.randn(1, 3, 160, 160))
    assert out.shape == (1, len(cells)) and np.isfinite(out.numpy()).all()


def test_features_of_another_backbone_are_refused(tiny_data, tiny_ckpt, tmp_path):
    feats = tmp_path / "feats"
    _run(
        "embed",
        str(tiny_data["shards"]),
        "-o",
        str(feats),
        "--checkpoint",
        str(tiny_ckpt),
        "--split",
        "val",
    )
    args = tiny_args(tiny_data, tmp_path / "r", "--trainer.max_epochs", "1")
    i = args.index("--data.shards")
    args[i : i + 2] = ["--data.features", str(feats)]
    proc = subprocess.run([EXE, "train", *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "train" in proc.stderr  # no train split: it says which splits exist


KILL_AFTER_FIRST_FILE = """
import os, sys
import img2loc.models.embed as embed
from img2loc.cli import main

_orig = embed._embed_one

def _once(*args, **kw):
    n = _orig(*args, **kw)
    os.kill(os.getpid(), 9)  # SIGKILL right after the first feature file is in place
    return n

embed._embed_one = _once
sys.argv = ["img2loc", *sys.argv[1:]]
main()
"""


def test_embed_kill_9_then_rerun_equals_uninterrupted(tiny_data, tiny_ckpt, tmp_path):
    args = [str(tiny_data["shards"]), "--checkpoint", str(tiny_ckpt), "--batch-size", "8"]
    full, part = tmp_path / "full", tmp_path / "part"
    _run("embed", args[0], "-o", str(full), *args[1:])
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_FIRST_FILE, "embed", args[0], "-o", str(part), *args[1:]],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert len(list(part.glob("*.npz"))) == 1 and not (part / "_info.json").exists()
    (part / ".val-000000.npz.x1y2.tmp.npz").write_bytes(b"half")  # as a kill mid-write leaves
    _run("embed", args[0], "-o", str(part), *args[1:])
    assert load_feature_info(part)["splits"] == load_feature_info(full)["splits"]
    assert sorted(p.name for p in part.iterdir()) == sorted(p.name for p in full.iterdir())
    for split in ("train", "val"):
        a, b = load_features(full, split), load_features(part, split)
        assert list(a["key"]) == list(b["key"])
        np.testing.assert_allclose(a["features"], b["features"], atol=1e-3)


def test_embed_with_a_given_network(tiny_data, tmp_path):
    """``network=`` replaces the backbone: its output is stored, under its preprocessing."""
    from torch import nn

    from img2loc.inference.preprocess import PreprocessConfig
    from img2loc.models.embed import embed_shards

    class MeanRGB(nn.Module):  # per-channel means: checkable by hand
        num_features = 3

        def forward(self, x):
            return x.mean((2, 3))

    pre = PreprocessConfig(input_size=32, resize_size=32)
    info = embed_shards(
        tiny_data["shards"], tmp_path / "f", network=(MeanRGB(), pre, "mean-rgb"), progress=False
    )
    assert info["backbone"] == "mean-rgb" and info["preprocess"]["input_size"] == 32
    val = load_features(tmp_path / "f", "val")
    assert val["features"].shape == (12, 3)
    # The mirror image has the same channel means.
    np.testing.assert_allclose(val["features_flip"], val["features"], atol=2e-3)
    assert np.abs(val["features"]).max() <= 1.0 and val["features"].std() > 0
