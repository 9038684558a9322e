"""Shared fixtures: where the shared data lives, seeded random coordinates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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


def random_sphere(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Points uniform on the sphere."""
    return np.degrees(np.arcsin(rng.uniform(-1, 1, n))), rng.uniform(-180, 180, n)
