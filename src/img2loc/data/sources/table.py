"""`csv` source: any CSV/Parquet with an image column and coordinates.

Recognised out of the box: ``image,latitude,longitude`` (../shared/data/*/locations.csv),
``IMG_ID,LAT,LON`` (Im2GPS3k / YFCC metadata) and OSV-5M's ``id,latitude,longitude``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from img2loc.data.io import is_url, make_key, resolve
from img2loc.data.manifest import make_manifest
from img2loc.data.sources.base import ImportReport
from img2loc.data.tables import LAT_NAMES, LON_NAMES, find_column, read_table

IMAGE_NAMES = ("image", "img_id", "path", "file", "filename", "url", "image_url", "id")
OPTIONAL = {
    "location_id": ("location_id", "pano_id", "panoid", "sequence"),
    "heading": ("heading", "compass_angle", "yaw"),
    "captured": ("captured", "captured_at", "date", "datetaken", "date_taken"),
    "license": ("license",),
    "attribution": ("attribution", "author", "ownername"),
    "split": ("split",),
}


def _plain(v: object) -> object:
    """A numpy scalar as the Python value, so messages read ``91.0``, not ``np.float64(91.0)``."""
    item = getattr(v, "item", None)
    return item() if callable(item) else v


def import_table(
    path: str | Path,
    *,
    image_col: str | None = None,
    lat_col: str | None = None,
    lon_col: str | None = None,
    key_col: str | None = None,
    source: str | None = None,
    image_dir: str | Path | None = None,
    image_ext: str = "",
    check_files: bool = True,
) -> tuple[pd.DataFrame, ImportReport]:
    """Manifest from a table. Relative image paths resolve against ``image_dir``
    (default: the table's folder); ``image_ext`` is appended to bare ids (".jpg").
    Rows whose local file is missing are reported, not imported.
    """
    p = Path(path)
    df = read_table(p)
    img_c = find_column(df, IMAGE_NAMES, "image", p, image_col)
    la_c = find_column(df, LAT_NAMES, "lat", p, lat_col)
    lo_c = find_column(df, LON_NAMES, "lon", p, lon_col)
    generic = {"locations", "metadata", "manifest", "train", "test", "val", "data", "images"}
    src = source or (p.parent.name if p.stem.lower() in generic else p.stem)
    base = Path(image_dir) if image_dir is not None else p.parent
    # An empty cell is missing (NaN, whatever the string dtype): reported below, not resolved.
    no_image = (df[img_c].isna() | (df[img_c].astype(str).str.strip() == "")).to_numpy()
    names = df[img_c].fillna("").astype(str) + image_ext
    images = ["" if miss else resolve(n, base) for n, miss in zip(names, no_image, strict=True)]
    out = pd.DataFrame(
        {
            "image": images,
            "latitude": pd.to_numeric(df[la_c], errors="coerce"),
            "longitude": pd.to_numeric(df[lo_c], errors="coerce"),
            "source": src,
        }
    )
    keys = df[key_col].astype(str) if key_col else names
    out["key"] = [make_key(src, k) for k in keys]
    for col, aliases in OPTIONAL.items():
        c = find_column(df, aliases, col, p, required=False)
        if c is not None and c not in (img_c, la_c, lo_c):
            out[col] = df[c].astype(str) if col != "heading" else df[c]
    if "location_id" in out:
        out["location_id"] = src + ":" + out["location_id"].astype(str)
    report = ImportReport()
    keep = ~no_image
    for i in map(int, np.flatnonzero(no_image)):
        report.skipped.append(("", f"row {i + 2}: no image"))
    bad = ~(
        np.isfinite(out["latitude"])
        & np.isfinite(out["longitude"])
        & (out["latitude"].abs() <= 90)
        & (out["longitude"].abs() <= 180)
    )
    for i in map(int, np.flatnonzero(bad.to_numpy() & keep)):
        report.skipped.append(
            (
                names.iloc[i],
                f"row {i + 2}: bad coordinates ({_plain(df[la_c].iloc[i])!r}, "
                f"{_plain(df[lo_c].iloc[i])!r}); latitude must be in [-90, 90], "
                "longitude in [-180, 180]",
            )
        )
        keep[i] = False
    # Some published tables list an image twice; import it once and say so.
    dup = out["key"].duplicated(keep="first").to_numpy() & keep
    for i in map(int, np.flatnonzero(dup)):
        report.skipped.append((names.iloc[i], f"row {i + 2}: duplicate row for the same image"))
    keep &= ~dup
    if check_files:
        for i, ref in enumerate(images):
            if (
                keep[i]
                and not is_url(ref)
                and not ref.startswith("zip:")
                and not Path(ref).is_file()
            ):
                report.skipped.append((names.iloc[i], f"row {i + 2}: file not found: {ref}"))
                keep[i] = False
    return make_manifest(out[keep]), report
