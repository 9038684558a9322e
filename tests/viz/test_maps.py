"""Maps zoom to regional data and label what their colours count."""

import numpy as np

from img2loc.geo import CellSet
from img2loc.viz import maps
from tests.conftest import random_sphere


def test_regional_points_are_framed_world_points_are_not(captured, tmp_path):
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(42.4, 46.5, 200), rng.uniform(13.5, 19.4, 200)  # Croatia
    maps.plot_points(lat, lon, tmp_path / "a.png")
    x0, x1 = captured[-1].axes[0].get_xlim()
    y0, y1 = captured[-1].axes[0].get_ylim()
    assert 10 < x0 < 13.5 and 19.4 < x1 < 23 and 39 < y0 < 42.4 and 46.5 < y1 < 50
    wlat, wlon = random_sphere(rng, 300)
    maps.plot_points(wlat, wlon, tmp_path / "b.png")
    assert captured[-1].axes[0].get_xlim() == (-180, 180)
    assert captured[-1].axes[0].get_ylim() == (-90, 90)


def test_cells_map_frames_the_cells_and_counts_what_was_counted(captured, tmp_path):
    rng = np.random.default_rng(1)
    lat, lon = rng.uniform(45, 46, 400), rng.uniform(15, 16.5, 400)
    groups = np.arange(400) // 4  # 4 views a place
    for kw, label in (({"groups": groups}, "places per leaf cell"), ({}, "photos per leaf cell")):
        cells = CellSet.build(lat, lon, min_samples=5, max_samples=40, min_level=6, **kw)
        maps.plot_cells(cells, tmp_path / "c.png")
        fig = captured[-1]
        assert fig.axes[1].get_ylabel() == label  # the colour bar
        x0, x1 = fig.axes[0].get_xlim()
        assert -180 < x0 < 15 and 16.5 < x1 < 180 and x1 - x0 < 30
