"""Frozen-backbone variants: resolution, intermediate-stage pooling, augmentation, scored on dev.

    python scripts/feature_variants.py --shards build/default/shards \
        --cells build/default/cells.json --work build/default/variants \
        -o build/default/variants.md
    python scripts/feature_variants.py ... --augment -o build/default/augment.md

Does a frozen EfficientNet-Lite0 hold more about place than its last layer's pooled
1,280 features at 224 px? Each resolution is embedded once (``embed_shards``, flip
included, resumable) with the last layer's features followed by the global averages of
blocks 2-6 (40 + 80 + 112 + 192 + 320 channels: colour and texture statistics that the
last layer may have discarded). Heads are then trained with the project's own
``GeoTask`` on column subsets, behind a non-affine BatchNorm (the usual linear-probe
standardisation, foldable into the linear layer), and scored like
``scripts/head_experiments.py``: score-optimal decoding, one photo and the views of a
place combined. About 25 minutes on 2 cores; ``docs/default-model.md`` quotes the table.

``--augment`` instead compares augmentation strength and multi-resolution for heads on
frozen features: the two stored views of each training photo (normally the photo and
its mirror image) become two draws of the training augmentation (``AugmentConfig``,
the same transform as fine-tuning) or the photo at two other input sizes; the head
draws one per photo per epoch. Dev photos keep the model's preprocessing. About 25
minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import webdataset as wds
from torch import nn

from head_experiments import BASE, HEADER, head_probs, row, score
from img2loc.data.features import INFO, load_features
from img2loc.data.shard_reader import decode_sample, split_urls
from img2loc.files import atomic_path, atomic_write_text
from img2loc.inference.preprocess import PreprocessConfig, preprocess
from img2loc.models.backbone import create_backbone
from img2loc.models.embed import embed_shards
from img2loc.models.transforms import AugmentConfig, train_transform
from img2loc.training.datamodule import FeatureDataModule
from img2loc.training.task import GeoTask

STAGES = (2, 3, 4, 5, 6)  # blocks whose outputs are pooled (EfficientNet-Lite0 has 0-6)
FINAL = 1280


class StagePooling(nn.Module):
    """Lite0 -> [pooled last layer | pooled output of each block in STAGES]."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.num_features = FINAL + sum(net.blocks[i][-1].conv_pwl.out_channels for i in STAGES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        x = n.bn1(n.conv_stem(x))
        pooled = []
        for i, block in enumerate(n.blocks):
            x = block(x)
            if i in STAGES:
                pooled.append(x.mean((2, 3)))
        x = n.bn2(n.conv_head(x))
        return torch.cat([x.mean((2, 3)), *pooled], 1)


def embed(shards: str, out: Path, size: int, resize: int) -> None:
    net, pre = create_backbone("tf_efficientnet_lite0", pretrained=True)
    pre = type(pre).from_dict({**pre.to_dict(), "input_size": size, "resize_size": resize})
    # Named like the backbone so GeoTask accepts the folder; the columns say what is what.
    embed_shards(shards, out, network=(StagePooling(net).eval(), pre, "tf_efficientnet_lite0"))


def _npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path, suffix=".tmp.npz") as tmp:  # a killed run leaves no half file
        np.savez(tmp, **arrays)


def columns(src: Path, dest: Path, stop: int) -> Path:
    """A feature folder holding the first ``stop`` columns of ``src`` (same files, same info)."""
    dest.mkdir(parents=True, exist_ok=True)
    info = json.loads((src / INFO).read_text())
    for split in info["splits"].values():
        for name in split["files"]:
            if not (dest / name).exists():
                arrays = _npz(src / name)
                for k in ("features", "features_flip"):
                    arrays[k] = arrays[k][:, :stop]
                _save(dest / name, arrays)
    atomic_write_text(dest / INFO, json.dumps(info))
    return dest


