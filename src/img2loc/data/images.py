"""Safe image opening shared by import, sharding and inference.

Every failure becomes an :class:`ImageError` with a message a user can act on:
empty files, non-images (an HTML error page saved as .jpg), truncated data,
decompression bombs, unsupported formats.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

try:  # HEIC/HEIF from phones
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF = True
except ImportError:  # pragma: no cover - pillow-heif is a base dependency
    HEIF = False

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".heic", ".heif", ".tif", ".tiff", ".webp", ".bmp", ".gif"}
)
#: Refuse images above this many pixels (a 100 MP bomb is ~10 GB of RGB floats later on).
MAX_PIXELS = 90_000_000


class ImageError(ValueError):
    """An image cannot be used; the message says why."""


def _sniff(head: bytes) -> str:
    h = head.lstrip()[:15].lower()
    if h.startswith((b"<!doctype", b"<html", b"<?xml", b"<head")):
        return "an HTML/XML document, not an image (a saved error page?)"
    if h.startswith((b"{", b"[")):
        return "JSON text, not an image"
    return "not a recognised image format"


def _read(src: str | os.PathLike[str] | bytes, name: str) -> bytes:
    if isinstance(src, bytes):
        data = src
    else:
        p = Path(src)
        if not p.exists():
            raise ImageError(f"{name}: no such file")
        if p.is_dir():
            raise ImageError(f"{name}: is a directory")
        try:
            data = p.read_bytes()
        except OSError as e:
            raise ImageError(f"{name}: cannot be read ({e.strerror or e})") from None
    if not data:
        raise ImageError(f"{name}: empty file (0 bytes)")
    return data


@contextmanager
def _image_errors(name: str, data: bytes) -> Iterator[None]:
    """Turn whatever Pillow (and its plugins) raise on bad data into :class:`ImageError`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module="PIL")
            yield
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{name}: {_sniff(data[:64])}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{name}: decompression bomb refused ({e}); downscale it first") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError) as e:
        raise ImageError(f"{name}: corrupt or truncated image ({e})") from None


def _check_size(im: Image.Image, name: str, max_pixels: int) -> None:
    w, h = im.size
    if w * h > max_pixels:
        raise ImageError(
            f"{name}: {w}x{h} = {w * h / 1e6:.0f} MP is over the {max_pixels / 1e6:.0f} MP "
            "limit (possible decompression bomb); downscale it first"
        )


def peek_image(
    src: str | os.PathLike[str] | bytes,
    *,
    max_pixels: int = MAX_PIXELS,
    name: str | None = None,
) -> tuple[tuple[int, int], Image.Exif]:
    """Size and EXIF of an image without decoding its pixels; raises :class:`ImageError`.

    The same checks as :func:`open_image` short of decoding, so a file that passes
    here fails later only if its pixel data is corrupt.
    """
    if name is None:
        name = "<bytes>" if isinstance(src, bytes) else str(src)
    data = _read(src, name)
    with _image_errors(name, data), Image.open(io.BytesIO(data)) as im:
        _check_size(im, name, max_pixels)
        return im.size, im.getexif()


def open_image(
    src: str | os.PathLike[str] | bytes,
    *,
    max_pixels: int = MAX_PIXELS,
    draft: tuple[int, int] | None = None,
    name: str | None = None,
) -> Image.Image:
    """Open and fully decode an image, EXIF orientation applied, in RGB.

    ``draft`` lets JPEG decode at a reduced scale (>= the given size), which makes
    12 MP photos several times faster to load when only a small version is needed.
    The returned image keeps its EXIF in ``image.info['exif_obj']`` for GPS reading.
    ``name`` labels error messages (default: the path, or ``<bytes>``).
    Every failure is an :class:`ImageError` (a ``ValueError``) saying why.
    """
    if name is None:
        name = "<bytes>" if isinstance(src, bytes) else str(src)
    data = _read(src, name)
    with _image_errors(name, data):
        src_im = Image.open(io.BytesIO(data))
        _check_size(src_im, name, max_pixels)
        exif = src_im.getexif()
        if draft is not None and src_im.format == "JPEG":
            src_im.draft("RGB", draft)
        src_im.load()
        im = ImageOps.exif_transpose(src_im) or src_im
        im.info["exif_obj"] = exif
        return to_rgb(im)


def to_rgb(im: Image.Image) -> Image.Image:
    """RGB for any mode: alpha composited on white, 16-bit scaled, CMYK/palette converted."""
    if getattr(im, "n_frames", 1) > 1:
        im.seek(0)
    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        import numpy as np

        a = np.asarray(im, dtype=np.float64)
        scale = 255.0 / 65535.0 if a.max() > 255 else 1.0
        return Image.fromarray((a * scale).clip(0, 255).astype(np.uint8)).convert("RGB")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        bg = Image.new("RGB", rgba.size, (255, 255, 255))
        bg.paste(rgba, mask=rgba.getchannel("A"))
        return bg
    return im.convert("RGB")
