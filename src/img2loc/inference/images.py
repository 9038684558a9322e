"""Turn any image input (path, URL, bytes, PIL image, numpy array) into model input.

Decoding goes through :func:`img2loc.data.images.open_image` (HEIC, EXIF
orientation, CMYK/alpha/16-bit, bomb guard) with JPEG draft mode sized to the
model, so a 12 MP photo is decoded at 1/8 scale instead of in full.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

from img2loc.data.exif import GpsResult, gps_from_exif
from img2loc.data.images import ImageError, open_image, to_rgb
from img2loc.data.io import is_url, read_bytes
from img2loc.inference.panorama import (
    DEFAULT_FOV,
    detect_panorama,
    is_equirectangular_size,
    pano_width_for,
    panorama_views,
)
from img2loc.inference.preprocess import PreprocessConfig, preprocess


@dataclass(frozen=True)
class ImageBytes:
    """Encoded image data with the name to report it under (e.g. ``-`` for stdin)."""

    name: str
    data: bytes


@dataclass(frozen=True)
class BadInput:
    """An input known to be unusable before decoding (e.g. a glob matching nothing)."""

    name: str
    error: str


ImageInput: TypeAlias = (
    "str | os.PathLike[str] | bytes | ImageBytes | BadInput | Image.Image | NDArray[Any]"
)


@dataclass(frozen=True)
class LoadedImage:
    """Model input of one image and the GPS position in its EXIF, if any.

    A 360° panorama also carries ``views`` (V, 3, S, S): perspective views rendered
    at ``headings`` (``x`` is the first of them); ``panorama`` says how it was
    recognised (``xmp`` or ``seam``, see :mod:`img2loc.inference.panorama`).
    """

    x: NDArray[np.float32]
    gps: GpsResult
    views: NDArray[np.float32] | None = None
    headings: tuple[float, ...] = ()
    panorama: str | None = None

    @property
    def inputs(self) -> NDArray[np.float32]:
        """Every model input of this image: (V, 3, S, S), V = 1 unless a panorama."""
        return self.x[None] if self.views is None else self.views


def source_name(src: ImageInput) -> str:
    """How an input is named in results and messages."""
    if isinstance(src, ImageBytes | BadInput):
        return src.name
    if isinstance(src, bytes):
        return "<bytes>"
    if isinstance(src, Image.Image):
        return str(getattr(src, "filename", "") or "<PIL image>")
    if isinstance(src, np.ndarray):
        return f"<array {'x'.join(str(d) for d in src.shape)} {src.dtype}>"
    return os.fspath(src)


def reduce_for_preprocess(im: Image.Image, size: int) -> Image.Image:
    """Box-reduce big images to at least ``size`` on the shorter side (what JPEG draft does).

    HEIC/PNG/TIFF cannot be decoded at reduced scale; an integer box reduction
    first makes the bicubic resize that follows ~20x cheaper on 12 MP photos.
    """
    k = min(im.size) // size
    return im.reduce(k) if k >= 2 else im


def array_to_image(a: NDArray[Any]) -> Image.Image:
    """RGB image from an HxW, HxWx1, HxWx3 or HxWx4 array (uint8, uint16, or float in [0, 1])."""
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or 0 in a.shape:
        raise ImageError(
            f"array of shape {a.shape} is not an image; pass HxW, HxWx3 or HxWx4 (channels last)"
        )
    if a.dtype == np.uint16:
        a = (a.astype(np.float32) * (255.0 / 65535.0) + 0.5).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ImageError("array holds NaN or infinite values")
        a = (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise ImageError(f"array dtype {a.dtype} unsupported; use uint8, uint16 or float in [0, 1]")
    return to_rgb(Image.fromarray(np.ascontiguousarray(a)))


def open_input(src: ImageInput, draft: int) -> Image.Image:
    """Decoded RGB image of any input; JPEGs decode at reduced scale (>= ``draft`` px)."""
    size = (draft, draft)
    if isinstance(src, BadInput):
        raise ImageError(f"{src.name}: {src.error}")
    if isinstance(src, ImageBytes):
        return open_image(src.data, draft=size, name=src.name)
    if isinstance(src, bytes):
        return open_image(src, draft=size)
    if isinstance(src, Image.Image):
        im = ImageOps.exif_transpose(src) or src
        rgb = to_rgb(im)
        rgb.info.setdefault("exif_obj", src.getexif())
        return rgb
    if isinstance(src, np.ndarray):
        return array_to_image(src)
    ref = os.fspath(src)
    if is_url(ref):
        try:
            data = read_bytes(ref)
        except OSError as e:
            raise ImageError(f"{ref}: download failed ({e})") from None
        return open_image(data, draft=size, name=ref)
    return open_image(Path(ref), draft=size, name=ref)


#: Bytes read from the start of a file to find its XMP (APP1 segments are at most 64 KiB).
_HEAD_BYTES = 1 << 17


def _size(src: ImageInput) -> tuple[int, int] | None:
    """Width and height from the header alone (None when unreadable: open_input says why)."""
    if isinstance(src, Image.Image):
        return src.size
    if isinstance(src, np.ndarray):
        return (src.shape[1], src.shape[0]) if src.ndim >= 2 else None
    if isinstance(src, ImageBytes | bytes):
        f: Any = io.BytesIO(src.data if isinstance(src, ImageBytes) else src)
    elif isinstance(src, str | os.PathLike):
        f = os.fspath(src)
    else:
        return None
    with warnings.catch_warnings():  # a bomb is refused, with its reason, by open_input
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module="PIL")  # corrupt EXIF
        try:
            with Image.open(f) as im:
                return im.size
        except Exception:
            return None


def _head(src: ImageInput) -> bytes | None:
    """The start of the encoded image, where its XMP is (None for decoded images)."""
    if isinstance(src, ImageBytes | bytes):
        return (src.data if isinstance(src, ImageBytes) else src)[:_HEAD_BYTES]
    if isinstance(src, str | os.PathLike):
        try:
            with open(os.fspath(src), "rb") as f:
                return f.read(_HEAD_BYTES)
        except OSError:
            return None
    return None


def load_input(
    src: ImageInput,
    cfg: PreprocessConfig,
    pano_views: int = 0,
    fov_deg: float = DEFAULT_FOV,
) -> LoadedImage:
    """Model input (3, S, S) float32 and EXIF GPS of one image; raises :class:`ImageError`.

    With ``pano_views > 0`` a 360° equirectangular panorama (see
    :func:`~img2loc.inference.panorama.detect_panorama`) is rendered into that many
    perspective views at ``resize_size``, each preprocessed like a photo.
    """
    if pano_views <= 0:
        im = open_input(src, cfg.resize_size)
        gps = gps_from_exif(im.info.get("exif_obj"))
        return LoadedImage(preprocess(reduce_for_preprocess(im, cfg.resize_size), cfg), gps)
    if isinstance(src, str | os.PathLike) and is_url(os.fspath(src)):
        ref = os.fspath(src)
        try:
            src = ImageBytes(ref, read_bytes(ref))  # download once: XMP and pixels
        except OSError as e:
            raise ImageError(f"{ref}: download failed ({e})") from None
    # Only 2:1 images can be panoramas: every other photo costs one header parse here.
    size = _size(src)
    if size is None or not is_equirectangular_size(*size):
        return load_input(src, cfg)
    head = _head(src)
    # Decode at the resolution the rendered views need, not the model's input size, and
    # at >= 512 px wide: the seam test is calibrated there.
    need = pano_width_for(cfg.resize_size, fov_deg)
    im = open_input(src, max(need // 2, 256))
    gps = gps_from_exif(im.info.get("exif_obj"))
    kind = detect_panorama(im, head)
    if kind is None:
        return LoadedImage(preprocess(reduce_for_preprocess(im, cfg.resize_size), cfg), gps)
    headings, views = panorama_views(im, pano_views, cfg.resize_size, fov_deg)
    xs = np.stack([preprocess(Image.fromarray(v), cfg) for v in views])
    return LoadedImage(xs[0], gps, xs, tuple(headings), kind)
