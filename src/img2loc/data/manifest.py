"""The photo manifest: one record per photo, stored as Parquet, validated on write.

Columns (see :data:`COLUMNS`): ``key`` (unique id), ``source`` (where the record
came from, e.g. ``folder``, ``streetview``), ``image`` (local path or URL),
``latitude``/``longitude`` (degrees), ``location_id`` (groups photos of one
place, e.g. headings of one panorama; defaults to ``key``), ``heading``
(degrees or NaN), ``captured`` (ISO date or ""), ``license``, ``attribution``,
``split`` ("", "train", "val", "test") and ``sha1`` (of the image bytes, "" when
unknown). Extra columns are kept.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from img2loc.errors import Img2locError
from img2loc.files import atomic_path
from img2loc.geo.coords import CoordinateError, validate_coords

COLUMNS: dict[str, str] = {
    "key": "string",
    "source": "string",
    "image": "string",
    "latitude": "float64",
    "longitude": "float64",
    "location_id": "string",
    "heading": "float64",
    "captured": "string",
    "license": "string",
    "attribution": "string",
    "split": "string",
    "sha1": "string",
}
SPLITS = ("", "train", "val", "test")
#: Columns that make a table a manifest (anything else goes through the `csv` importer).
REQUIRED_COLUMNS = ("key", "image", "latitude", "longitude")
#: Columns a shard sample's metadata carries: all but the local image path and its hash.
META_COLUMNS = tuple(c for c in COLUMNS if c not in ("image", "sha1"))
#: Columns of a shard folder's index taken from the manifest (beside split and shard).
INDEX_COLUMNS = ("key", "source", "latitude", "longitude", "location_id", "heading", "captured")


class ManifestError(Img2locError, ValueError):
    """A manifest is invalid; the message names the rows and how to fix them."""


@dataclass
class ValidationReport:
    """What validation dropped, so nothing disappears silently."""

    duplicate_hashes: list[tuple[str, str]] = field(default_factory=list)  # (dropped, kept)

    def lines(self) -> list[str]:
        return [
            f"duplicate image {d} (same bytes as {k}): dropped" for d, k in self.duplicate_hashes
        ]


def make_manifest(records: Iterable[Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """A DataFrame with every manifest column, defaults filled, dtypes fixed."""
    df = records.copy() if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    n = len(df)
    for col, dtype in COLUMNS.items():
        if col not in df.columns:
            df[col] = np.nan if dtype == "float64" else ""
        if dtype == "float64":
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
        else:
            df[col] = df[col].astype("string").fillna("")
    if n:
        empty = df["location_id"] == ""
        df.loc[empty, "location_id"] = df.loc[empty, "key"]
    extra = [c for c in df.columns if c not in COLUMNS]
    return df[list(COLUMNS) + extra].reset_index(drop=True)


def validate_manifest(
    df: pd.DataFrame, *, duplicate_images: str = "drop"
) -> tuple[pd.DataFrame, ValidationReport]:
    """Check coordinates, unique keys, known splits; drop (or reject) repeated images.

    ``duplicate_images``: "drop" keeps the first record of each image hash and
    reports the rest; "error" raises; "keep" does nothing.
    """
    df = make_manifest(df)
    report = ValidationReport()
    if (df["key"] == "").any():
        rows = np.flatnonzero(df["key"] == "")[:5].tolist()
        raise ManifestError(f"records without a key at rows {rows}")
    dup = df["key"].duplicated(keep=False)
    if dup.any():
        keys = sorted(set(df.loc[dup, "key"].tolist()))
        raise ManifestError(
            f"{len(keys)} duplicate key(s): {keys[:5]}{' ...' if len(keys) > 5 else ''}. "
            "Keys must be unique; when merging sources, prefix keys by source."
        )
    try:
        lat, lon = validate_coords(
            df["latitude"].to_numpy(), df["longitude"].to_numpy(), rows=df["key"].tolist()
        )
    except CoordinateError as e:
        raise ManifestError(str(e)) from None
    df["latitude"], df["longitude"] = lat, lon
    bad_split = ~df["split"].isin(SPLITS)
    if bad_split.any():
        raise ManifestError(
            f"unknown split(s) {sorted(set(df.loc[bad_split, 'split']))}; "
            f"use one of {SPLITS[1:]} or leave empty"
        )
    if duplicate_images != "keep":
        hashed = df["sha1"] != ""
        dupe = hashed & df["sha1"].duplicated(keep="first")
        if dupe.any():
            first = df[hashed].drop_duplicates("sha1").set_index("sha1")["key"]
            pairs = [
                (k, str(first[h]))
                for k, h in zip(df.loc[dupe, "key"], df.loc[dupe, "sha1"], strict=True)
            ]
            if duplicate_images == "error":
                raise ManifestError(f"{len(pairs)} duplicate image(s), e.g. {pairs[:3]}")
            report.duplicate_hashes = pairs
            df = df[~dupe].reset_index(drop=True)
    return df, report


def write_manifest(
    df: pd.DataFrame, path: str | os.PathLike[str], *, duplicate_images: str = "drop"
) -> ValidationReport:
    """Validate and write a manifest atomically (Parquet; .csv also accepted)."""
    df, report = validate_manifest(df, duplicate_images=duplicate_images)
    with atomic_path(path) as tmp:
        if Path(path).suffix.lower() == ".csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
    return report


def read_manifest(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a manifest written by :func:`write_manifest` (Parquet or CSV)."""
    from img2loc.data.tables import read_table

    return make_manifest(read_table(Path(path)))
