"""`img2loc data ...` end to end through the console script."""

import json

import pandas as pd

from tests.conftest import SHARED, run


def test_import_csv_shards_stats_cells(photo_table, tmp_path):
    m = tmp_path / "m.parquet"
    out = run("data", "import", "csv", str(photo_table), "-o", str(m)).stdout
    assert "60 photos" in out
    out = run("data", "stats", str(m), "-o", str(tmp_path / "map.png")).stdout
    assert "60 photos, 15 locations" in out and "by continent" in out
    assert (tmp_path / "map.png").stat().st_size > 10_000
    out = run(
        "data",
        "shards",
        str(m),
        "-o",
        str(tmp_path / "s"),
        "--shard-size",
        "25",
        "--weight",
        "set=2",
        "--workers",
        "1",
    ).stdout
    info = json.loads((tmp_path / "s" / "_info.json").read_text())
    assert info["source_weights"] == {"set": 2.0}
    assert sum(s["n"] for s in info["splits"].values()) == 60 and "train:" in out
    # The manifest feeds `cells build` directly.
    run(
        "cells",
        "build",
        str(m),
        "--min-samples",
        "2",
        "--max-samples",
        "5",
        "-o",
        str(tmp_path / "cells.json"),
    )


def test_import_errors_are_clear(tmp_path):
    proc = run(
        "data", "import", "folder", str(tmp_path / "nope"), "-o", str(tmp_path / "m"), check=False
    )
    assert proc.returncode == 2 and "not a directory" in proc.stderr
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    proc = run(
        "data", "import", "csv", str(tmp_path / "t.csv"), "-o", str(tmp_path / "m"), check=False
    )
    assert proc.returncode == 2 and "--image-col" in proc.stderr
    proc = run(
        "data",
        "shards",
        str(tmp_path / "t.csv"),
        "-o",
        str(tmp_path / "s"),
        "--weight",
        "x",
        check=False,
    )
    assert proc.returncode == 2 and "SOURCE=NUMBER" in proc.stderr


def test_import_folder_shared_exif(tmp_path):
    if not (SHARED / "photos-exif-gps").exists():
        import pytest

        pytest.skip("shared data absent")
    m = tmp_path / "exif.parquet"
    out = run("data", "import", "folder", str(SHARED / "photos-exif-gps"), "-o", str(m)).stdout
    assert "40 photos" in out and "6 file(s) not imported" in out
    skipped = pd.read_csv(tmp_path / "exif.skipped.csv")
    assert len(skipped) == 6


def test_stats_bad_tables_are_one_line_errors(tmp_path):
    """Other column names or a blank latitude: the same clear error as `cells build`."""
    (tmp_path / "yx.csv").write_text("filename,y,x\na.jpg,45,15\n")
    (tmp_path / "blank.csv").write_text("image,latitude,longitude\na.jpg,,15\nb.jpg,44,16\n")
    for name, says in (("yx.csv", "--lat-col"), ("blank.csv", "blank.csv:2")):
        proc = run("data", "stats", str(tmp_path / name), check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and says in proc.stderr, proc.stderr
    out = run("data", "stats", str(tmp_path / "yx.csv"), "--lat-col", "y", "--lon-col", "x").stdout
    assert "1 photos, 1 locations" in out and "HR 1" in out
