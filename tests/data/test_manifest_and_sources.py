import zipfile

import pandas as pd
import pytest

from img2loc.data.io import make_key, read_bytes
from img2loc.data.manifest import (
    COLUMNS,
    ManifestError,
    make_manifest,
    read_manifest,
    validate_manifest,
    write_manifest,
)
from img2loc.data.sources.folder import import_folder
from img2loc.data.sources.osv5m import import_osv5m
from img2loc.data.sources.table import import_table
from tests.conftest import SHARED
from tests.data.conftest import gps_exif, jpeg_bytes


def _rec(key, lat=1.0, lon=2.0, sha1=""):
    return {"key": key, "image": f"{key}.jpg", "latitude": lat, "longitude": lon, "sha1": sha1}


def test_manifest_defaults_and_round_trip(tmp_path):
    df = make_manifest([_rec("a"), _rec("b")])
    assert list(df.columns) == list(COLUMNS)
    assert df["location_id"].tolist() == ["a", "b"]
    write_manifest(df, tmp_path / "m.parquet")
    back = read_manifest(tmp_path / "m.parquet")
    pd.testing.assert_frame_equal(back, df)


def test_manifest_validation():
    with pytest.raises(ManifestError, match="duplicate key"):
        validate_manifest(make_manifest([_rec("a"), _rec("a")]))
    with pytest.raises(ManifestError, match=r"'b'.*lat=100"):
        validate_manifest(make_manifest([_rec("a"), _rec("b", lat=100)]))
    with pytest.raises(ManifestError, match="split"):
        validate_manifest(make_manifest([{**_rec("a"), "split": "dev"}]))
    df, report = validate_manifest(make_manifest([_rec("a", sha1="x"), _rec("b", sha1="x")]))
    assert df["key"].tolist() == ["a"] and report.duplicate_hashes == [("b", "a")]
    with pytest.raises(ManifestError, match="duplicate image"):
        validate_manifest(
            make_manifest([_rec("a", sha1="x"), _rec("b", sha1="x")]), duplicate_images="error"
        )


def test_keys_are_webdataset_safe():
    k = make_key("folder", "a/b.c/IMG 1.JPG")
    assert "." not in k and "/" not in k and k.startswith("folder-")
    assert make_key("folder", "a_b") != make_key("folder", "a.b")


def test_folder_import_reports_what_it_skips(tmp_path, rng):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "ok.jpg").write_bytes(jpeg_bytes(rng, exif=gps_exif(35.6, 139.7)))
    (tmp_path / "nogps.jpg").write_bytes(jpeg_bytes(rng))
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "page.jpg").write_bytes(b"<html>nope</html>")
    (tmp_path / "notes.txt").write_text("hi")
    df, report = import_folder(tmp_path, progress=False)
    assert len(df) == 1 and df["latitude"][0] == pytest.approx(35.6, abs=1e-4)
    assert len(df["sha1"][0]) == 40
    reasons = dict(report.skipped)
    assert set(reasons) == {"nogps.jpg", "empty.jpg", "page.jpg", "notes.txt"}
    assert "no GPS" in reasons["nogps.jpg"] and "empty" in reasons["empty.jpg"]


@pytest.mark.skipif(not (SHARED / "photos-exif-gps").exists(), reason="shared data absent")
def test_folder_import_real_camera_files():
    df, report = import_folder(SHARED / "photos-exif-gps", progress=False)
    assert len(df) == 40 and len(report.skipped) == 6
    assert df["image"].str.lower().str.endswith(".heic").sum() >= 3


def test_table_import(photo_table, tmp_path):
    df, report = import_table(photo_table)
    assert len(df) == 60 and not report.skipped
    assert df["source"].iloc[0] == "set"  # "locations.csv" is generic: named by folder
    assert df["location_id"].nunique() == 15
    assert df["heading"].tolist()[:4] == [0, 90, 180, 270]
    t = pd.read_csv(photo_table)
    t = pd.concat([t, t.iloc[[0]]])  # a duplicated row
    t.loc[len(t)] = ["images/missing.jpg", 1.0, 2.0, 0, "x"]
    t.loc[len(t)] = ["images/loc00_000.jpg", 95.0, 2.0, 0, "y"]
    t = t.rename(columns={"image": "IMG_ID", "latitude": "LAT", "longitude": "LON"})
    t.to_csv(tmp_path / "set" / "im2gps.csv", index=False)
    df, report = import_table(tmp_path / "set" / "im2gps.csv")
    assert len(df) == 60
    why = " ".join(r for _, r in report.skipped)
    assert "duplicate row" in why and "file not found" in why and "bad coordinates" in why


def test_table_import_reports_rows_without_an_image(tmp_path):
    # Found by the fuzzer: an empty image cell is NaN under pandas' string dtype.
    t = tmp_path / "locations.csv"
    t.write_text("image,latitude,longitude\n,,\na.jpg,10,20\n ,5,5\n")
    df, report = import_table(t, check_files=False)
    assert df["image"].tolist() == [str(tmp_path / "a.jpg")]
    assert [why for _, why in report.skipped] == ["row 2: no image", "row 4: no image"]


def test_osv5m_reads_from_zips(tmp_path, rng):
    for split, ids in (("train", ["1001", "1002", "1003"]), ("test", ["2001"])):
        (tmp_path / "images" / split).mkdir(parents=True)
        with zipfile.ZipFile(tmp_path / "images" / split / "00.zip", "w") as z:
            for i in ids[:-1] if split == "train" else ids:
                z.writestr(f"{split}/{i}.jpg", jpeg_bytes(rng))
        pd.DataFrame(
            {
                "id": ids,
                "latitude": [10.0] * len(ids),
                "longitude": [20.0] * len(ids),
                "sequence": ["s1"] * len(ids),
                "captured_at": ["2020-01-02 10:00"] * len(ids),
            }
        ).to_csv(tmp_path / f"{split}.csv", index=False)
    df, report = import_osv5m(tmp_path, progress=False)
    assert len(df) == 3 and len(report.skipped) == 1 and "1003" in report.skipped[0][1]
    assert set(df["split"]) == {"train", "test"} and df["captured"].iloc[0] == "2020-01-02"
    assert read_bytes(df["image"].iloc[0])[:2] == b"\xff\xd8"
