"""GPS coordinates from EXIF, robust to the odd tags real cameras write.

Seen in the wild (and in ../shared/data/photos-exif-gps): rationals of 0/0
(NaN), seconds missing or NaN, degrees+decimal minutes, empty or NUL refs,
0,0 placeholders from phones without a fix, and HEIC files with EXIF at EOF.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

from PIL import Image

GPS_IFD = 0x8825
_LAT_REF, _LAT, _LON_REF, _LON = 1, 2, 3, 4


@dataclass(frozen=True)
class GpsResult:
    """Coordinates, or None with the reason they could not be read."""

    lat: float | None
    lon: float | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.lat is not None and self.lon is not None


def _to_float(v: Any) -> float:
    """A number from any EXIF value; NaN for anything that is not one (never raises)."""
    try:
        if isinstance(v, tuple) and len(v) == 2:  # raw (num, den)
            num, den = float(v[0]), float(v[1])
            return num / den if den else math.nan
        return float(v)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        # OverflowError: a corrupt rational such as 10**400 / 1 does not fit a float.
        return math.nan


def dms_to_degrees(value: Any) -> float:
    """Degrees from an EXIF (deg, min, sec) triple; NaN/missing trailing parts count as 0.

    Never raises: a value that is not a number or a sequence of numbers gives NaN.
    """
    if isinstance(value, (int, float)) or hasattr(value, "numerator"):
        return _to_float(value)
    if not isinstance(value, (tuple, list)):  # str, bytes, dict, objects: not a triple
        return math.nan
    parts = [_to_float(x) for x in value]
    if not parts or math.isnan(parts[0]):
        return math.nan
    deg = parts[0]
    mins = parts[1] if len(parts) > 1 and not math.isnan(parts[1]) else 0.0
    secs = parts[2] if len(parts) > 2 and not math.isnan(parts[2]) else 0.0
    return deg + mins / 60.0 + secs / 3600.0


def _ref(v: Any) -> str:
    if isinstance(v, bytes):
        v = v.decode("ascii", "ignore")
    return str(v or "").strip("\x00 ").upper()[:1]


def gps_from_exif_dict(gps: dict[int, Any]) -> GpsResult:
    """Parse a GPS IFD (tag id -> value) to signed decimal degrees."""
    if not gps or _LAT not in gps or _LON not in gps:
        return GpsResult(None, None, "no GPS position in EXIF")
    lat, lon = dms_to_degrees(gps[_LAT]), dms_to_degrees(gps[_LON])
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return GpsResult(None, None, "EXIF GPS position is empty or unreadable (0/0 values)")
    lat_ref, lon_ref = _ref(gps.get(_LAT_REF)), _ref(gps.get(_LON_REF))
    if lat_ref == "S":
        lat = -abs(lat)
    if lon_ref == "W":
        lon = -abs(lon)
    if lat == 0.0 and lon == 0.0:
        return GpsResult(None, None, "EXIF GPS is 0,0 (a placeholder written without a fix)")
    if abs(lat) > 90 or abs(lon) > 180:
        return GpsResult(None, None, f"EXIF GPS out of range (lat={lat}, lon={lon})")
    return GpsResult(lat, lon)


def gps_from_exif(exif: Image.Exif | None) -> GpsResult:
    """GPS coordinates from an EXIF block (e.g. ``open_image(...).info["exif_obj"]``)."""
    try:
        with warnings.catch_warnings():  # the reason returned says it better than Pillow's warning
            warnings.filterwarnings("ignore", category=UserWarning, module="PIL")
            gps = dict(exif.get_ifd(GPS_IFD)) if exif else {}
    except Exception as e:
        return GpsResult(None, None, f"EXIF unreadable ({type(e).__name__}: {e})")
    return gps_from_exif_dict(gps)


def read_gps(image: Image.Image) -> GpsResult:
    """GPS coordinates of an opened image (JPEG, HEIC, TIFF, WebP, PNG with eXIf)."""
    try:
        exif = image.getexif()
    except Exception as e:
        return GpsResult(None, None, f"EXIF unreadable ({type(e).__name__}: {e})")
    return gps_from_exif(exif)
