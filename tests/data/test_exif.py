import math
from fractions import Fraction
from pathlib import Path

import pytest
from PIL import Image

from img2loc.data.exif import dms_to_degrees, gps_from_exif_dict, read_gps
from tests.conftest import SHARED
from tests.data.conftest import gps_exif, jpeg_bytes

EXIF_DIR = SHARED / "photos-exif-gps"


def test_dms_variants():
    assert dms_to_degrees((Fraction(41), Fraction(51, 1), Fraction(18))) == pytest.approx(41.855)
    assert dms_to_degrees((41.0, 51.18, 0.0)) == pytest.approx(41.853)  # decimal minutes
    assert dms_to_degrees((48.0, 53.32358, math.nan)) == pytest.approx(48 + 53.32358 / 60)
    assert dms_to_degrees(((41, 1), (30, 1), (0, 0))) == pytest.approx(41.5)  # raw 0/0 secs
    assert math.isnan(dms_to_degrees((math.nan, math.nan, math.nan)))
    assert math.isnan(dms_to_degrees(()))


@pytest.mark.parametrize(
    ("gps", "expected", "reason"),
    [
        ({1: "S", 2: (33.0, 52.0, 0.0), 3: "E", 4: (151.0, 12.0, 0.0)}, (-33.8667, 151.2), ""),
        ({1: b"N\x00", 2: (10.0, 0, 0), 3: b"W", 4: (20.0, 0, 0)}, (10.0, -20.0), ""),
        ({1: "", 2: (10.0, 0, 0), 3: "", 4: (20.0, 0, 0)}, (10.0, 20.0), ""),  # refs missing
        ({1: "N", 2: (0.0, 0.0, 0.0), 3: "E", 4: (0.0, 0.0, 0.0)}, None, "0,0"),
        ({1: "\x00", 2: (math.nan,) * 3, 3: "\x00", 4: (math.nan,) * 3}, None, "empty"),
        ({1: "N", 2: (95.0, 0, 0), 3: "E", 4: (10.0, 0, 0)}, None, "out of range"),
        ({1: "N", 2: (10.0, 0, 0)}, None, "no GPS"),
        ({}, None, "no GPS"),
    ],
)
def test_gps_dict(gps, expected, reason):
    r = gps_from_exif_dict(gps)
    if expected is None:
        assert not r.ok and reason in r.reason
    else:
        assert r.ok and (r.lat, r.lon) == pytest.approx(expected, abs=1e-4)


def test_round_trip_through_a_real_jpeg(tmp_path: Path, rng):
    p = tmp_path / "x.jpg"
    p.write_bytes(jpeg_bytes(rng, exif=gps_exif(-22.9519, -43.2105)))
    with Image.open(p) as im:
        r = read_gps(im)
    assert (r.lat, r.lon) == pytest.approx((-22.9519, -43.2105), abs=1e-5)


@pytest.mark.skipif(not EXIF_DIR.exists(), reason="shared data absent")
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("drewnoakes__heic__IMG_1034.heic", (23.1779, 113.3943)),  # HEIC
        ("drewnoakes__heic__exif-at-eof.heic", (47.2071, 106.2431)),  # EXIF after the image
        ("drewnoakes__jpg__Nikon_D5000.jpg", (48.8887, 21.0433)),  # NaN seconds
        ("ianare__jpg__Kodak_CX7530.jpg", (-0.3713, 36.0564)),  # south, decimal minutes
        ("drewnoakes__jpg__Apple_iPhone_6.jpg", (51.7624, -0.3179)),  # west
        ("drewnoakes__jpg__Leica_T_(Typ_701).jpg", None),  # 0/0 rationals
        ("drewnoakes__jpg__Issue_308.jpg", None),  # 0,0 placeholder
    ],
)
def test_real_camera_files(name, expected):
    from img2loc.data import images  # noqa: F401 — registers the HEIF opener

    with Image.open(EXIF_DIR / name) as im:
        r = read_gps(im)
    if expected is None:
        assert not r.ok and r.reason
    else:
        assert (r.lat, r.lon) == pytest.approx(expected, abs=1e-3)
