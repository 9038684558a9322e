"""Images for the export's parity checks: a shard folder, a manifest/CSV, or generated ones.

Dev images are decoded exactly as ``img2loc predict`` decodes them
(:func:`img2loc.inference.images.load_input`), so the figures printed at export
are the ones users get.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from img2loc.data.images import ImageError
from img2loc.data.shard_reader import INFO, is_shard_folder, read_info, read_shard
from img2loc.inference.images import ImageBytes, ImageInput, load_input
from img2loc.inference.preprocess import PreprocessConfig, preprocess

#: Shard splits tried in order for dev images.
DEV_SPLITS = ("val", "test", "train")


@dataclass
class DevImages:
    """Preprocessed images (N, 3, S, S), their coordinates when known, and where they came from."""

    x: NDArray[np.float32]
    lat: NDArray[np.float64] | None
    lon: NDArray[np.float64] | None
    source: str
    skipped: int = 0

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


def _shard_samples(
    folder: Path, tried: tuple[str, ...] = DEV_SPLITS
) -> tuple[str, Iterator[tuple[str, bytes, dict[str, float]]]]:
    splits = read_info(folder).get("splits", {})
    split = next((s for s in tried if splits.get(s, {}).get("n")), None)
    if split is None:
        raise ValueError(f"{folder / INFO} lists no images in {tried}")

    def samples() -> Iterator[tuple[str, bytes, dict[str, float]]]:
        for name in splits[split]["shards"]:
            for s in read_shard(folder / name):
                if {"jpg", "json"} <= s.data.keys():
                    yield s.key, s.data["jpg"], s.meta

    return f"{folder} ({split} split)", samples()


def _table_samples(path: Path, limit: int) -> tuple[str, list[tuple[str, str, float, float]]]:
    from img2loc.data.sources.table import import_table

    df, report = import_table(path)
    if not len(df):
        why = "; ".join(f"{f}: {r}" for f, r in report.skipped[:3])
        raise ValueError(f"--data {path}: no usable rows ({len(report.skipped)} skipped: {why})")
    if len(df) > limit:  # an even spread of the table, not its first rows (often one region)
        df = df.sample(n=limit, random_state=0)
    rows = zip(df["key"], df["image"], df["latitude"], df["longitude"], strict=True)
    return str(path), [(str(k), str(i), float(la), float(lo)) for k, i, la, lo in rows]


def load_dev_images(data: str | Path, cfg: PreprocessConfig, limit: int = 256) -> DevImages:
    """Up to ``limit`` images with coordinates from a shard folder or a manifest/CSV table."""
    p = Path(data)
    xs: list[NDArray[np.float32]] = []
    lats: list[float] = []
    lons: list[float] = []
    skipped = 0
    if p.is_dir():
        if not is_shard_folder(p):
            raise ValueError(f"{p} is not a shard folder (no _info.json); pass shards or a CSV")
        source, samples = _shard_samples(p)
        items: Iterator[tuple[str, ImageInput, float, float]] = (
            (k, ImageBytes(k, jpg), float(meta["latitude"]), float(meta["longitude"]))
            for k, jpg, meta in samples
        )
    elif p.is_file():
        source, rows = _table_samples(p, limit)
        items = iter(rows)
    else:
        raise ValueError(f"--data {p}: no such file or folder")
    for _, src, la, lo in items:
        if len(xs) >= limit:
            break
        try:
            xs.append(load_input(src, cfg).x)
        except ImageError:
            skipped += 1
            continue
        lats.append(la)
        lons.append(lo)
    if not xs:
        raise ValueError(f"--data {p}: no readable images ({skipped} unreadable)")
    return DevImages(np.stack(xs), np.asarray(lats), np.asarray(lons), source, skipped)


def split_batches(
    folder: str | Path, cfg: PreprocessConfig, split: str, limit: int, batch: int = 64
) -> tuple[str, Iterator[NDArray[np.float32]]]:
    """(description, batches (B, 3, S, S)) of up to ``limit`` readable photos of a shard split.

    For fitting on many photos without holding them all: unreadable ones are skipped
    (the shards were written from decodable photos, so there are none in practice).
    """
    p = Path(folder)
    if not is_shard_folder(p):
        raise ValueError(f"{p} is not a shard folder (no _info.json); pass the training shards")
    source, samples = _shard_samples(p, (split,))

    def batches() -> Iterator[NDArray[np.float32]]:
        xs: list[NDArray[np.float32]] = []
        n = 0
        for k, jpg, _ in samples:
            if n >= limit:
                break
            try:
                xs.append(load_input(ImageBytes(k, jpg), cfg).x)
            except ImageError:
                continue
            n += 1
            if len(xs) == batch:
                yield np.stack(xs)
                xs = []
        if xs:
            yield np.stack(xs)

    return source, batches()


def generated_images(cfg: PreprocessConfig, n: int = 8, seed: int = 0) -> DevImages:
    """Seeded photo-like images (smooth gradients, blobs, noise) when no dev data is given."""
    rng = np.random.default_rng(seed)
    s = cfg.resize_size
    yy, xx = np.mgrid[0:s, 0:s] / s
    xs = []
    for _ in range(n):
        base = rng.uniform(0, 255, 3) * (1 - yy[..., None]) + rng.uniform(0, 255, 3) * yy[..., None]
        for _ in range(4):
            cy, cx, r = rng.uniform(0, 1, 3)
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (0.02 + 0.05 * r))
            base = base + blob[..., None] * rng.uniform(-120, 120, 3)
        base = base + rng.normal(0, 12, base.shape)
        im = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
        xs.append(preprocess(im, cfg))
    return DevImages(np.stack(xs), None, None, f"{n} generated images (pass --data for real ones)")
