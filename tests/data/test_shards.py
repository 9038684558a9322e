import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from img2loc.data.manifest import make_manifest, write_manifest
from img2loc.data.shards import ShardConfig, assign_splits, write_shards
from img2loc.data.sources.table import import_table
from img2loc.data.tables import read_table
from img2loc.geo import haversine_km
from tests.conftest import jpeg_bytes

EXE = Path(sys.executable).with_name("img2loc")


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.tar"))}


@pytest.fixture
def manifest(photo_table, tmp_path) -> Path:
    df, _ = import_table(photo_table)
    # Two broken photos: the run must report them and carry on.
    (photo_table.parent / "images" / "loc00_000.jpg").write_bytes(b"")
    data = (photo_table.parent / "images" / "loc01_000.jpg").read_bytes()
    (photo_table.parent / "images" / "loc01_000.jpg").write_bytes(data[: len(data) // 3])
    out = tmp_path / "m.parquet"
    write_manifest(df, out)
    return out


def test_shards_content_and_info(manifest, tmp_path):
    cfg = ShardConfig(max_side=50, shard_size=16, val_frac=0.2, test_frac=0.2, seed=1)
    info = write_shards([manifest], tmp_path / "s", cfg, workers=1, progress=False)
    splits = info["splits"]
    assert sum(s["n"] for s in splits.values()) == 58 and info["n_errors"] == 2
    errors = pd.read_csv(tmp_path / "s" / "errors.csv")
    joined = " ".join(errors["error"])
    assert "empty" in joined and "truncated" in joined
    locs = {}
    for split, s in splits.items():
        n = 0
        for name in s["shards"]:
            with tarfile.open(tmp_path / "s" / name) as tar:
                members = tar.getmembers()
                assert all(m.mtime == 0 for m in members)
                for m in members:
                    if m.name.endswith(".json"):
                        meta = json.loads(tar.extractfile(m).read())
                        assert meta["split"] == split
                        locs.setdefault(meta["location_id"], set()).add(split)
                        n += 1
                    else:
                        im = Image.open(io.BytesIO(tar.extractfile(m).read()))
                        assert max(im.size) <= 50
        assert n == s["n"]
    # Views of one place never straddle splits.
    assert all(len(v) == 1 for v in locs.values())
    assert set(splits) == {"train", "val", "test"}
    # The index lists exactly the written samples; a shard folder reads as its train split.
    index = pd.read_parquet(tmp_path / "s" / "_index.parquet")
    assert len(index) == 58
    assert index.groupby("split").size().to_dict() == {k: v["n"] for k, v in splits.items()}
    train = read_table(tmp_path / "s")
    assert len(train) == splits["train"]["n"] and set(train["split"]) == {"train"}


def test_fitting_jpeg_without_exif_is_kept_byte_for_byte(tmp_path):
    raw = jpeg_bytes(np.random.default_rng(5), (40, 30))
    (tmp_path / "a.jpg").write_bytes(raw)
    df = make_manifest(
        [
            {
                "key": "a",
                "source": "t",
                "image": str(tmp_path / "a.jpg"),
                "latitude": 1.0,
                "longitude": 2.0,
            }
        ]
    )
    write_shards(
        df,
        tmp_path / "s",
        ShardConfig(max_side=64, val_frac=0, test_frac=0),
        workers=1,
        progress=False,
    )
    with tarfile.open(tmp_path / "s" / "train-000000.tar") as tar:
        assert tar.extractfile("a.jpg").read() == raw


def test_geographic_split_keeps_distance(manifest):
    df = pd.read_parquet(manifest)
    cfg = ShardConfig(val_frac=0.2, test_frac=0.2, geo_km=1500, seed=3)
    split = assign_splits(df, cfg)
    tr = df[split == "train"]
    held = df[split.isin(["val", "test"])]
    assert len(tr) and len(held)
    d = haversine_km(
        held["latitude"].to_numpy()[:, None],
        held["longitude"].to_numpy()[:, None],
        tr["latitude"].to_numpy()[None],
        tr["longitude"].to_numpy()[None],
    )
    assert d.min() >= 1500


def test_resume_refuses_other_plan(manifest, tmp_path):
    write_shards([manifest], tmp_path / "s", ShardConfig(shard_size=16), workers=1, progress=False)
    with pytest.raises(ValueError, match="different manifest or settings"):
        write_shards(
            [manifest], tmp_path / "s", ShardConfig(shard_size=8), workers=1, progress=False
        )


def test_kill_9_then_rerun_gives_identical_shards(manifest, tmp_path):
    args = [
        str(EXE),
        "data",
        "shards",
        str(manifest),
        "--shard-size",
        "4",
        "--workers",
        "1",
        "--max-side",
        "64",
    ]
    ref = tmp_path / "ref"
    subprocess.run([*args, "-o", str(ref)], check=True, capture_output=True, timeout=120)
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [*args, "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 60
    while time.time() < deadline and len(list(out.glob("*.tar"))) < 3:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(list(out.glob("*.tar")))
    assert 0 < partial < len(list(ref.glob("*.tar"))), "kill landed outside the run"
    assert not (out / "_info.json").exists()
    subprocess.run([*args, "-o", str(out)], check=True, capture_output=True, timeout=120)
    assert _digest(out) == _digest(ref)
    assert json.loads((out / "_info.json").read_text()) == json.loads(
        (ref / "_info.json").read_text()
    )
    assert not list(out.glob(".*.tmp"))


def test_parallel_equals_serial(manifest, tmp_path):
    cfg = ShardConfig(shard_size=8, max_side=64)
    write_shards([manifest], tmp_path / "a", cfg, workers=1, progress=False)
    write_shards([manifest], tmp_path / "b", cfg, workers=2, progress=False)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert np.all([p.stat().st_mode & 0o777 == 0o644 for p in (tmp_path / "a").glob("*.tar")])


def test_geo_km_accounts_for_every_photo(manifest, tmp_path):
    """Places in the --geo-km buffer are in no split: counted, listed and printed, never lost."""
    out = tmp_path / "s"
    args = ["data", "shards", str(manifest), "-o", str(out), "--workers", "1"]
    proc = subprocess.run(
        [str(EXE), *args, "--geo-km", "4000", "--val-frac", "0.2", "--test-frac", "0.2",
         "--seed", "2"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    info = json.loads((out / "_info.json").read_text())
    ph = info["photos"]
    assert ph["input"] == 60 and ph["geo_buffer"] > 0
    assert ph["geo_buffer"] == 4 * info["geo_buffer_places"]  # 4 views a place
    assert ph["input"] == ph["written"] + ph["failed"] + ph["geo_buffer"]
    assert ph["written"] == sum(s["n"] for s in info["splits"].values())
    skipped = pd.read_csv(out / "skipped.csv")
    assert len(skipped) == ph["geo_buffer"]
    assert skipped["reason"].str.contains("--geo-km buffer").all()
    # The listed photos are exactly the ones in no shard.
    written = set(pd.read_parquet(out / "_index.parquet")["key"])
    failed = set(pd.read_csv(out / "errors.csv")["key"])
    keys = set(pd.read_parquet(manifest)["key"])
    assert set(skipped["key"]) == keys - written - failed
    assert f"60 photos: {ph['written']} written; {ph['geo_buffer']} in no split" in proc.stdout
    assert "skipped.csv" in proc.stdout
    # Without --geo-km nothing is left out.
    plain = write_shards([manifest], tmp_path / "p", ShardConfig(), workers=1, progress=False)
    assert plain["photos"]["written"] + plain["photos"]["failed"] == 60
    assert plain["photos"]["geo_buffer"] == 0


def test_plain_csv_is_imported_on_the_fly(photo_table, tmp_path):
    """A locations.csv shards like its manifest would; a bad table leaves no folder behind."""
    missing = photo_table.parent / "images" / "loc03_090.jpg"
    missing.unlink()
    out = tmp_path / "s"
    proc = subprocess.run(
        [str(EXE), "data", "shards", str(photo_table), "-o", str(out), "--workers", "1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    info = json.loads((out / "_info.json").read_text())
    assert info["photos"]["input"] == 60 and info["photos"]["not_imported"] == 1
    assert info["photos"]["written"] == 59
    skipped = pd.read_csv(out / "skipped.csv")
    assert "file not found" in skipped["reason"].iloc[0]
    for body in ("filename,y,x\na.jpg,1,2\n", "image,latitude,longitude\na.jpg,,2\n"):
        bad = tmp_path / "bad.csv"
        bad.write_text(body)
        proc = subprocess.run(
            [str(EXE), "data", "shards", str(bad), "-o", str(tmp_path / "b")],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert not (tmp_path / "b").exists()
