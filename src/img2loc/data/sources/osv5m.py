"""`osv5m` source: the OpenStreetView-5M layout, images read straight from the zips.

Layout: ``DIR/train.csv``, ``DIR/test.csv`` and ``DIR/images/{train,test}/*.zip``
whose members are ``<id>.jpg`` (in any sub-folder). The CSV's ``sequence``
groups photos of one drive, which keeps them on one side of a split.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from img2loc.data.io import make_key, zip_ref
from img2loc.data.manifest import make_manifest
from img2loc.data.sources.base import ImportReport
from img2loc.data.tables import read_table


def _index_zips(folder: Path, progress: bool) -> dict[str, str]:
    index: dict[str, str] = {}
    for z in tqdm(
        sorted(folder.glob("*.zip")), desc=f"indexing {folder.name}", disable=not progress
    ):
        try:
            with zipfile.ZipFile(z) as zf:  # the central directory only: no decompression
                for name in zf.namelist():
                    if name.lower().endswith((".jpg", ".jpeg")):
                        index[Path(name).stem] = zip_ref(z, name)
        except zipfile.BadZipFile as e:
            raise OSError(f"{z}: bad zip archive ({e}); re-download it") from None
    return index


def import_osv5m(
    root: str | Path, splits: tuple[str, ...] = ("train", "test"), *, progress: bool = True
) -> tuple[pd.DataFrame, ImportReport]:
    """Manifest of an OSV-5M download; ``split`` keeps the dataset's own train/test."""
    base = Path(root)
    report = ImportReport()
    frames = []
    for split in splits:
        csv = base / f"{split}.csv"
        if not csv.exists():
            raise FileNotFoundError(f"{csv} not found: is {base} an OSV-5M folder?")
        df = read_table(csv)
        index = _index_zips(base / "images" / split, progress)
        ids = df["id"].astype(str)
        refs = ids.map(index)
        for i in refs[refs.isna()].index[:10_000]:
            report.skipped.append((ids[i], f"{split}: image {ids[i]}.jpg not in any zip"))
        found = refs.notna()
        out = pd.DataFrame(
            {
                "key": [make_key("osv5m", x) for x in ids[found]],
                "source": "osv5m",
                "image": refs[found],
                "latitude": df.loc[found, "latitude"],
                "longitude": df.loc[found, "longitude"],
                "split": "train" if split == "train" else "test",
                "license": "CC BY-SA 4.0",
                "attribution": "OpenStreetView-5M (Mapillary contributors)",
            }
        )
        if "sequence" in df:
            out["location_id"] = "osv5m:" + df.loc[found, "sequence"].astype(str)
        if "captured_at" in df:
            out["captured"] = df.loc[found, "captured_at"].astype(str).str[:10]
        frames.append(out)
    return make_manifest(pd.concat(frames, ignore_index=True)), report
