"""Download URL records of a manifest with img2dataset (resize, retries, resumable).

img2dataset is the field's tool for fetching millions of images (its Spark and
Ray distributors scale it across machines), but it pins pandas < 3 and an old
webdataset, so it lives in its own environment and runs as a subprocess:

    make setup-download            # creates .venv-img2dataset with img2dataset 1.47.0
    img2loc data download urls.parquet -o dl/ --manifest-out downloaded.parquet

Found as ``--img2dataset PATH``, else ``$IMG2LOC_IMG2DATASET``, else
``.venv-img2dataset/bin/img2dataset``, else ``img2dataset`` on PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd

from img2loc.data.io import is_url
from img2loc.data.manifest import COLUMNS, make_manifest
from img2loc.data.sources.base import ImportReport

# img2dataset's own distributors (the CLI's --distributor choices).
DISTRIBUTORS = ("multiprocessing", "pyspark", "ray")

# Manifest columns img2dataset carries through to its output (the key under another name:
# img2dataset writes its own `key`); the image and its SHA-1 are what it makes anew.
CARRY = ["img2loc_key", *(c for c in COLUMNS if c not in ("key", "image", "sha1"))]


def _die_with_parent() -> None:
    """Linux: the downloader gets SIGKILL when we die, so a killed run leaves no orphan."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: an orphan finishes its shard, which resume tolerates
        pass


def find_img2dataset(explicit: str | None = None) -> str:
    """Path of the img2dataset executable, or a FileNotFoundError saying how to install it."""
    for cand in (
        explicit,
        os.environ.get("IMG2LOC_IMG2DATASET"),
        str(Path(".venv-img2dataset/bin/img2dataset").resolve()),
        shutil.which("img2dataset"),
    ):
        if cand and Path(cand).is_file():
            return cand
    raise FileNotFoundError(
        "img2dataset not found. It pins pandas<3, so install it in its own environment: "
        "`make setup-download` (creates .venv-img2dataset) or `pipx install img2dataset==1.47.0`,"
        " then pass --img2dataset PATH or set IMG2LOC_IMG2DATASET."
    )


def download(
    manifest: pd.DataFrame,
    out_dir: str | Path,
    *,
    image_size: int = 384,
    processes: int = 2,
    threads: int = 32,
    retries: int = 3,
    timeout: int = 10,
    distributor: str = "multiprocessing",
    samples_per_shard: int = 10_000,
    img2dataset: str | None = None,
) -> tuple[pd.DataFrame, ImportReport]:
    """Fetch every URL record; return a manifest of the local copies and a failure report.

    Re-running continues where a killed run stopped (img2dataset's incremental mode:
    finished shards are skipped, unfinished ones redone).
    """
    exe = find_img2dataset(img2dataset)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    urls = manifest[manifest["image"].map(is_url)].rename(columns={"key": "img2loc_key"})
    if urls.empty:
        raise ValueError("the manifest has no http(s) image URLs to download")
    url_list = out / "_urls.parquet"
    if not url_list.exists():  # same input on resume, so shard numbering stays the same
        urls[["image", *CARRY]].to_parquet(url_list, index=False)
    cmd = [
        exe,
        "--url_list",
        str(url_list),
        "--input_format",
        "parquet",
        "--url_col",
        "image",
        "--save_additional_columns",
        json.dumps(CARRY),
        "--output_format",
        "files",
        "--output_folder",
        str(out / "images"),
        "--image_size",
        str(image_size),
        "--resize_mode",
        "keep_ratio_largest",
        "--resize_only_if_bigger",
        "True",
        "--processes_count",
        str(processes),
        "--thread_count",
        str(threads),
        "--retries",
        str(retries),
        "--timeout",
        str(timeout),
        "--distributor",
        distributor,
        "--number_sample_per_shard",
        str(samples_per_shard),
        "--incremental_mode",
        "incremental",
        "--enable_wandb",
        "False",
        "--compute_hash",
        "None",
        "--disallowed_header_directives",
        "[]",
    ]
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "disabled"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, preexec_fn=_die_with_parent)
    if proc.returncode != 0:
        raise RuntimeError(f"img2dataset failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return collect(out)


def collect(out_dir: str | Path) -> tuple[pd.DataFrame, ImportReport]:
    """Manifest of what img2dataset saved under ``out_dir/images``, and what failed."""
    images = Path(out_dir) / "images"
    parts = sorted(images.glob("*.parquet"))
    if not parts:
        raise FileNotFoundError(f"no img2dataset results under {images}")
    df = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    report = ImportReport()
    for url, err in df.loc[df["status"] != "success", ["url", "error_message"]].itertuples(
        index=False
    ):
        report.skipped.append((str(url), f"download failed: {err}"))
    ok = df[df["status"] == "success"].copy()
    files = {p.stem: str(p) for p in images.glob("*/*.jpg")}
    ok["image"] = ok["key"].map(files)
    missing = ok["image"].isna()
    for url in ok.loc[missing, "url"]:
        report.skipped.append((str(url), "reported as downloaded but the file is missing"))
    ok = ok[~missing]
    ok["key"] = ok["img2loc_key"]
    return make_manifest(ok[["key", "image", *CARRY[1:]]]), report
