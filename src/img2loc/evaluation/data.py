"""Evaluation photos from shards, manifests, CSV tables or photo folders, as one table.

Every input becomes manifest rows (see :mod:`img2loc.data.manifest`) plus
``dataset``, the DATA argument it came from. ``image`` is a reference that
:func:`img2loc.data.io.read_bytes` reads: a path, URL, ``zip:`` reference, or
``tar:SHARD@OFFSET+SIZE`` for a photo inside a WebDataset shard, so shard photos
are read by random access and nothing is held in memory.

Shard folders: ``split=None`` picks ``test``, else ``val`` (the splits written by
``img2loc data shards`` keep their locations apart from ``train``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from img2loc.data.io import resolve
from img2loc.data.manifest import REQUIRED_COLUMNS, make_manifest, read_manifest
from img2loc.data.shard_reader import is_shard_folder, read_info, read_shard
from img2loc.data.tables import TableError, read_table

DEFAULT_SPLITS = ("test", "val")


@dataclass
class EvalData:
    """Photos to evaluate and the inputs that could not be used (with reasons)."""

    table: pd.DataFrame
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (input, reason)
    splits: dict[str, str] = field(default_factory=dict)  # shard folder -> split used


def choose_split(splits: dict[str, object], split: str | None, where: object) -> str:
    """``split`` if the shard folder has it; by default ``test``, else ``val``."""
    if split is not None:
        if split not in splits:
            raise TableError(f"{where} has no {split!r} split (it has {sorted(splits)})")
        return split
    for s in DEFAULT_SPLITS:
        if s in splits:
            return s
    raise TableError(
        f"{where} has no test or val split (it has {sorted(splits)}); "
        "pass --split train to evaluate on training photos (optimistic figures)"
    )


def read_shards(folder: Path, split: str | None) -> tuple[pd.DataFrame, str]:
    """Metadata of every photo of one split of a shard folder, with ``tar:`` references.

    ``split`` may name several, joined by commas (``val,test``: dev and test together).
    """
    info = read_info(folder)
    names = [None] if split is None else [s.strip() for s in split.split(",") if s.strip()]
    chosen = [choose_split(info.get("splits", {}), s, folder) for s in names]
    records = []
    for name in (n for sp in dict.fromkeys(chosen) for n in info["splits"][sp]["shards"]):
        # Only the metadata is read; photos are read later by their tar: reference.
        for s in read_shard(folder / name, read_data={"json"}):
            ext = s.image_ext
            if ext is not None and "json" in s.data:
                records.append({**s.meta, "key": s.key, "image": s.refs[ext]})
    return pd.DataFrame(records), ",".join(dict.fromkeys(chosen))


def _read_table_input(
    path: Path, image_dir: Path | None
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """A manifest as is; any other table through the `csv` importer's column rules."""
    from img2loc.data.sources.table import import_table

    head = read_table(path).head(0)
    if set(REQUIRED_COLUMNS) <= set(head.columns):
        df = read_manifest(path)
        df["image"] = [resolve(r, image_dir or path.parent) for r in df["image"]]
        return df, []
    df, report = import_table(path, image_dir=image_dir)
    return df, [(f"{path}: {f}", why) for f, why in report.skipped]


def load_one(path: Path, split: str | None = None, image_dir: Path | None = None) -> EvalData:
    """Photos of one DATA argument: shard folder, photo folder (EXIF GPS) or table."""
    if not path.exists():
        raise TableError(f"{path}: no such file or folder")
    used: dict[str, str] = {}
    skipped: list[tuple[str, str]] = []
    if is_shard_folder(path):
        df, used[str(path)] = read_shards(path, split)
    elif path.is_dir():
        from img2loc.data.sources.folder import import_folder

        df, report = import_folder(path, progress=False)
        skipped = [(f"{path}/{f}", why) for f, why in report.skipped]
    else:
        df, skipped = _read_table_input(path, image_dir)
        # A manifest's own split column selects photos only when asked to.
        if split is not None and "split" in df and (df["split"] != "").any():
            df = df[df["split"] == split]
    df = make_manifest(df)  # extra columns stay: --group-by may name one
    df["dataset"] = str(path)
    return EvalData(df.reset_index(drop=True), skipped, used)


def load_data(
    paths: list[Path], split: str | None = None, image_dir: Path | None = None
) -> EvalData:
    """All DATA arguments concatenated; empty input is an error that says why."""
    parts = [load_one(Path(p), split, image_dir) for p in paths]
    table = pd.concat([p.table for p in parts], ignore_index=True)
    if table.empty:
        raise TableError(
            f"no photos to evaluate in {[str(p) for p in paths]}"
            + (f" (split {split!r})" if split else "")
        )
    skipped = [s for p in parts for s in p.skipped]
    splits = {k: v for p in parts for k, v in p.splits.items()}
    return EvalData(table, skipped, splits)


def subsample(
    df: pd.DataFrame, n: int | None, seed: int = 0, group_col: str | None = None
) -> pd.DataFrame:
    """A seeded random subset of about ``n`` photos; whole groups when ``group_col`` is set."""
    if n is None or n >= len(df):
        return df
    rng = np.random.default_rng(seed)
    if group_col is None:
        return df.iloc[np.sort(rng.permutation(len(df))[:n])].reset_index(drop=True)
    codes, uniq = pd.factorize(df[group_col])
    order = rng.permutation(len(uniq))
    sizes = np.bincount(codes)[order]
    keep = order[: max(1, int(np.searchsorted(np.cumsum(sizes), n, side="right")))]
    return df[np.isin(codes, keep)].reset_index(drop=True)
