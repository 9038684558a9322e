"""A seeded corpus of awkward photo files, generated on demand (nothing binary is committed).

:func:`write_bad_corpus` writes every case into a folder and returns what each
command should make of it. Used by tests/test_bad_inputs.py; run this module to
write the corpus somewhere to look at it::

    python -m tests.bad_inputs /tmp/bad
"""

from __future__ import annotations

import io
import struct
import sys
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, TiffImagePlugin

GPS_IFD = 0x8825


@dataclass(frozen=True)
class Case:
    """One file of the corpus.

    ``decodes``: the pixels are usable (predict/eval/shards must succeed on it);
    otherwise ``error`` is a fragment of the per-file message. ``gps``: whether
    ``data import folder`` finds a usable EXIF position (else it says why not).
    """

    decodes: bool
    error: str = ""
    gps: bool = False


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(w: int = 10_000, h: int = 10_000) -> bytes:
    """A real w x h greyscale PNG (100 MP of zeros) that is only ~100 KB on disk."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (w + 1)  # filter byte + w zero pixels
    body = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")
    )


def header_bomb_png(w: int = 20_000, h: int = 20_000) -> bytes:
    """A PNG header claiming w x h pixels (400 MP) and no pixel data: Pillow's hard limit."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IEND", b"")


def gps_exif(lat: float, lon: float) -> Image.Exif:
    """EXIF with a GPS position (any values, out-of-range ones included)."""

    def dms(x: float) -> tuple[Fraction, Fraction, Fraction]:
        d = int(abs(x))
        m = int((abs(x) - d) * 60)
        return Fraction(d), Fraction(m), Fraction((abs(x) - d - m / 60) * 3600).limit_denominator()

    exif = Image.Exif()
    exif[GPS_IFD] = {
        1: "N" if lat >= 0 else "S",
        2: dms(lat),
        3: "E" if lon >= 0 else "W",
        4: dms(lon),
    }
    return exif


def _pixels(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    base = np.linspace(rng.uniform(0, 255, 3), rng.uniform(0, 255, 3), h)[:, None, :]
    return np.clip(base + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)


def _encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def good_photos(rng: np.random.Generator) -> dict[str, tuple[bytes, tuple[float, float]]]:
    """Ordinary JPEGs with EXIF GPS: name -> (bytes, (lat, lon))."""
    out = {}
    for i, (la, lo) in enumerate([(48.85, 2.35), (35.68, 139.69), (-33.87, 151.21)]):
        im = Image.fromarray(_pixels(rng, 160, 120))
        out[f"good_{i}.jpg"] = (_encode(im, "JPEG", quality=85, exif=gps_exif(la, lo)), (la, lo))
    return out


def write_bad_corpus(folder: Path, seed: int = 0) -> dict[str, Case]:
    """Write the corpus (and three good photos) into ``folder``; name -> expected outcome."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    photo = Image.fromarray(_pixels(rng, 120, 90))
    jpeg = _encode(photo, "JPEG", quality=85)
    nan = TiffImagePlugin.IFDRational(0, 0)
    nan_exif = Image.Exif()
    nan_exif[GPS_IFD] = {1: "N", 2: (nan, nan, nan), 3: "E", 4: (nan, 0, 0)}
    partial_exif = Image.Exif()
    partial_exif[GPS_IFD] = {1: "N", 2: (Fraction(45), Fraction(30), Fraction(0))}  # no longitude
    # A GPS IFD pointer past the end of the EXIF block: PIL warns and finds nothing.
    broken_exif = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x01\x00\x25\x88\x04\x00\x01\x00\x00\x00"
    broken_exif += b"\xff\xff\x00\x00"
    anim = [Image.fromarray(_pixels(rng, 40, 30)).convert("P") for _ in range(3)]
    palette = Image.fromarray(_pixels(rng, 50, 40)).convert("P", palette=Image.Palette.ADAPTIVE)
    palette.info["transparency"] = 0
    sixteen = Image.fromarray(rng.integers(0, 65535, (40, 60), dtype=np.uint16))
    exif_good = gps_exif(45.0, 7.0)
    import pillow_heif

    pillow_heif.register_heif_opener()
    files: dict[str, tuple[bytes, Case]] = {
        "zero.jpg": (b"", Case(False, "empty file")),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], Case(False, "truncated")),
        "text.jpg": (b"just a note, not a photo\n" * 3, Case(False, "not a recognised image")),
        "error_page.jpg": (
            b"<!DOCTYPE html><html><head><title>404 Not Found</title></head></html>\n",
            Case(False, "HTML"),
        ),
        "bomb_100mp.png": (bomb_png(), Case(False, "decompression bomb")),
        "bomb_400mp_header.png": (header_bomb_png(), Case(False, "decompression bomb")),
        "one_pixel.png": (_encode(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG"), Case(True)),
        "strip_10000x10.jpg": (
            _encode(Image.fromarray(_pixels(rng, 10000, 10)), "JPEG"),
            Case(True),
        ),
        "cmyk.jpg": (_encode(photo.convert("CMYK"), "JPEG"), Case(True)),
        "grey.jpg": (_encode(photo.convert("L"), "JPEG"), Case(True)),
        "palette_alpha.png": (_encode(palette, "PNG"), Case(True)),
        "sixteen_bit.png": (_encode(sixteen, "PNG"), Case(True)),
        "animated.gif": (
            _encode(anim[0], "GIF", save_all=True, append_images=anim[1:], duration=100, loop=0),
            Case(True),
        ),
        "phone.heic": (_encode(photo, "HEIF", quality=60, exif=exif_good), Case(True, gps=True)),
        "gps_partial.jpg": (_encode(photo, "JPEG", exif=partial_exif), Case(True)),
        "gps_broken_ifd.jpg": (_encode(photo, "JPEG", exif=broken_exif), Case(True)),
        "gps_lat91.jpg": (_encode(photo, "JPEG", exif=gps_exif(91.0, 10.0)), Case(True)),
        "gps_lon200.jpg": (_encode(photo, "JPEG", exif=gps_exif(10.0, 200.0)), Case(True)),
        "gps_nan.jpg": (_encode(photo, "JPEG", exif=nan_exif), Case(True)),
    }
    for name, (data, _) in good_photos(rng).items():
        files[name] = (data, Case(True, gps=True))
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    return {name: case for name, (_, case) in files.items()}


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "bad-inputs")
    for name, case in write_bad_corpus(out).items():
        print(f"{name:24s} {case}")
