"""Counts of a dataset: photos and places per source, split, continent and country.

What `img2loc data stats` prints, computed here so the command only renders it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from img2loc.data.manifest import make_manifest
from img2loc.data.places import reverse_geocode
from img2loc.data.tables import read_located

# The columns counted by value, in the order they are printed.
COUNTED = ("source", "split", "continent")


@dataclass(frozen=True)
class DatasetStats:
    """Counts, largest first; an empty value is counted as "(none)"."""

    n_photos: int
    n_locations: int
    by: dict[str, dict[str, int]]  # COUNTED column -> value -> photos
    countries: dict[str, int]  # ISO code -> photos


def read_photos(
    paths: Sequence[Path], lat_col: str | None = None, lon_col: str | None = None
) -> pd.DataFrame:
    """Manifests and plain coordinate tables as one manifest, with country and continent.

    A plain table's photos are named after its file (its folder for a `locations.csv`) and
    each row is its own place.
    """
    parts = []
    for m in paths:
        t, la_c, lo_c = read_located(m, lat_col, lon_col)
        t = t.rename(columns={la_c: "latitude", lo_c: "longitude"})
        if "source" not in t.columns:  # a plain table: name its photos after the file
            t["source"] = m.parent.name if m.stem == "locations" else m.stem
        if "key" not in t.columns and "location_id" not in t.columns:
            t["location_id"] = [f"{m}:{i}" for i in range(len(t))]  # one place a row
        parts.append(make_manifest(t))
    df = pd.concat(parts, ignore_index=True)
    places = reverse_geocode(df["latitude"].to_numpy(), df["longitude"].to_numpy())
    df["country"] = [p["cc"] for p in places]
    df["continent"] = [p["continent"] for p in places]
    return df


def _counts(col: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in col.value_counts().items()}


def dataset_stats(df: pd.DataFrame) -> DatasetStats:
    """The counts of a frame from :func:`read_photos`."""
    return DatasetStats(
        n_photos=len(df),
        n_locations=int(df["location_id"].nunique()),
        by={col: _counts(df[col].replace("", "(none)")) for col in COUNTED},
        countries=_counts(df["country"]),
    )
