"""Model folder pieces that need no torch: dev images, cells.json, atomic replacement."""

from __future__ import annotations

import json

import numpy as np
import pytest

from img2loc.data.manifest import write_manifest
from img2loc.data.shards import ShardConfig, write_shards
from img2loc.data.sources.table import import_table
from img2loc.export.bundle import (
    ExportError,
    cells_document,
    compare,
    describe,
    passes,
    staging_dir,
)
from img2loc.export.devdata import generated_images, load_dev_images
from img2loc.geo import CellSet
from img2loc.inference.preprocess import PreprocessConfig
from tests.conftest import make_photo_table

PRE = PreprocessConfig(input_size=32, resize_size=36)


def test_dev_images_from_csv_shards_and_generated(tmp_path):
    csv = make_photo_table(tmp_path, n_loc=6, seed=1)
    dev = load_dev_images(csv, PRE, limit=10)
    assert dev.x.shape == (10, 3, 32, 32) and dev.lat is not None and dev.lat.shape == (10,)
    df, _ = import_table(csv)
    write_manifest(df, tmp_path / "m.parquet")
    cfg = ShardConfig(max_side=64, shard_size=8, val_frac=0.34, test_frac=0.0)
    write_shards([tmp_path / "m.parquet"], tmp_path / "shards", cfg, workers=1, progress=False)
    dev = load_dev_images(tmp_path / "shards", PRE, limit=100)
    info = json.loads((tmp_path / "shards" / "_info.json").read_text())
    assert dev.n == info["splits"]["val"]["n"] and "val split" in dev.source
    assert set(zip(dev.lat, dev.lon, strict=True)) <= set(
        zip(df["latitude"], df["longitude"], strict=True)
    )
    gen = generated_images(PRE, n=3)
    assert gen.n == 3 and gen.lat is None
    np.testing.assert_array_equal(gen.x, generated_images(PRE, n=3).x)
    with pytest.raises(ValueError, match="no such file"):
        load_dev_images(tmp_path / "nope.csv", PRE)
    with pytest.raises(ValueError, match="shard folder"):
        load_dev_images(tmp_path, PRE)


def test_cells_document_has_ancestors_and_places():
    rng = np.random.default_rng(0)
    lat = np.r_[rng.normal(48.85, 0.2, 200), rng.uniform(-50, 50, 50)]
    lon = np.r_[rng.normal(2.35, 0.2, 200), rng.uniform(-150, 150, 50)]
    cells = CellSet.build(lat, lon, min_samples=5, max_samples=40)
    doc = cells_document(cells)
    assert CellSet.from_dict(doc).tokens() == cells.tokens()
    tokens = cells.tokens()
    for i, rec in enumerate(doc["cells"]):
        assert rec["ancestors"] == [tokens[j] for j in cells.chain[i, 1:] if j >= 0]
        assert rec["leaf"] == bool(cells.is_leaf[i]) and rec["place"] and rec["polygon"]
    deepest = max(doc["cells"], key=lambda c: c["level"])
    assert len(deepest["ancestors"]) >= 2 and "FR" in deepest["place"]


def test_compare_and_gate():
    rng = np.random.default_rng(1)
    cells = CellSet.build(rng.uniform(-50, 50, 300), rng.uniform(-150, 150, 300), min_samples=5)
    p = rng.uniform(0, 1, (50, len(cells))).astype(np.float32)
    same = compare(p, p.copy(), cells, np.zeros(50), np.zeros(50))
    assert same["top_cell_agreement"] == 1.0 and passes(same)
    assert set(same["acc_km_delta"]) == {"1", "25", "200", "750", "2500"}
    noisy = compare(p, rng.uniform(0, 1, p.shape).astype(np.float32), cells)
    assert noisy["top_cell_agreement"] < 0.5 and not passes(noisy)


def test_staging_dir_is_atomic(tmp_path):
    out = tmp_path / "model"
    with staging_dir(out) as tmp:
        (tmp / "export.json").write_text("1")
    assert (out / "export.json").read_text() == "1"
    with pytest.raises(RuntimeError, match="boom"), staging_dir(out) as tmp:
        (tmp / "export.json").write_text("2")
        raise RuntimeError("boom")
    assert (out / "export.json").read_text() == "1"  # the old model is untouched
    with staging_dir(out) as tmp:
        (tmp / "export.json").write_text("3")
    assert (out / "export.json").read_text() == "3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temp folders left
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.md").write_text("mine")
    with pytest.raises(ExportError, match="not a model folder"), staging_dir(tmp_path / "docs"):
        pass


def test_compare_gates_the_fallback_too():
    rng = np.random.default_rng(2)
    cells = CellSet.build(rng.uniform(-50, 50, 300), rng.uniform(-150, 150, 300), min_samples=5)
    cells.prior = np.where(cells.is_leaf, 1.0 / cells.is_leaf.sum(), 0.0)
    p = rng.uniform(0, 1, (50, len(cells))).astype(np.float32)
    w = np.full((50, 1), 0.9, np.float32)
    ref = np.c_[p, w]
    assert compare(ref, ref.copy(), cells)["fallback_agreement"] == 1.0
    flipped = ref.copy()
    flipped[:5, -1] = 0.1  # 10% of the photos now fall back: the words would differ
    cmp = compare(ref, flipped, cells)
    assert cmp["fallback_agreement"] == 0.9 and not passes(cmp)
    assert "same fallback on 90.0%" in describe(cmp)
    assert "fallback_agreement" not in compare(p, p.copy(), cells)  # no weight: no figure
