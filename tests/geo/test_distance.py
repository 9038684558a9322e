import numpy as np
import pytest
from geographiclib.geodesic import Geodesic

from img2loc.geo import (
    EARTH_RADIUS_KM,
    geo_metrics,
    geoguessr_score,
    haversine_km,
)
from img2loc.geo.distance import metrics_from_distances
from tests.conftest import random_sphere


def _geodesic_km(a, b, c, d):
    return Geodesic.WGS84.Inverse(a, b, c, d)["s12"] / 1000.0


def test_known_city_pairs():
    # Paris -> London ~ 344 km, New York -> Los Angeles ~ 3936 km (great circle).
    assert haversine_km(48.8566, 2.3522, 51.5074, -0.1278) == pytest.approx(343.6, abs=1.5)
    assert haversine_km(40.7128, -74.0060, 34.0522, -118.2437) == pytest.approx(3936, abs=10)
    assert haversine_km(10, 20, 10, 20) == 0.0


def test_against_geodesic_on_random_and_edge_pairs(rng):
    la1, lo1 = random_sphere(rng, 500)
    la2, lo2 = random_sphere(rng, 500)
    edge = np.array(
        [
            (0, 0, 0, 180),  # antipodes on the equator
            (45, 10, -45, -170),  # antipodes
            (90, 0, -90, 0),  # pole to pole
            (90, 0, 89, 123),  # near the north pole, arbitrary longitude
            (-89.5, -60, -89.5, 120),  # across the south pole
            (10, 179.5, 10, -179.5),  # across the antimeridian: ~110 km, not ~39,000
            (-40, -179.9, -41, 179.9),
        ],
        dtype=float,
    )
    la1, lo1 = np.r_[la1, edge[:, 0]], np.r_[lo1, edge[:, 1]]
    la2, lo2 = np.r_[la2, edge[:, 2]], np.r_[lo2, edge[:, 3]]
    ours = haversine_km(la1, lo1, la2, lo2)
    ref = np.array([_geodesic_km(*x) for x in zip(la1, lo1, la2, lo2, strict=True)])
    assert np.all(np.isfinite(ours))
    assert np.max(np.abs(ours - ref) / ref) < 0.005
    assert ours[-2] < 120


def test_antipode_is_half_circumference():
    assert haversine_km(0, 0, 0, 180) == pytest.approx(np.pi * EARTH_RADIUS_KM)
    assert haversine_km(33.3, -20.0, -33.3, 160.0) == pytest.approx(np.pi * EARTH_RADIUS_KM)


def test_broadcasting():
    d = haversine_km(np.zeros((3, 1)), np.zeros((3, 1)), np.zeros(4), np.arange(4.0))
    assert d.shape == (3, 4)


def test_geoguessr_score():
    assert geoguessr_score(0) == 5000
    assert geoguessr_score(1492.7) == pytest.approx(5000 / np.e)
    # Map-size rule: on a map 10x smaller the same fraction falls at a tenth of the distance.
    assert geoguessr_score(149.27, map_size_km=1492.7) == pytest.approx(5000 / np.e)
    assert np.all(np.diff(geoguessr_score(np.linspace(0, 20000, 50))) < 0)
    with pytest.raises(ValueError):
        geoguessr_score(1.0, map_size_km=0)


def test_metrics_on_known_distances():
    d = np.array([0.5, 10, 100, 500, 1000, 3000])
    m = metrics_from_distances(d)
    assert m["acc_km"] == {
        "1": pytest.approx(100 / 6),
        "25": pytest.approx(200 / 6),
        "200": pytest.approx(300 / 6),
        "750": pytest.approx(400 / 6),
        "2500": pytest.approx(500 / 6),
    }
    assert m["median_km"] == pytest.approx(300)
    assert m["mean_km"] == pytest.approx(d.mean())
    assert m["geoguessr_mean"] == pytest.approx(np.mean(5000 * np.exp(-d / 1492.7)))
    assert m["n"] == 6


def test_geo_metrics_perfect_and_empty():
    m = geo_metrics([1, 2], [3, 4], [1, 2], [3, 4])
    assert m["acc_km"]["1"] == 100 and m["median_km"] == 0 and m["geoguessr_mean"] == 5000
    assert metrics_from_distances([])["n"] == 0
