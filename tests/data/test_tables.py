import numpy as np
import pandas as pd
import pytest

from img2loc.data.tables import TableError, read_coordinates


def test_reads_csv_and_parquet_with_aliases(tmp_path):
    pd.DataFrame({"IMG_ID": ["a", "b"], "LAT": [1.0, 2.0], "LON": [3.0, 4.0]}).to_csv(
        tmp_path / "im2gps.csv", index=False
    )
    pd.DataFrame({"image": ["c"], "latitude": [5.0], "longitude": [190.0 - 360]}).to_parquet(
        tmp_path / "m.parquet"
    )
    lat, lon, groups = read_coordinates([tmp_path / "im2gps.csv", tmp_path / "m.parquet"])
    assert lat.tolist() == [1, 2, 5] and lon.tolist() == [3, 4, -170]
    assert groups is None


def test_groups_are_per_file(tmp_path):
    for name in ("a.csv", "b.csv"):
        pd.DataFrame({"lat": [1, 1], "lon": [2, 2], "location_id": ["x", "x"]}).to_csv(
            tmp_path / name, index=False
        )
    _, _, groups = read_coordinates([tmp_path / "a.csv", tmp_path / "b.csv"])
    assert groups is not None and len(np.unique(groups)) == 2


def test_errors_name_file_and_row(tmp_path):
    pd.DataFrame({"lat": [1, 91], "lon": [2, 2]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match=r"bad.csv:3"):
        read_coordinates([tmp_path / "bad.csv"])
    pd.DataFrame({"y": [1], "x": [2]}).to_csv(tmp_path / "nocol.csv", index=False)
    with pytest.raises(TableError, match="--lat-col"):
        read_coordinates([tmp_path / "nocol.csv"])
    with pytest.raises(TableError, match="no such file"):
        read_coordinates([tmp_path / "missing.csv"])
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(TableError, match="unsupported"):
        read_coordinates([tmp_path / "x.json"])
    pd.DataFrame({"lat": ["n/a"], "lon": [2]}).to_csv(tmp_path / "text.csv", index=False)
    with pytest.raises(ValueError, match="not finite"):
        read_coordinates([tmp_path / "text.csv"])
