import itertools
import json

import numpy as np
import pytest

from img2loc.geo import CellSet, CoordinateError, geoguessr_score, haversine_km, oracle_metrics, s2
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


def test_guess_point_is_where_the_photos_are(rng):
    # A regional set (Croatia-like cluster) in one corner of a big level-2 cell: the
    # cell's S2 centre lies far away (in the issue, in Tunisia), its guess point must not.
    lat = rng.normal(45.5, 0.3, 200)
    lon = rng.normal(16.0, 0.3, 200)
    cells = CellSet.build(lat, lon, min_samples=10, max_samples=60, min_level=2, max_level=10)
    coarse = int(np.argmin(cells.levels))
    s2_lat, s2_lon = s2.cell_center(int(cells.ids[coarse]))
    assert haversine_km(s2_lat, s2_lon, 45.5, 16.0) > 300
    assert haversine_km(cells.center_lat, cells.center_lon, 45.5, 16.0).max() < 100
    # The guess point of a cell is the spherical centroid of the places counted in it.
    leaf = int(np.flatnonzero(cells.is_leaf)[0])
    inside = cells.labels(lat, lon)[:, cells.level_list.index(int(cells.levels[leaf]))] == leaf
    la, lo = np.radians(lat[inside]), np.radians(lon[inside])
    v = np.c_[np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)].sum(0)
    assert cells.center_lat[leaf] == pytest.approx(np.degrees(np.arctan2(v[2], np.hypot(*v[:2]))))
    assert cells.center_lon[leaf] == pytest.approx(np.degrees(np.arctan2(v[1], v[0])))


def test_oracle_never_loses_to_a_constant_at_a_cell_point(rng):
    lat, lon = _clustered(rng)
    cells = CellSet.build(lat, lon, min_samples=20, max_samples=100)
    test_lat, test_lon = random_sphere(rng, 300)
    oracle = oracle_metrics(cells, test_lat, test_lon)
    for i in range(len(cells)):
        d = haversine_km(cells.center_lat[i], cells.center_lon[i], test_lat, test_lon)
        assert oracle["geoguessr_mean"] >= geoguessr_score(d).mean() - 1e-9
        assert oracle["median_km"] <= np.median(d) + 1e-9


def test_with_prior_adds_cells_where_photos_are_taken_without_splitting_trained_ones(rng):
    lat, lon = _clustered(rng)  # training photos: Paris, New York, noise
    cells = CellSet.build(lat, lon, min_samples=20, max_samples=100)
    # Where people take photos: Paris and Tokyo.
    plat = np.r_[rng.normal(48.85, 0.05, 2000), rng.normal(35.7, 0.2, 3000)]
    plon = np.r_[rng.normal(2.35, 0.05, 2000), rng.normal(139.7, 0.2, 3000)]
    assert cells.finest([35.7], [139.7])[0] == -1
    both = cells.with_prior(plat, plon, min_samples=200, max_samples=1000)
    # Every trained cell is kept with its count and point; none of its leaves got split.
    old = {int(c): i for i, c in enumerate(cells.ids)}
    for j, c in enumerate(both.ids):
        if int(c) in old:
            i = old[int(c)]
            assert both.counts[j] == cells.counts[i]
            assert both.center_lat[j] == cells.center_lat[i]
            assert both.is_leaf[j] == cells.is_leaf[i]
    # Tokyo now has cells, with no training place and a guess point in Tokyo.
    tokyo = both.finest([35.7], [139.7])[0]
    assert tokyo >= 0 and both.counts[tokyo] == 0
    assert haversine_km(both.center_lat[tokyo], both.center_lon[tokyo], 35.7, 139.7) < 50
    assert both.params["prior"]["added_cells"] == len(both) - len(cells)
    # The prior: leaves sum to 1, parents hold their leaves, Tokyo holds ~60%.
    assert both.prior is not None
    assert both.prior[both.is_leaf].sum() == pytest.approx(1.0)
    root = both.chain[tokyo][both.chain[tokyo] >= 0][-1]
    assert both.prior[root] == pytest.approx(0.6, abs=0.02)
    # It survives a round trip through cells.json.
    back = CellSet.from_dict(json.loads(json.dumps(both.to_dict(polygons=False))))
    assert np.allclose(back.prior, both.prior, atol=1e-8)
