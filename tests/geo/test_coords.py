import numpy as np
import pytest

from img2loc.geo import CoordinateError, validate_coords
from img2loc.geo.coords import normalize_lon


def test_valid_and_normalised():
    lat, lon = validate_coords([0, 90, -90], [180, -180, 179.5])
    assert lat.dtype == np.float64
    assert lon.tolist() == [-180, -180, 179.5]


@pytest.mark.parametrize(
    ("lat", "lon", "match"),
    [
        ([0, 91], [0, 0], "latitude.*outside.*row 1"),
        ([0, 0], [0, 200], "longitude.*outside.*row 1"),
        ([np.nan, 0], [0, 0], "not finite.*row 0"),
        ([0, 0], [0, np.inf], "not finite.*row 1"),
    ],
)
def test_rejects_with_row(lat, lon, match):
    with pytest.raises(CoordinateError, match=match):
        validate_coords(lat, lon)


def test_rejection_names_rows():
    with pytest.raises(CoordinateError, match=r"'b.jpg'.*lat=-95"):
        validate_coords([1, -95], [1, 1], rows=["a.jpg", "b.jpg"])


def test_many_bad_rows_are_summarised():
    with pytest.raises(CoordinateError, match="and 5 more"):
        validate_coords(np.full(10, 100.0), np.zeros(10))


def test_wrap_lon_and_shape_checks():
    _, lon = validate_coords([0, 0], [200, 360], wrap_lon=True)
    assert lon.tolist() == [-160, 0]
    with pytest.raises(CoordinateError, match="shape"):
        validate_coords([0, 0], [0])
    assert normalize_lon(540.0) == -180.0