def two_views(
    shards: str, base: Path, out: Path, aug: AugmentConfig | None, sizes: tuple[int, int]
) -> Path:
    """``base`` (a plain feature folder) with each training photo's two views replaced.

    With ``aug`` both views are draws of the training augmentation at ``sizes``; without,
    they are the eval preprocessing at ``sizes`` (multi-resolution).
    """
    info = json.loads((base / INFO).read_text())
    out.mkdir(parents=True, exist_ok=True)
    net, pre = create_backbone("tf_efficientnet_lite0", pretrained=True)
    net = net.eval()
    if aug is not None:
        tfs = [train_transform(s, pre, aug) for s in sizes]
    else:
        cfgs = [
            PreprocessConfig.from_dict(
                {**pre.to_dict(), "input_size": s, "resize_size": s * 8 // 7}
            )
            for s in sizes
        ]
    torch.manual_seed(0)  # augmentation draws
    for url, name in zip(
        split_urls(shards, "train")[0], info["splits"]["train"]["files"], strict=True
    ):
        if (out / name).exists():
            continue
        arrays = _npz(base / name)
        samples = list(wds.DataPipeline(wds.SimpleShardList([url]), wds.tarfile_to_samples()))
        decoded = [decode_sample(x) for x in samples]
        images = [im for im, _ in decoded]
        # Same photos in the same order as the plain features (embed skips nothing here).
        assert [str(m["key"]) for _, m in decoded] == arrays["key"].tolist(), url
        for key, v in (("features", 0), ("features_flip", 1)):
            feats = []
            for i in range(0, len(images), 64):
                chunk = images[i : i + 64]
                if aug is not None:
                    x = torch.stack([tfs[v](im) for im in chunk])
                else:
                    x = torch.from_numpy(np.stack([preprocess(im, cfgs[v]) for im in chunk]))
                with torch.inference_mode():
                    feats.append(net(x).numpy().astype(np.float16))
            arrays[key] = np.concatenate(feats)
        _save(out / name, arrays)
    for split, entry in info["splits"].items():
        if split != "train":
            for name in entry["files"]:
                shutil.copyfile(base / name, out / name)
    atomic_write_text(out / INFO, json.dumps(info))
    return out


def resolution_grid(args: argparse.Namespace) -> list[tuple[str, Path, bool]]:
    grid = []
    for size, resize, label in [(224, 256, "224 px centre crop"), (256, 256, "256 px whole frame")]:
        full = args.work / f"stages-{size}"
        embed(args.shards, full, size, resize)
        final = columns(full, args.work / f"final-{size}", FINAL)
        grid += [
            (f"{label}, last layer, plain probe", final, False),
            (f"{label}, last layer, standardised", final, True),
            (f"{label}, last layer + blocks 2-6, standardised", full, True),
        ]
    return grid


def augment_grid(args: argparse.Namespace) -> list[tuple[str, Path, bool]]:
    embed(args.shards, args.work / "stages-224", 224, 256)
    base = columns(args.work / "stages-224", args.work / "final-224", FINAL)
    strong = AugmentConfig(scale_min=0.15, brightness=0.4, contrast=0.4, saturation=0.3, hue=0.05)
    return [
        ("photo + mirror image (the shipped recipe)", base, False),
        (
            "2 draws of the fine-tuning augmentation (crop from 35%, jitter 0.2)",
            two_views(args.shards, base, args.work / "aug-default", AugmentConfig(), (224, 224)),
            False,
        ),
        (
            "2 draws of a stronger one (crop from 15%, jitter 0.4, hue 0.05)",
            two_views(args.shards, base, args.work / "aug-strong", strong, (224, 224)),
            False,
        ),
        (
            "multi-resolution: the photo at 192 and 256 px",
            two_views(args.shards, base, args.work / "res-192-256", None, (192, 256)),
            False,
        ),
    ]


def train_head(features: Path, cells: str, kw: dict[str, Any], standardise: bool) -> GeoTask:
    """``head_experiments.train_head`` with the head sized to the folder's features."""
    L.seed_everything(0, verbose=False)
    task = GeoTask(cells=cells, seed=0, **{**BASE, **kw})
    dim = load_features(features, "val")["features"].shape[1]
    layers: list[nn.Module] = [nn.BatchNorm1d(dim, affine=False)] if standardise else []
    task.model.head = nn.Sequential(
        *layers, nn.Dropout(BASE["dropout"]), nn.Linear(dim, len(task.cells))
    )
    dm = FeatureDataModule(str(features), batch_size=256)
    trainer = L.Trainer(
        max_epochs=40,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(task, datamodule=dm)
    return task


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--shards", required=True)
    ap.add_argument("--cells", required=True)
    ap.add_argument("--work", type=Path, required=True, help="feature folders (kept, resumable)")
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--augment", action="store_true", help="augmentation/resolution grid")
    args = ap.parse_args()
    torch.set_num_threads(2)
    grid = augment_grid(args) if args.augment else resolution_grid(args)
    results = []
    for name, folder, standardise in grid:
        val = load_features(folder, "val")
        for smooth in (0.0, 300.0):
            task = train_head(folder, args.cells, {"label_smoothing_km": smooth}, standardise)
            m = score(head_probs(task, val["features"]), task.cells, val, "score")
            label = f"{name}{', smoothing 300 km' if smooth else ''}"
            results.append((label, m))
            print(row(label, m["1 view"]), row("... views", m["views"]), flush=True)
    out = ["### 1 view", "", HEADER, *[row(n, m["1 view"]) for n, m in results], ""]
    out += ["### Views of a place combined", "", HEADER]
    out += [row(n, m["views"]) for n, m in results]
    text = "\n".join(out) + "\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
