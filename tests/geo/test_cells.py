import itertools
import json

import numpy as np
import pytest

from img2loc.geo import CellSet, CoordinateError, oracle_metrics, s2
from tests.conftest import random_sphere


def _clustered(rng, n_per=300):
    """Dense clusters in Paris and New York plus sparse world-wide noise."""
    paris = np.c_[rng.normal(48.85, 0.05, n_per), rng.normal(2.35, 0.05, n_per)]
    ny = np.c_[rng.normal(40.7, 0.05, n_per), rng.normal(-74.0, 0.05, n_per)]
    wl = np.column_stack(random_sphere(rng, 40))
    pts = np.r_[paris, ny, wl]
    return pts[:, 0], pts[:, 1]


def test_build_splits_dense_areas_and_keeps_parents(rng):
    lat, lon = _clustered(rng)
    cells = CellSet.build(lat, lon, min_samples=20, max_samples=100, min_level=2, max_level=12)
    # Every non-root cell's parent is in the set, and comes before it.
    for i in range(len(cells)):
        p = cells.parent[i]
        if cells.levels[i] > 2:
            assert 0 <= p < i
            assert cells.ids[p] == s2.parent_ids(cells.ids[i : i + 1], cells.levels[i] - 1)[0]
    # Dense cities were split deep; kept cells respect the thresholds.
    assert cells.levels.max() >= 8
    assert cells.counts.min() >= 20
    splits = ~cells.is_leaf
    assert np.all(cells.counts[splits] > 100)
    # The sparse noise produced no cell of its own.
    assert len(cells) < 60


def test_targets_for_nested_cells(rng):
    lat, lon = _clustered(rng)
    cells = CellSet.build(lat, lon, min_samples=20, max_samples=100)
    hot = cells.multi_hot([48.85], [2.35])[0]
    on = np.flatnonzero(hot)
    # A Paris photo is in one cell per level, each the parent of the next.
    assert len(on) == len(set(cells.levels[on].tolist())) >= 4
    chain = on[np.argsort(cells.levels[on])]
    for parent, child in itertools.pairwise(chain):
        assert cells.parent[child] == parent
    fin = cells.finest([48.85], [2.35])[0]
    assert fin == chain[-1]
    # The finest cell's chain is exactly the multi-hot set.
    assert set(cells.chain[fin][cells.chain[fin] >= 0].tolist()) == set(on.tolist())
    # A point in the empty Pacific has no cell at all.
    assert cells.finest([-40], [-130])[0] == -1
    assert cells.multi_hot([-40], [-130]).sum() == 0
    assert cells.nearest([-40], [-130])[0] >= 0


def test_groups_count_places_not_photos():
    lat = np.r_[np.full(40, 10.0), np.full(5, -20.0)]
    lon = np.r_[np.full(40, 10.0), np.full(5, 30.0)]
    groups = np.r_[np.repeat(np.arange(10), 4), np.arange(100, 105)]
    by_photo = CellSet.build(lat, lon, min_samples=5, max_samples=1000, min_level=2)
    by_group = CellSet.build(lat, lon, min_samples=5, max_samples=1000, min_level=2, groups=groups)
    assert sorted(by_photo.counts.tolist()) == [5, 40]
    assert sorted(by_group.counts.tolist()) == [5, 10]


def test_build_rejects_bad_input():
    with pytest.raises(CoordinateError):
        CellSet.build([0, 95], [0, 0], min_samples=1, max_samples=10)
    with pytest.raises(ValueError, match="min_samples"):
        CellSet.build([0], [0], min_samples=10, max_samples=5)
    with pytest.raises(ValueError, match="at least one cell"):
        CellSet.build([0], [0], min_samples=5, max_samples=10)


def test_json_round_trip(tmp_path, rng):
    lat, lon = _clustered(rng)
    cells = CellSet.build(lat, lon, min_samples=20, max_samples=100)
    path = tmp_path / "cells.json"
    cells.save(path)
    raw = json.loads(path.read_text())
    assert raw["params"]["max_samples"] == 100
    rec = raw["cells"][0]
    assert {"token", "level", "parent", "lat", "lon", "count", "polygon"} <= set(rec)
    back = CellSet.load(path)
    assert np.array_equal(back.ids, cells.ids)
    assert np.array_equal(back.counts, cells.counts)
    assert np.array_equal(back.parent, cells.parent)
    assert np.allclose(back.center_lat, cells.center_lat, atol=1e-6)
    assert np.array_equal(back.labels(lat, lon), cells.labels(lat, lon))
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left no temp file


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="cells build"):
        CellSet.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        CellSet.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"format": "geojson"}')
    with pytest.raises(ValueError, match="not an img2loc cell set"):
        CellSet.load(tmp_path / "other.json")


def test_oracle_is_an_upper_bound(rng):
    lat, lon = _clustered(rng)
    coarse = CellSet.build(lat, lon, min_samples=20, max_samples=1000, max_level=6)
    fine = CellSet.build(lat, lon, min_samples=20, max_samples=50, max_level=14)
    oc, of = oracle_metrics(coarse, lat, lon), oracle_metrics(fine, lat, lon)
    assert of["median_km"] < oc["median_km"]
    assert of["acc_km"]["25"] >= oc["acc_km"]["25"]
    # Exact check on one photo at a cell centre.
    i = int(np.flatnonzero(fine.is_leaf)[0])
    m = oracle_metrics(fine, [fine.center_lat[i]], [fine.center_lon[i]])
    assert m["median_km"] == pytest.approx(0, abs=1e-6)
