"""`img2loc embed`: frozen-backbone features of a shard set, computed once.

One ``.npz`` per input shard (``train-000000.tar`` -> ``train-000000.npz``), written
atomically, so an interrupted run resumes where it stopped. Each file holds
``features`` (N x D, float16), ``features_flip`` (horizontally flipped views, with
``flip=True``), ``latitude``, ``longitude``, ``key``, ``location_id`` and ``source``.
``_info.json`` records the backbone (or checkpoint) and the preprocessing, so a head
trained on these features is only ever combined with the backbone that made them.

On a CPU this turns hours of fine-tuning into minutes: the backbone runs once per
image, then heads train from the features in seconds (``--data.features``).
"""

from __future__ import annotations

import json
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from img2loc.data.features import INFO
from img2loc.data.shard_reader import decode_sample, read_info, read_shard, split_urls
from img2loc.files import atomic_path, atomic_write_text, owned_folder
from img2loc.inference.preprocess import PreprocessConfig, preprocess
from img2loc.models.backbone import DEFAULT_BACKBONE, create_backbone
from img2loc.models.checkpoint import load_checkpoint
from img2loc.models.geolocator import GeoLocator


def warn_and_continue(exn: Exception) -> bool:
    """A bad shard or image is skipped with a warning, as training skips it."""
    warnings.warn(f"skipping a bad sample: {exn!r}", stacklevel=2)
    return True


def _model(
    backbone: str, checkpoint: str | None, weights: str | None
) -> tuple[nn.Module, PreprocessConfig, str]:
    if checkpoint:
        model, _, pre, hp = load_checkpoint(checkpoint)
        return _Features(model), pre, str(hp.get("backbone", "?"))
    net, pre = create_backbone(backbone, pretrained=True, weights=weights)
    return net, pre, backbone


class _Features(nn.Module):
    def __init__(self, model: GeoLocator) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.model.forward_features(x)
        return out


def _samples(url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    try:
        for sample in read_shard(url):
            out.append(sample.as_webdataset())
    except Exception as exn:  # a damaged shard keeps the samples read before the damage
        warn_and_continue(exn)
    return out


def embed_shards(
    shards: str | Path,
    output: str | Path,
    *,
    backbone: str = DEFAULT_BACKBONE,
    checkpoint: str | None = None,
    weights: str | None = None,
    splits: list[str] | None = None,
    batch_size: int = 64,
    flip: bool = True,
    device: str = "auto",
    threads: int = 2,
    progress: bool = True,
    network: tuple[nn.Module, PreprocessConfig, str] | None = None,
) -> dict[str, Any]:
    """Write frozen features for every shard of ``splits`` (default: all) and return the info.

    ``network`` (a module whose output is the feature vector, its preprocessing and a
    name for ``_info.json``) replaces the backbone, e.g. to compare other poolings.
    """
    shards, output = Path(shards), Path(output)
    info_in = read_info(shards)
    splits = splits or sorted(info_in["splits"])
    dev = torch.device(
        "cuda"
        if device == "auto" and torch.cuda.is_available()
        else ("cpu" if device == "auto" else device)
    )
    net, pre, name = network or _model(backbone, checkpoint, weights)
    net = net.eval().to(dev).to(memory_format=torch.channels_last)
    info: dict[str, Any] = {
        "format": "img2loc-features",
        "version": 1,
        "backbone": name,
        "checkpoint": str(Path(checkpoint).resolve()) if checkpoint else None,
        "weights": weights,
        "preprocess": pre.to_dict(),
        "flip": flip,
        "shards": str(shards.resolve()),
        "splits": {},
    }
    old = output / INFO
    if old.exists():
        prev = json.loads(old.read_text())
        same = {k: prev.get(k) for k in ("backbone", "checkpoint", "preprocess", "flip")}
        if same != {k: info[k] for k in same}:
            raise ValueError(
                f"{output} holds features of another model ({same}); choose a new output folder"
            )
    # One run per folder; a killed run's half-written .npz temps are removed.
    with owned_folder(output, "img2loc embed"):
        urls = {s: split_urls(shards, s) for s in splits}
        todo = [(s, u) for s in splits for u in urls[s][0]]
        total = sum(n for _, n in urls.values())
        bar = tqdm(total=total, unit="img", desc="embed", disable=not progress)
        pool = ThreadPoolExecutor(threads)
        for split, url in todo:
            stem = Path(url).name.removesuffix(".tar")
            dest = output / f"{stem}.npz"
            info["splits"].setdefault(split, {"files": [], "counts": [], "n": 0})
            if dest.exists():  # resume: done before
                with np.load(dest) as z:
                    n = len(z["key"])
            else:
                n = _embed_one(url, dest, net, pre, dev, batch_size, flip, pool)
            entry = info["splits"][split]
            entry["files"].append(dest.name)
            entry["counts"].append(n)
            entry["n"] += n
            bar.update(n)
        bar.close()
        pool.shutdown()
        atomic_write_text(output / INFO, json.dumps(info, indent=2))
    return info


def _prepare(sample: dict[str, Any], pre: PreprocessConfig) -> tuple[np.ndarray, dict[str, Any]]:
    im, meta = decode_sample(sample)
    return preprocess(im, pre), meta


@torch.no_grad()
def _embed_one(
    url: str,
    dest: Path,
    net: nn.Module,
    pre: PreprocessConfig,
    dev: torch.device,
    batch_size: int,
    flip: bool,
    pool: ThreadPoolExecutor,
) -> int:
    feats: list[np.ndarray] = []
    flips: list[np.ndarray] = []
    metas: list[dict[str, Any]] = []
    samples = _samples(url)
    for i in range(0, len(samples), batch_size):
        done = []
        for fut in [pool.submit(_prepare, s, pre) for s in samples[i : i + batch_size]]:
            try:
                done.append(fut.result())
            except Exception as exn:  # a bad image is skipped, as in training
                warn_and_continue(exn)
        if not done:
            continue
        x = torch.from_numpy(np.stack([a for a, _ in done])).to(dev)
        x = x.contiguous(memory_format=torch.channels_last)
        feats.append(net(x).float().cpu().numpy().astype(np.float16))
        if flip:
            flips.append(net(x.flip(-1)).float().cpu().numpy().astype(np.float16))
        metas += [m for _, m in done]
    dim = int(getattr(net, "num_features", 0)) or (feats[0].shape[1] if feats else 0)
    arrays: dict[str, np.ndarray] = {
        "features": np.concatenate(feats) if feats else np.zeros((0, dim), np.float16),
        "latitude": np.array([m["latitude"] for m in metas], np.float64),
        "longitude": np.array([m["longitude"] for m in metas], np.float64),
        "key": np.array([str(m["key"]) for m in metas]),
        "location_id": np.array([str(m.get("location_id", m["key"])) for m in metas]),
        "source": np.array([str(m.get("source", "")) for m in metas]),
    }
    if flip:
        arrays["features_flip"] = np.concatenate(flips) if flips else arrays["features"]
    with atomic_path(dest, suffix=".tmp.npz") as tmp:  # np.savez wants the .npz suffix
        np.savez(tmp, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
    return len(metas)
