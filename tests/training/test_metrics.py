"""GeoMetrics gives the figures computed directly from the same guesses."""

from __future__ import annotations

import numpy as np
import pytest

from img2loc.geo.cells import CellSet
from img2loc.geo.decode import decode
from img2loc.geo.distance import haversine_km, metrics_from_distances
from img2loc.training.metrics import GeoMetrics


@pytest.fixture(scope="module")
def cells() -> CellSet:
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(-60, 60, 300), rng.uniform(-180, 180, 300)
    return CellSet.build(lat, lon, min_samples=1, max_samples=30)


def test_batches_add_up_to_the_direct_figures(cells):
    rng = np.random.default_rng(1)
    m = GeoMetrics(cells, "score")
    probs, lats, lons, losses = [], [], [], []
    for n in (5, 0, 7):  # a rank's batch may be all padding
        p = rng.uniform(0, 1, (n, len(cells))).astype(np.float32)
        la, lo = rng.uniform(-60, 60, n), rng.uniform(-180, 180, n)
        m.update(p, la, lo, 0.25 * (n + 1))
        probs.append(p), lats.append(la), lons.append(lo), losses.append(0.25 * (n + 1) * n)
    p, la, lo = np.concatenate(probs), np.concatenate(lats), np.concatenate(lons)
    _, plat, plon = decode(p, cells, "score")
    want = metrics_from_distances(haversine_km(plat, plon, la, lo))
    got = m.compute()
    assert got["n"] == 12 and got["median_km"] == want["median_km"]
    assert got["geoguessr_mean"] == want["geoguessr_mean"]
    y = cells.multi_hot(la, lo) > 0
    q = p >= 0.5
    tp, fp, fn = (q & y).sum(), (q & ~y).sum(), (~q & y).sum()
    assert got["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert got["loss"] == pytest.approx(sum(losses) / 12)
    m.reset()
    with pytest.warns(UserWarning, match="before the ``update``"):  # torchmetrics says so
        assert m.compute()["n"] == 0
