"""Every kind of DATA argument becomes the same table of readable photos."""

import json

import numpy as np
import pandas as pd
import pytest

from img2loc.data.images import open_image
from img2loc.data.io import read_bytes
from img2loc.data.tables import TableError
from img2loc.evaluation.data import choose_split, load_data, subsample
from tests.conftest import gps_exif, jpeg_bytes


def _readable(refs) -> bool:
    return all(open_image(read_bytes(r)).width > 0 for r in refs)


def test_shards_default_to_test_then_val(tiny_data):
    data = load_data([tiny_data["shards"]])  # the tiny shards have no test split
    assert data.splits == {str(tiny_data["shards"]): "val"}
    t = data.table
    assert len(t) == 12 and t["location_id"].nunique() == 3
    assert t["image"].str.startswith("tar:").all() and _readable(t["image"])
    assert (t["dataset"] == str(tiny_data["shards"])).all()
    assert len(load_data([tiny_data["shards"]], split="train").table) == 36
    with pytest.raises(TableError, match="no 'test' split"):
        load_data([tiny_data["shards"]], split="test")
    # Several splits at once (dev and test together), each photo once.
    both = load_data([tiny_data["shards"]], split="val, train,val")
    assert both.splits == {str(tiny_data["shards"]): "val,train"} and len(both.table) == 48
    assert both.table["key"].is_unique
    with pytest.raises(TableError, match="no 'test' split"):
        load_data([tiny_data["shards"]], split="val,test")


def test_choose_split_says_what_to_do():
    assert choose_split({"train": 1, "test": 1, "val": 1}, None, "x") == "test"
    with pytest.raises(TableError, match="--split train"):
        choose_split({"train": 1}, None, "x")


def test_manifest_csv_and_concatenation(tiny_data, photo_table):
    data = load_data([tiny_data["manifest"], photo_table])
    t = data.table
    assert len(t) == 48 + 60
    assert set(t["dataset"]) == {str(tiny_data["manifest"]), str(photo_table)}
    assert _readable(t["image"].iloc[[0, -1]])


def test_im2gps_table_with_image_dir(tmp_path, rng):
    (tmp_path / "imgs").mkdir()
    for i in range(3):
        (tmp_path / "imgs" / f"{i}.jpg").write_bytes(jpeg_bytes(rng))
    pd.DataFrame(
        {"IMG_ID": ["0.jpg", "1.jpg", "2.jpg", "9.jpg"], "LAT": [1, 2, 3, 4], "LON": [5, 6, 7, 8]}
    ).to_csv(tmp_path / "im2gps3k.csv", index=False)
    data = load_data([tmp_path / "im2gps3k.csv"], image_dir=tmp_path / "imgs")
    assert data.table["latitude"].tolist() == [1.0, 2.0, 3.0]
    assert len(data.skipped) == 1 and "file not found" in data.skipped[0][1]
    assert _readable(data.table["image"])


def test_photo_folder_located_by_exif(tmp_path, rng):
    (tmp_path / "phone").mkdir()
    (tmp_path / "phone" / "a.jpg").write_bytes(jpeg_bytes(rng, exif=gps_exif(45.5, -73.6)))
    (tmp_path / "phone" / "b.jpg").write_bytes(jpeg_bytes(rng))  # no GPS
    data = load_data([tmp_path / "phone"])
    assert len(data.table) == 1
    assert data.table["latitude"].iat[0] == pytest.approx(45.5, abs=1e-3)
    assert len(data.skipped) == 1


def test_empty_and_missing_inputs_are_errors(tmp_path):
    with pytest.raises(TableError, match="no such file"):
        load_data([tmp_path / "nope.csv"])
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "_info.json").write_text(
        json.dumps({"splits": {"val": {"shards": [], "counts": [], "n": 0}}})
    )
    with pytest.raises(TableError, match="no photos"):
        load_data([tmp_path / "s"])


def test_subsample_keeps_whole_places():
    df = pd.DataFrame({"location_id": np.repeat(list("abcdefghij"), 4), "x": range(40)})
    sub = subsample(df, 10, seed=1, group_col="location_id")
    assert len(sub) == 8 and (sub.groupby("location_id").size() == 4).all()
    assert len(subsample(df, 7, seed=1)) == 7
    assert subsample(df, None) is df
