"""Shared fixtures: where the shared data lives, seeded random coordinates."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
STREETVIEW_CSVS = [
    SHARED / name / "locations.csv"
    for name in ("streetview-world", "streetview-us-west", "streetview-croatia")
]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def shared_streetview() -> list[Path]:
    if not all(p.exists() for p in STREETVIEW_CSVS):
        pytest.skip(f"shared data not found at {SHARED}")
    return STREETVIEW_CSVS


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED / "photo-locations-mp16").is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


def random_sphere(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Points uniform on the sphere."""
    return np.degrees(np.arcsin(rng.uniform(-1, 1, n))), rng.uniform(-180, 180, n)


def jpeg_bytes(rng: np.random.Generator, size=(64, 48), exif: Image.Exif | None = None) -> bytes:
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=85, exif=exif if exif is not None else b"")
    return buf.getvalue()


def gps_exif(lat: float, lon: float) -> Image.Exif:
    exif = Image.Exif()
    gps = {}

    def dms(x: float):
        d = int(abs(x))
        m = int((abs(x) - d) * 60)
        s = (abs(x) - d - m / 60) * 3600
        return (Fraction(d), Fraction(m), Fraction(s).limit_denominator(10000))

    gps[1], gps[2] = ("N" if lat >= 0 else "S"), dms(lat)
    gps[3], gps[4] = ("E" if lon >= 0 else "W"), dms(lon)
    exif[0x8825] = gps
    return exif


@pytest.fixture
def photo_table(tmp_path: Path) -> Path:
    """A locations.csv with 60 generated photos at 15 locations (4 views each)."""
    return make_photo_table(tmp_path)


def make_photo_table(tmp_path: Path, n_loc: int = 15, seed: int = 7) -> Path:
    """Write generated photos + locations.csv under tmp_path/set; return the CSV path."""
    rng = np.random.default_rng(seed)
    img_dir = tmp_path / "set" / "images"
    img_dir.mkdir(parents=True)
    rows = []
    centres = np.c_[rng.uniform(-50, 60, n_loc), rng.uniform(-170, 170, n_loc)]
    for loc, (la, lo) in enumerate(centres):
        for h in (0, 90, 180, 270):
            name = f"images/loc{loc:02d}_{h:03d}.jpg"
            (tmp_path / "set" / name).write_bytes(jpeg_bytes(rng, (80 + h // 10, 60)))
            rows.append(
                {
                    "image": name,
                    "latitude": la,
                    "longitude": lo,
                    "heading": h,
                    "location_id": f"loc{loc:02d}",
                }
            )
    csv = tmp_path / "set" / "locations.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


# ---------------------------------------------------------------------- tiny model
#: A seconds-long CPU training config (timm's test network); see configs/tiny.yaml.
TINY_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml"


def tiny_args(data: dict[str, Path], run: Path, *extra: str) -> list[str]:
    """`img2loc train` arguments for the tiny config on :func:`tiny_data`."""
    return [
        "--config",
        str(TINY_CONFIG),
        "--model.cells",
        str(data["cells"]),
        "--data.shards",
        str(data["shards"]),
        "--trainer.default_root_dir",
        str(run),
        *extra,
    ]


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict[str, Path]:
    """A tiny shard set (train + val, 12 locations x 4 views) and its cell set (no torch)."""
    from img2loc.data.cells import write_cells
    from img2loc.data.manifest import write_manifest
    from img2loc.data.shards import ShardConfig, write_shards
    from img2loc.data.sources.table import import_table
    from img2loc.geo import CellSet

    root = tmp_path_factory.mktemp("tiny")
    csv = make_photo_table(root, n_loc=12, seed=11)
    df, _ = import_table(csv)
    write_manifest(df, root / "m.parquet")
    write_shards(
        [root / "m.parquet"],
        root / "shards",
        ShardConfig(max_side=96, shard_size=12, val_frac=0.25, test_frac=0.0),
        workers=1,
        progress=False,
    )
    cells = CellSet.build(
        df["latitude"],
        df["longitude"],
        min_samples=1,
        max_samples=4,
        groups=df["location_id"].to_numpy(),
    )
    write_cells(cells, root / "cells.json")
    return {
        "root": root,
        "shards": root / "shards",
        "cells": root / "cells.json",
        "manifest": root / "m.parquet",
    }


@pytest.fixture(scope="session")
def tiny_ckpt(tiny_data, tmp_path_factory) -> Path:
    """A checkpoint of the tiny model trained one epoch on :func:`tiny_data` (needs torch)."""
    pytest.importorskip("lightning")
    run = tmp_path_factory.mktemp("tiny_run")
    proc = subprocess.run(
        [str(EXE), "train", *tiny_args(tiny_data, run, "--trainer.max_epochs", "1")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return run / "checkpoints" / "last.ckpt"


#: The installed `img2loc` console script, run as a user would (tests inherit PYTHONPATH).
EXE = Path(sys.executable).with_name("img2loc")


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(EXE), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "error::DeprecationWarning"},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc
