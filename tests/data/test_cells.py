"""cells.json: the one reader and writer, validated record by record."""

from __future__ import annotations

import json

import numpy as np
import pytest

from img2loc.data.cells import read_cells, write_cells
from img2loc.errors import FormatError, Img2locError
from img2loc.geo import CellSet


def _clustered(rng, n_per=300):
    paris = np.c_[rng.normal(48.85, 0.05, n_per), rng.normal(2.35, 0.05, n_per)]
    ny = np.c_[rng.normal(40.7, 0.05, n_per), rng.normal(-74.0, 0.05, n_per)]
    pts = np.r_[paris, ny]
    return pts[:, 0], pts[:, 1]


@pytest.fixture
def doc() -> dict:
    cells = CellSet.build([48.85, 48.86, 40.7], [2.35, 2.36, -74.0], min_samples=1, max_samples=2)
    return cells.to_dict(polygons=False)


def test_json_round_trip(tmp_path, rng):
    lat, lon = _clustered(rng)
    cells = CellSet.build(lat, lon, min_samples=20, max_samples=100)
    path = tmp_path / "cells.json"
    write_cells(cells, path)
    raw = json.loads(path.read_text())
    assert raw["params"]["max_samples"] == 100
    rec = raw["cells"][0]
    assert {"token", "level", "parent", "lat", "lon", "count", "polygon"} <= set(rec)
    back = read_cells(path)
    assert np.array_equal(back.ids, cells.ids)
    assert np.array_equal(back.counts, cells.counts)
    assert np.array_equal(back.parent, cells.parent)
    assert np.allclose(back.center_lat, cells.center_lat, atol=1e-6)
    assert np.array_equal(back.labels(lat, lon), cells.labels(lat, lon))
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left no temp file


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="cells build"):
        read_cells(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_cells(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"format": "geojson"}')
    with pytest.raises(ValueError, match="not an img2loc cell set"):
        read_cells(tmp_path / "other.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(FormatError, match="JSON object"):
        read_cells(tmp_path / "list.json")


BAD_RECORDS = [
    (lambda d: d["cells"][1].pop("lat"), r"cells\[1\]: field 'lat' is missing"),
    (lambda d: d["cells"][0].pop("token"), r"cells\[0\]: field 'token'"),
    (lambda d: d["cells"][0].update(token="zz!"), r"cells\[0\]: field 'token'.*not an S2 token"),
    (lambda d: d["cells"][0].update(lon="2.3"), r"cells\[0\]: field 'lon' must be a number"),
    (lambda d: d["cells"][0].update(lat=95.0), r"cells\[0\]: field 'lat' must be a number in"),
    (lambda d: d["cells"][0].update(count=-1), r"cells\[0\]: field 'count'"),
    (lambda d: d["cells"].__setitem__(0, "x"), r"cells\[0\] must be an object"),
    (lambda d: d.pop("cells"), r"field 'cells'"),
    (lambda d: d.update(cells=[]), r"field 'cells'"),
    (lambda d: d.update(params=[1]), r"field 'params'"),
    (lambda d: d.update(version="1"), r"field 'version'"),
    (lambda d: d["cells"].append(dict(d["cells"][0])), r"duplicate cells"),
]


@pytest.mark.parametrize(("spoil", "message"), BAD_RECORDS)
def test_malformed_records_name_the_file_and_field(tmp_path, doc, spoil, message):
    spoil(doc)
    path = tmp_path / "cells.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match=message) as err:
        read_cells(path)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)
    assert isinstance(err.value, Img2locError)


def test_from_dict_validates_without_a_file(doc):
    del doc["cells"][0]["lon"]
    with pytest.raises(FormatError, match=r"cells\[0\]: field 'lon' is missing"):
        CellSet.from_dict(doc)
