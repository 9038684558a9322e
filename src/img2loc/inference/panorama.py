"""360° equirectangular panoramas: detect them and render perspective views.

A panorama fed to the model as one image would be squashed and centre-cropped
to a quarter of its field of view; rendered as several ordinary views (like the
Street View views the model learns from) and predicted as one multi-view place,
it gives the model all of it.

Detection (:func:`detect_panorama`), for images of aspect 2:1 only:

* ``xmp``: the JPEG's XMP (APP1 segment) says ``GPano:ProjectionType`` is
  ``equirectangular``, as phones, 360° cameras and Mapillary write it;
* ``seam``: without XMP (metadata stripped by a resizer, as in
  ``shared/data/examples-cc-by-sa``), the left and right edges meet without a
  seam: a 360° image wraps around, an ordinary photo's edges are unrelated.
  On the shared data this flags all 9 panoramas and 1 of 2369 ordinary 2:1 Street
  View images (a blank one, which the texture floor then rejects).

Geometry (:func:`render_views`): column ``u`` of a W-wide panorama looks at
heading ``(u + 0.5) / W * 360 - 180`` degrees relative to the panorama's centre,
row ``v`` at elevation ``90 - (v + 0.5) / H * 180``. A view at heading ``h`` is a
gnomonic (pinhole) projection centred on that direction, sampled bilinearly,
wrapping around horizontally.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

#: Views rendered from a panorama by default (headings 0, 90, 180, 270).
DEFAULT_PANO_VIEWS = 4
#: Horizontal field of view of each rendered view (degrees): close to the Street
#: View and phone photos the model is trained on; 4 views at 100° cover 360°.
DEFAULT_FOV = 100.0
#: Width / height of an equirectangular image, and the tolerance on it.
ASPECT, ASPECT_TOL = 2.0, 0.02
#: Largest seam ratio (see :func:`seam_ratio`) of a panorama. The 9 shared panoramas
#: measure 0.90-1.25; ordinary 2:1 Street View images 1.38 and up (1st percentile 1.85).
SEAM_MAX = 1.32
#: Ordinary photos with almost no texture (blank frames) have no seam to see.
SEAM_MIN_TEXTURE = 2.0

_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_PROJECTION = re.compile(r"ProjectionType\s*(?:=\s*[\"']|>)\s*([A-Za-z_-]+)")


def jpeg_xmp(data: bytes) -> str | None:
    """The XMP packet of a JPEG (its APP1 ``http://ns.adobe.com/xap/1.0/`` segment), or None.

    Walks the marker segments up to the image data; nothing is decoded.
    """
    if not data.startswith(b"\xff\xd8"):
        return None
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None  # not a marker: corrupt header, give up quietly
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image: no metadata after this
            return None
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if length < 2:
            return None
        seg = data[i + 4 : i + 2 + length]
        if marker == 0xE1 and seg.startswith(_XMP_HEADER):
            return seg[len(_XMP_HEADER) :].decode("utf-8", "replace")
        i += 2 + length
    return None


def xmp_projection(xmp: str | bytes | None) -> str | None:
    """``GPano:ProjectionType`` of an XMP packet (attribute or element form), lower case."""
    if xmp is None:
        return None
    text = xmp.decode("utf-8", "replace") if isinstance(xmp, bytes) else xmp
    m = _PROJECTION.search(text)
    return m.group(1).lower() if m else None


def is_equirectangular_size(width: int, height: int) -> bool:
    """Whether an image has the 2:1 shape of a full equirectangular panorama."""
    return height > 0 and abs(width / height - ASPECT) <= ASPECT * ASPECT_TOL


def seam_ratio(rgb: NDArray[Any]) -> tuple[float, float]:
    """(seam ratio, texture) of an HxWx3 image.

    The ratio is the mean difference between the first and last columns over the
    mean difference between neighbouring columns at both edges (plus one grey level,
    against noise-free images): about 1 when the edges continue each other (a 360°
    wrap), well above 1 for an ordinary photo. Rows near the poles are left out
    (stitching smears them). Texture: the mean neighbouring-column difference.
    """
    a = np.asarray(rgb, np.float32)
    h = a.shape[0]
    m = a[h // 8 : h - h // 8] if h >= 8 else a
    wrap = float(np.abs(m[:, 0] - m[:, -1]).mean())
    edge = float((np.abs(m[:, 0] - m[:, 1]).mean() + np.abs(m[:, -1] - m[:, -2]).mean()) / 2)
    texture = float(np.abs(np.diff(m, axis=1)).mean())
    return wrap / (edge + 1.0), texture


def detect_panorama(im: Image.Image, data: bytes | None = None) -> str | None:
    """``"xmp"`` or ``"seam"`` when ``im`` is a 360° equirectangular panorama, else None.

    ``data``: the encoded file (or its first 64 KiB), where the XMP is read from;
    without it the XMP Pillow kept in ``im.info`` is used.
    """
    w, h = im.size
    if not is_equirectangular_size(w, h):
        return None
    xmp: str | bytes | None = jpeg_xmp(data) if data is not None else None
    if xmp is None:
        xmp = im.info.get("xmp")
    proj = xmp_projection(xmp)
    if proj == "equirectangular":
        return "xmp"
    if proj is not None:
        return None  # the file says what it is (e.g. cylindrical): believe it
    # Integer box reduction: resampling filters treat the border columns differently
    # from the rest, which would fake (or hide) a seam.
    k = w // 512
    small = im.reduce(k) if k >= 2 else im
    ratio, texture = seam_ratio(np.asarray(small.convert("RGB")))
    return "seam" if ratio <= SEAM_MAX and texture >= SEAM_MIN_TEXTURE else None


def view_headings(n: int, start: float = 0.0) -> list[float]:
    """``n`` headings (degrees) evenly around the circle from ``start``."""
    if n < 1:
        raise ValueError(f"need at least one view, got {n}")
    return [(start + 360.0 * k / n) % 360.0 for k in range(n)]


def pano_width_for(size: int, fov_deg: float = DEFAULT_FOV) -> int:
    """Panorama width whose pixels match the centre pixels of a ``size``-wide view.

    Decoding (JPEG draft) and downscaling to about this width keeps the bilinear
    sampling free of aliasing without wasting time on a huge panorama.
    """
    return max(8, math.ceil(math.pi * size / math.tan(math.radians(fov_deg) / 2)))


def _view_angles(
    size: int, fov_deg: float, pitch_deg: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(elevation, heading offset) in degrees of every pixel of a view looking at heading 0."""
    if not 0.0 < fov_deg < 180.0:
        raise ValueError(f"field of view must be in (0, 180) degrees, got {fov_deg}")
    f = (size / 2) / math.tan(math.radians(fov_deg) / 2)
    c = np.arange(size, dtype=np.float64) + 0.5 - size / 2
    x = np.broadcast_to(c[None, :], (size, size))  # right
    y = np.broadcast_to(-c[:, None], (size, size))  # up
    p = math.radians(pitch_deg)
    # Tilt the camera by the pitch about its horizontal axis; headings are then a
    # plain shift in longitude, so one grid serves every view.
    yp = y * math.cos(p) + f * math.sin(p)
    zp = -y * math.sin(p) + f * math.cos(p)
    elev = np.degrees(np.arctan2(yp, np.hypot(x, zp)))
    return elev, np.degrees(np.arctan2(x, zp))


def render_views(
    pano: NDArray[Any],
    headings: Sequence[float],
    fov_deg: float = DEFAULT_FOV,
    size: int = 256,
    pitch_deg: float = 0.0,
) -> NDArray[Any]:
    """Perspective views (N, size, size, C) of an equirectangular panorama (H, W, C).

    Bilinear sampling, wrapping around horizontally and clamped at the poles. uint8
    panoramas give uint8 views (rounded); float panoramas give float32 views.
    """
    a = np.asarray(pano)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[0] < 2 or a.shape[1] < 2:
        raise ValueError(f"expected an (H, W, C) panorama, got shape {a.shape}")
    h, w = a.shape[:2]
    elev, dlon = _view_angles(size, fov_deg, pitch_deg)
    hd = np.asarray(headings, np.float64).reshape(-1, 1, 1)
    u = ((dlon[None] + hd) / 360.0 + 0.5) * w - 0.5  # (N, S, S)
    v = np.broadcast_to((0.5 - elev / 180.0) * h - 0.5, u.shape)
    v = np.clip(v, 0.0, h - 1.0)
    u0 = np.floor(u)
    fu = (u - u0)[..., None].astype(np.float32)
    u0i = u0.astype(np.int64) % w
    u1i = (u0i + 1) % w
    v0i = np.minimum(np.floor(v).astype(np.int64), h - 2)
    fv = (v - v0i)[..., None].astype(np.float32)
    src = a.astype(np.float32, copy=False)
    top = src[v0i, u0i] * (1 - fu) + src[v0i, u1i] * fu
    bot = src[v0i + 1, u0i] * (1 - fu) + src[v0i + 1, u1i] * fu
    out = top * (1 - fv) + bot * fv
    res: NDArray[Any] = (
        np.clip(np.rint(out), 0, 255).astype(np.uint8)
        if a.dtype == np.uint8
        else out.astype(np.float32)
    )
    return res


def panorama_views(
    im: Image.Image,
    n_views: int = DEFAULT_PANO_VIEWS,
    size: int = 256,
    fov_deg: float = DEFAULT_FOV,
) -> tuple[list[float], NDArray[np.uint8]]:
    """(headings, (N, size, size, 3) uint8 views) of an RGB panorama image.

    A panorama much wider than the views need is first downscaled (area filter),
    so each view pixel averages the panorama pixels it covers.
    """
    need = pano_width_for(size, fov_deg)
    w, h = im.size
    if w > 1.5 * need:
        im = im.resize((need, max(2, round(need * h / w))), Image.Resampling.BOX)
    headings = view_headings(n_views)
    views = render_views(np.asarray(im.convert("RGB")), headings, fov_deg, size)
    return headings, views
