"""Fake models with known answers: no torch, no training."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from img2loc.evaluation.models import EvalModel
from img2loc.geo import CellSet
from img2loc.inference.preprocess import PreprocessConfig
from tests.inference.conftest import model_dir  # noqa: F401  (shared fixture)

PRE = PreprocessConfig(input_size=32, resize_size=36)
# Paris and Brussels share coarse cells, so the set has parents with several children.
PLACES = [(48.85, 2.35), (50.85, 4.35), (35.68, 139.69), (-33.87, 151.21)]


class EchoModel(EvalModel):
    """Its input batch *is* the probabilities (for streaming tests)."""

    def __init__(self, cells: CellSet) -> None:
        super().__init__(Path("echo"), cells, PRE)

    def run(self, batch):
        return np.asarray(batch, np.float32)


class ColourModel(EvalModel):
    """Guesses leaf k for a grey photo of level ``grey(k)``: probability 0.97 on the leaf
    and its ancestors, 0.02 elsewhere. Embeddings: one-hot of k."""

    kind = "fake"
    can_embed = True

    def __init__(self, cells: CellSet, name: str = "colour") -> None:
        super().__init__(Path(name), cells, PRE)
        self.leaves = np.flatnonzero(cells.is_leaf)

    def leaf_of(self, batch):
        grey = (batch[:, 0].mean(axis=(1, 2)) * 0.5 + 0.5) * 255
        return np.rint((grey - 30) / 40).astype(int)

    def run(self, batch):
        p = np.full((len(batch), len(self.cells)), 0.02, np.float32)
        for i, k in enumerate(self.leaf_of(batch)):
            chain = self.cells.chain[self.leaves[k]]
            p[i, chain[chain >= 0]] = 0.97
        return p

    def embed(self, batch):
        return np.eye(8, dtype=np.float32)[self.leaf_of(batch)]


def grey(k: int) -> int:
    return 30 + 40 * k


def grey_jpeg(k: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (48, 40), (grey(k),) * 3).save(buf, "JPEG", quality=95)
    return buf.getvalue()


@pytest.fixture
def place_cells() -> CellSet:
    lat, lon = np.array(PLACES).T
    cells = CellSet.build(lat, lon, min_samples=1, max_samples=1, max_level=6)
    assert cells.depth.max() >= 1 and cells.is_leaf.sum() == len(PLACES)
    return cells


def chain_set(cells: CellSet, leaf: int) -> set[int]:
    c = cells.chain[leaf]
    return set(c[c >= 0].tolist())
