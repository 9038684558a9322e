"""Read coordinate tables (CSV or Parquet) with forgiving column names and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from img2loc.errors import Img2locError
from img2loc.geo.coords import validate_coords

LAT_NAMES = ("latitude", "lat", "gps_lat", "gpslatitude")
LON_NAMES = ("longitude", "lon", "lng", "long", "gps_lon", "gpslongitude")
#: Names of the image column (a path or URL), most specific first.
IMAGE_NAMES = ("image", "img_id", "path", "file", "filepath", "filename", "url", "image_url", "id")
GROUP_NAMES = ("location_id", "pano_id", "panoid", "place_id")


class TableError(Img2locError, ValueError):
    """A manifest/CSV cannot be used; the message says how to fix it."""


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame.

    A shard folder (from ``img2loc data shards``) reads as its training split, from
    ``_index.parquet``: cell sets must be built from training photos only.
    """
    p = Path(path)
    if not p.exists():
        raise TableError(f"{p}: no such file")
    if p.is_dir():
        from img2loc.data.shards import read_index  # shards needs Pillow; tables does not

        try:
            return read_index(p, "train")
        except FileNotFoundError as e:
            raise TableError(f"{e}; or give a CSV/Parquet file") from None
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(p)
        if suffix in (".csv", ".tsv", ".txt"):
            return pd.read_csv(p, sep="\t" if suffix == ".tsv" else ",", low_memory=False)
    except (ValueError, OSError, pd.errors.ParserError) as e:
        raise TableError(f"{p}: cannot be read as {suffix[1:]} ({e})") from None
    raise TableError(f"{p}: unsupported table type {suffix!r}; use .csv, .tsv or .parquet")


def find_column(
    df: pd.DataFrame,
    names: tuple[str, ...],
    what: str,
    path: object,
    explicit: str | None = None,
    required: bool = True,
) -> str | None:
    """The column called ``explicit``, else the first of ``names`` (case-insensitive)."""
    if explicit is not None:
        if explicit not in df.columns:
            raise TableError(f"{path}: no column {explicit!r} (columns: {list(df.columns)})")
        return explicit
    lower = {str(c).lower(): str(c) for c in df.columns}
    for n in names:
        if n in lower:
            return lower[n]
    if required:
        raise TableError(
            f"{path}: no {what} column; looked for {list(names)} in {list(df.columns)}. "
            f"Name it with --{what}-col."
        )
    return None


def read_located(
    path: str | Path, lat_col: str | None = None, lon_col: str | None = None
) -> tuple[pd.DataFrame, str, str]:
    """A table, the names of its latitude and longitude columns, its coordinates validated.

    Columns are found by name (:data:`LAT_NAMES`, :data:`LON_NAMES`) unless given; the
    coordinates are parsed as numbers in place. A missing column raises
    :class:`TableError`, a blank or out-of-range coordinate
    :class:`~img2loc.geo.coords.CoordinateError` naming the file and line.
    """
    df = read_table(path)
    la_c = find_column(df, LAT_NAMES, "lat", path, lat_col)
    lo_c = find_column(df, LON_NAMES, "lon", path, lon_col)
    assert la_c is not None and lo_c is not None  # required columns
    rows = [f"{Path(path).name}:{i + 2}" for i in range(len(df))]  # +2: header, 1-based
    la = pd.to_numeric(df[la_c], errors="coerce").to_numpy(np.float64)
    lo = pd.to_numeric(df[lo_c], errors="coerce").to_numpy(np.float64)
    la, lo = validate_coords(la, lo, rows=rows)
    df = df.assign(**{la_c: la, lo_c: lo})
    return df, la_c, lo_c


def read_coordinates(
    paths: list[str | Path],
    lat_col: str | None = None,
    lon_col: str | None = None,
    group_col: str | None = None,
    use_groups: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validated (lat, lon, groups) from one or more tables.

    ``groups`` (e.g. ``location_id``) is returned when every table has such a
    column and ``use_groups`` is set; group names are prefixed by file so two
    files never share a group by accident.
    """
    lats, lons, groups = [], [], []
    have_groups = use_groups
    for path in paths:
        df, la_c, lo_c = read_located(path, lat_col, lon_col)
        lats.append(df[la_c].to_numpy(np.float64))
        lons.append(df[lo_c].to_numpy(np.float64))
        g_c = find_column(df, GROUP_NAMES, "group", path, group_col, required=group_col is not None)
        if g_c is None:
            have_groups = False
        else:
            groups.append(str(path) + "\x00" + df[g_c].astype(str).to_numpy(dtype=object))
    lat = np.concatenate(lats) if lats else np.zeros(0)
    lon = np.concatenate(lons) if lons else np.zeros(0)
    grp = np.concatenate(groups).astype(str) if have_groups and groups else None
    return lat, lon, grp
