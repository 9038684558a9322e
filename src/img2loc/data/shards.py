"""Manifest -> WebDataset tar shards: decoded, validated, resized, shuffled, split.

Design notes
* Records are shuffled globally before writing, so readers need only a small
  shuffle buffer.
* Splits are by ``location_id`` (views of one place never straddle a split);
  ``geo_km`` additionally keeps every val/test location at least that far from
  every train location. The places in the ring around a held-out region (closer
  than ``geo_km`` to it, so they can be neither train nor held out) are written to
  no split: they are counted in ``_info.json`` and listed in ``skipped.csv``, so
  every input photo is accounted for (written, skipped with a reason, or failed).
* A plain table (``image,latitude,longitude``, e.g. ``../shared/data/*/locations.csv``)
  is imported on the fly, as ``img2loc data import csv`` would; inputs are read
  and validated before the output folder is created, so a bad input leaves nothing.
* The plan (which record goes to which shard) depends only on the inputs and
  the seed, and tar members carry fixed metadata, so a run that is killed and
  run again produces byte-identical shards. Each shard is written to a temp
  file and renamed: a visible shard is always complete.
* Tars are written with the standard library because WebDataset's writer
  stamps member times, which would break byte-identical resumes; the files are
  ordinary WebDataset shards (``KEY.jpg`` + ``KEY.json``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from img2loc.data.images import ImageError, open_image
from img2loc.data.io import read_bytes
from img2loc.data.manifest import INDEX_COLUMNS, META_COLUMNS, make_manifest, validate_manifest
from img2loc.data.shard_reader import INFO
from img2loc.data.tables import TableError, read_table
from img2loc.files import atomic_path, atomic_write_text, owned_folder
from img2loc.geo.distance import haversine_km

PLAN = "_plan.json"
INDEX = "_index.parquet"
SKIPPED = "skipped.csv"
SKIPPED_COLUMNS = ("key", "image", "reason")


@dataclass(frozen=True)
class ShardConfig:
    """How shards are written (recorded in _plan.json; a resume must match it)."""

    max_side: int = 384
    shard_size: int = 1000
    val_frac: float = 0.05
    test_frac: float = 0.05
    geo_km: float = 0.0
    seed: int = 0
    quality: int = 90


def assign_splits(df: pd.DataFrame, cfg: ShardConfig) -> pd.Series:
    """Split per location: keeps existing splits, assigns the rest.

    '' marks the ``geo_km`` buffer: places closer than ``geo_km`` to a val/test place
    that were not drawn for val/test (see :func:`buffer_reasons`).
    """
    split = df["split"].copy()
    todo = split == ""
    if not todo.any():
        return split
    locs = df.loc[todo].groupby("location_id", sort=True)[["latitude", "longitude"]].first()
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(len(locs))
    n_val = round(cfg.val_frac * len(locs))
    n_test = round(cfg.test_frac * len(locs))
    names = np.array(["train"] * len(locs), dtype=object)
    if cfg.geo_km <= 0:
        names[order[:n_val]] = "val"
        names[order[n_val : n_val + n_test]] = "test"
    else:
        lat, lon = locs["latitude"].to_numpy(), locs["longitude"].to_numpy()
        names[:] = ""
        held = np.zeros(len(locs), bool)
        # Held-out regions grow around random seeds until each split has its share.
        for target, label in (("val", n_val), ("test", n_test)):
            count = 0
            for i in order:
                if count >= label:
                    break
                if held[i]:
                    continue
                near = (haversine_km(lat[i], lon[i], lat, lon) < cfg.geo_km) & ~held
                names[near] = target
                held |= near
                count += int(near.sum())
        # Train = everything at least geo_km from all held-out locations; the ring is left
        # out (split ''): moving it to train would break the distance guarantee.
        free = np.flatnonzero(~held)
        hl = np.flatnonzero(held)
        for chunk in np.array_split(free, max(1, len(free) // 2048)):
            if len(hl) == 0:
                names[chunk] = "train"
                continue
            d = haversine_km(lat[chunk, None], lon[chunk, None], lat[None, hl], lon[None, hl])
            names[chunk] = np.where(d.min(axis=1) >= cfg.geo_km, "train", "")
    mapping = pd.Series(names, index=locs.index)
    split[todo] = df.loc[todo, "location_id"].map(mapping).to_numpy()
    return split


def buffer_reasons(df: pd.DataFrame, split: pd.Series, cfg: ShardConfig) -> pd.DataFrame:
    """The photos :func:`assign_splits` left in the ``geo_km`` buffer, with the reason.

    Columns ``key, image, reason``; the reason names the nearest val/test place.
    """
    ring = (split == "").to_numpy()
    if not ring.any():
        return _no_rows()
    held = split.isin(["val", "test"]).to_numpy()
    hl = (
        df.loc[held, ["location_id", "latitude", "longitude"]]
        .assign(split=split[held].to_numpy())
        .groupby("location_id", sort=True)
        .first()
    )
    part = df.loc[ring]
    d = haversine_km(
        part["latitude"].to_numpy()[:, None],
        part["longitude"].to_numpy()[:, None],
        hl["latitude"].to_numpy()[None],
        hl["longitude"].to_numpy()[None],
    )
    near = d.argmin(axis=1)
    reasons = [
        f"--geo-km buffer: {d[i, j]:.1f} km from {hl['split'].iloc[j]} place {hl.index[j]} "
        f"(< {cfg.geo_km:g} km), so in no split"
        for i, j in enumerate(near)
    ]
    return pd.DataFrame(
        {"key": part["key"].to_numpy(), "image": part["image"].to_numpy(), "reason": reasons}
    )


def plan_shards(
    df: pd.DataFrame, cfg: ShardConfig, split: pd.Series | None = None
) -> dict[str, list[pd.DataFrame]]:
    """Shuffle each split globally and cut it into shards (``split``: from assign_splits)."""
    df = df.assign(split=assign_splits(df, cfg) if split is None else split)
    out: dict[str, list[pd.DataFrame]] = {}
    for split in ("train", "val", "test"):
        part = df[df["split"] == split]
        if part.empty:
            continue
        seed = int.from_bytes(hashlib.sha1(f"{cfg.seed}:{split}".encode()).digest()[:4], "big")
        part = part.iloc[np.random.default_rng(seed).permutation(len(part))]
        out[split] = [
            part.iloc[i : i + cfg.shard_size] for i in range(0, len(part), cfg.shard_size)
        ]
    return out


def _encode(ref: str, cfg: ShardConfig) -> tuple[bytes, int, int]:
    raw = read_bytes(ref)
    im = open_image(raw, draft=(cfg.max_side, cfg.max_side), name=ref)
    if raw[:2] == b"\xff\xd8" and not im.info["exif_obj"]:
        with Image.open(io.BytesIO(raw)) as head:
            stored = head.size
        if stored == im.size and max(stored) <= cfg.max_side:
            # A JPEG that already fits and has no EXIF (so no rotation) is kept byte for
            # byte: re-encoding would only lose quality and usually grow the file.
            return raw, im.width, im.height
    if max(im.size) > cfg.max_side:
        s = cfg.max_side / max(im.size)
        im = im.resize(
            (max(1, round(im.width * s)), max(1, round(im.height * s))),
            resample=3,
            reducing_gap=3.0,
        )  # bicubic
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=cfg.quality)
    return buf.getvalue(), im.width, im.height


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def write_shard(path: str, records: list[dict[str, Any]], cfg: ShardConfig) -> dict[str, Any]:
    """Write one shard atomically; returns its stats (samples written, errors)."""
    final = Path(path)
    errors: list[tuple[str, str]] = []
    n = 0
    with atomic_path(final) as tmp:
        with (
            open(tmp, "wb") as f,
            tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar,
        ):
            for rec in records:
                try:
                    jpg, w, h = _encode(str(rec["image"]), cfg)
                except (ImageError, OSError, ValueError) as e:
                    errors.append((str(rec["key"]), str(e)))
                    continue
                meta = {k: rec[k] for k in META_COLUMNS}
                meta["heading"] = None if pd.isna(meta["heading"]) else float(meta["heading"])
                meta.update(width=w, height=h)
                _add(tar, f"{rec['key']}.jpg", jpg)
                _add(tar, f"{rec['key']}.json", json.dumps(meta, sort_keys=True).encode())
                n += 1
        stats = {"shard": final.name, "n": n, "errors": errors}
        # Stats first: a shard on disk always has its stats (a rerun skips the shard).
        atomic_write_text(final.with_name(final.name + ".stats.json"), json.dumps(stats))
    return stats


def read_index(folder: str | Path, split: str | None = None) -> pd.DataFrame:
    """The ``_index.parquet`` of a shard folder (one row per sample), optionally one split."""
    p = Path(folder) / INDEX
    if not p.exists():
        raise FileNotFoundError(
            f"{p} not found: shard folders written before the index "
            "existed must be written again with `img2loc data shards`"
        )
    df = pd.read_parquet(p)
    if split is not None:
        df = df[df["split"] == split].reset_index(drop=True)
    return df


def _write_index(out: Path, plan: dict[str, list[pd.DataFrame]], failed: set[str]) -> None:
    """``_index.parquet``: one row per written sample (key, coordinates, split, shard), so
    cell sets, statistics and evaluation need not open the tars."""
    cols = list(INDEX_COLUMNS)
    rows = [
        part[cols].assign(split=split, shard=f"{split}-{i:06d}.tar")
        for split, parts in plan.items()
        for i, part in enumerate(parts)
    ]
    index = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=cols)
    index = index[~index["key"].isin(failed)]
    with atomic_path(out / INDEX) as tmp:
        index.to_parquet(tmp, index=False)


def _write_shard_job(args: tuple[str, list[dict[str, Any]], ShardConfig]) -> dict[str, Any]:
    return write_shard(*args)


def shard_summary(info: dict[str, Any], folder: str | Path) -> list[str]:
    """Where every input photo went, in a line or two (from ``_info.json``)."""
    ph = info.get("photos")
    if ph is None:  # written before the accounting existed
        return []
    km = info["config"]["geo_km"]
    parts = [f"{ph['written']} written"]
    if ph["geo_buffer"]:
        parts.append(
            f"{ph['geo_buffer']} in no split: {info['geo_buffer_places']} place(s) within "
            f"{km:g} km of a val/test place (the --geo-km buffer)"
        )
    if ph["not_imported"]:
        parts.append(f"{ph['not_imported']} not imported (missing file or bad coordinates)")
    if ph["duplicates"]:
        parts.append(f"{ph['duplicates']} duplicate image(s)")
    if ph["failed"]:
        parts.append(f"{ph['failed']} failed to decode (see {Path(folder) / 'errors.csv'})")
    lines = [f"{ph['input']} photos: " + "; ".join(parts)]
    if ph["geo_buffer"] + ph["not_imported"] + ph["duplicates"]:
        lines.append(f"photos not written and why: {Path(folder) / SKIPPED}")
    return lines


def read_records(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Records of one input and the rows that could not be imported (``key, image, reason``).

    A manifest (it has a ``key`` column) is read as is; any other table with an image
    column and coordinates is imported on the fly, as ``img2loc data import csv`` would
    (rows with a missing file or bad coordinates are returned as not imported).
    """
    from img2loc.data.sources.table import import_table

    if Path(path).is_dir():
        raise TableError(
            f"{path} is a folder: shards are written from manifests or CSV tables "
            "(make one with `img2loc data import folder`)"
        )
    table = read_table(path)
    if "key" in table.columns:
        return make_manifest(table), _no_rows()
    try:
        df, report = import_table(path)
    except TableError as e:  # its fix-it names `data import csv` options: point there
        raise TableError(
            f"{e} (`img2loc data import csv {path} -o manifest.parquet` takes those options; "
            "then shard manifest.parquet)"
        ) from None
    skipped = pd.DataFrame(
        {
            "key": "",
            "image": [f for f, _ in report.skipped],
            "reason": [f"{path}: {why}" for _, why in report.skipped],
        },
        columns=list(SKIPPED_COLUMNS),
    )
    return df, skipped


