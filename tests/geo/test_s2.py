import numpy as np
import pytest
import s2sphere

from img2loc.geo import s2
from tests.conftest import random_sphere


def _ref(lat, lon):
    return np.array(
        [
            s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(a, b)).id()
            for a, b in zip(lat, lon, strict=True)
        ],
        dtype=np.uint64,
    )


def test_leaf_ids_match_s2sphere(rng):
    lat, lon = random_sphere(rng, 3000)
    edge_lat = [90, -90, 0, 0, 0, 45, -45, 35.26, 0.0]
    edge_lon = [0, 0, -180, 179.99999, 90, 45, -135, 45, -90]
    lat, lon = np.r_[lat, edge_lat], np.r_[lon, edge_lon]
    assert np.array_equal(s2.leaf_ids(lat, lon), _ref(lat, lon))


def test_parents_levels_tokens(rng):
    lat, lon = random_sphere(rng, 200)
    ids = s2.leaf_ids(lat, lon)
    for level in (0, 1, 7, 13, 30):
        p = s2.parent_ids(ids, level)
        ref = [s2sphere.CellId(int(c)).parent(level).id() for c in ids]
        assert p.tolist() == ref
        assert set(s2.id_level(p).tolist()) == {level}
        for c in p[:20]:
            token = s2.id_to_token(int(c))
            assert token == s2sphere.CellId(int(c)).to_token()
            assert s2.token_to_id(token) == int(c)


def test_bad_token():
    with pytest.raises(ValueError):
        s2.token_to_id("zz")
    assert s2.token_to_id("X") == 0


def test_center_and_polygon_contain_point():
    cid = int(s2.parent_ids(s2.leaf_ids(48.85, 2.35), 8)[0])
    lat, lon = s2.cell_center(cid)
    assert abs(lat - 48.85) < 1 and abs(lon - 2.35) < 1
    poly = np.array(s2.cell_polygon(cid, 4))
    assert poly.shape == (16, 2)
    assert poly[:, 0].min() < 48.85 < poly[:, 0].max()
    assert poly[:, 1].min() < 2.35 < poly[:, 1].max()
