"""`folder` source: every photo under a directory, coordinates from EXIF GPS."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image
from tqdm import tqdm

from img2loc.data.exif import gps_from_exif
from img2loc.data.images import IMAGE_SUFFIXES, ImageError, peek_image
from img2loc.data.io import make_key, sha1_bytes
from img2loc.data.manifest import make_manifest
from img2loc.data.sources.base import ImportReport


def _captured(exif: Image.Exif) -> str:
    try:
        raw = exif.get_ifd(0x8769).get(36867) or exif.get(306)  # DateTimeOriginal, DateTime
    except Exception:
        return ""
    if not raw:
        return ""
    s = str(raw).strip("\x00 ")
    return s[:10].replace(":", "-") if len(s) >= 10 and s[4] == ":" else ""


def import_folder(root: str | Path, *, progress: bool = True) -> tuple[pd.DataFrame, ImportReport]:
    """Manifest of every JPEG/PNG/HEIC/TIFF/WebP under ``root`` with EXIF GPS.

    Files without usable GPS, unreadable files and other file types are listed
    in the report.
    """
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"{base}: not a directory")
    report = ImportReport()
    records = []
    files = sorted(p for p in base.rglob("*") if p.is_file())
    for p in tqdm(files, desc="reading EXIF", unit="file", disable=not progress):
        rel = p.relative_to(base).as_posix()
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            report.skipped.append((rel, f"not an image type ({p.suffix or 'no extension'})"))
            continue
        try:
            data = p.read_bytes()
            # Size and EXIF only: the pixels are decoded (and checked) by `data shards`.
            _, exif = peek_image(data, name=rel)
        except OSError as e:
            report.skipped.append((rel, f"cannot be read ({e.strerror or e})"))
            continue
        except ImageError as e:
            report.skipped.append((rel, str(e).removeprefix(f"{rel}: ")))
            continue
        gps = gps_from_exif(exif)
        captured = _captured(exif)
        if not gps.ok:
            report.skipped.append((rel, gps.reason))
            continue
        records.append(
            {
                "key": make_key("folder", rel),
                "source": "folder",
                "image": str(p.resolve()),
                "latitude": gps.lat,
                "longitude": gps.lon,
                "captured": captured,
                "sha1": sha1_bytes(data),
            }
        )
    return make_manifest(records), report