def write_shards(
    manifests: list[str | Path] | pd.DataFrame,
    out_dir: str | Path,
    cfg: ShardConfig | None = None,
    *,
    workers: int | None = None,
    source_weights: dict[str, float] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Write shards for the manifests into ``out_dir`` and return the ``_info.json`` content.

    ``manifests``: manifests or plain tables (imported on the fly), or one DataFrame.
    Inputs are read and validated before ``out_dir`` is created: a bad input raises
    (ManifestError, TableError, ValueError) and leaves nothing behind. Re-running the
    same command resumes: finished shards are kept.
    """
    cfg = cfg or ShardConfig()
    if isinstance(manifests, pd.DataFrame):
        df, not_imported = manifests, _no_rows()
    else:
        read = [read_records(m) for m in manifests]
        df = pd.concat([r for r, _ in read], ignore_index=True) if read else make_manifest([])
        not_imported = pd.concat([_no_rows(), *(s for _, s in read)], ignore_index=True)
    n_input = len(df) + len(not_imported)
    df, report = validate_manifest(df)
    if df.empty:
        why = f"; e.g. {not_imported['reason'].iloc[0]}" if len(not_imported) else ""
        raise ValueError(f"no photos to write: {n_input} record(s) read, none usable{why}")
    duplicates = pd.DataFrame(
        {
            "key": [d for d, _ in report.duplicate_hashes],
            "image": "",
            "reason": [
                f"same image bytes as {k}: duplicate left out" for _, k in report.duplicate_hashes
            ],
        },
        columns=list(SKIPPED_COLUMNS),
    )
    # Held for the whole run; clears temp files of a killed run (never complete shards).
    with owned_folder(out_dir, "img2loc data shards") as out:
        return _write_shards(
            df, n_input, not_imported, duplicates, out, cfg, workers, source_weights, progress
        )


def _no_rows() -> pd.DataFrame:
    return pd.DataFrame(columns=list(SKIPPED_COLUMNS))


def _write_shards(
    df: pd.DataFrame,
    n_input: int,
    not_imported: pd.DataFrame,
    duplicates: pd.DataFrame,
    out: Path,
    cfg: ShardConfig,
    workers: int | None,
    source_weights: dict[str, float] | None,
    progress: bool,
) -> dict[str, Any]:
    plan_id = hashlib.sha1(
        pd.util.hash_pandas_object(df[["key", "image", "split"]], index=False).to_numpy().tobytes()
        + json.dumps(cfg.__dict__, sort_keys=True).encode()
    ).hexdigest()
    plan_file = out / PLAN
    if plan_file.exists():
        old = json.loads(plan_file.read_text()).get("plan_id")
        if old != plan_id:
            raise ValueError(
                f"{out} holds shards of a different manifest or settings; "
                "write to a new folder or delete it to start over"
            )
    else:
        atomic_write_text(plan_file, json.dumps({"plan_id": plan_id, "config": cfg.__dict__}))
    split = assign_splits(df, cfg)
    plan = plan_shards(df, cfg, split)
    buffer = buffer_reasons(df, split, cfg)
    jobs = []
    for split_name, parts in plan.items():
        for i, part in enumerate(parts):
            path = out / f"{split_name}-{i:06d}.tar"
            if not path.exists():
                jobs.append((str(path), part.to_dict("records"), cfg))
    workers = workers or min(len(jobs) or 1, os.cpu_count() or 1)
    bar = tqdm(
        total=sum(len(j[1]) for j in jobs), desc="writing shards", unit="img", disable=not progress
    )
    if workers <= 1:
        for job in jobs:
            write_shard(*job)
            bar.update(len(job[1]))
    else:
        with ProcessPoolExecutor(workers) as ex:
            for job, _ in zip(jobs, ex.map(_write_shard_job, jobs), strict=True):
                bar.update(len(job[1]))
    bar.close()
    info: dict[str, Any] = {
        "format": "img2loc-shards",
        "version": 1,
        "config": cfg.__dict__,
        "splits": {},
        "source_weights": source_weights or {},
        "duplicates_dropped": len(duplicates),
    }
    errors: list[tuple[Any, ...]] = []
    for split_name, parts in plan.items():
        shards, counts = [], []
        for i in range(len(parts)):
            name = f"{split_name}-{i:06d}.tar"
            st = json.loads((out / (name + ".stats.json")).read_text())
            shards.append(name)
            counts.append(st["n"])
            errors.extend((split_name, *e) for e in st["errors"])
        info["splits"][split_name] = {"shards": shards, "counts": counts, "n": int(sum(counts))}
    info["sources"] = df["source"].value_counts().to_dict()
    _write_index(out, plan, {key for _, key, _ in errors})
    info["n_errors"] = len(errors)
    errors_csv = pd.DataFrame(errors, columns=["split", "key", "error"]).to_csv(index=False)
    atomic_write_text(out / "errors.csv", errors_csv)
    not_written = pd.concat([not_imported, duplicates, buffer], ignore_index=True)
    atomic_write_text(out / SKIPPED, not_written.to_csv(index=False))
    # Every input record is accounted for: input = written + failed + the three skipped kinds.
    info["photos"] = {
        "input": n_input,
        "written": sum(s["n"] for s in info["splits"].values()),
        "failed": len(errors),
        "not_imported": len(not_imported),
        "duplicates": len(duplicates),
        "geo_buffer": len(buffer),
    }
    info["geo_buffer_places"] = int(df.loc[(split == "").to_numpy(), "location_id"].nunique())
    atomic_write_text(out / INFO, json.dumps(info, indent=2))
    return info
