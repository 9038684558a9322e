"""data/stats.py: the counts `img2loc data stats` prints."""

import pandas as pd

from img2loc.data.stats import COUNTED, dataset_stats, read_photos


def test_counts_of_a_plain_table_and_a_named_one(tmp_path):
    # Zagreb twice, Paris once, Tokyo once; a plain table's rows are one place each.
    pd.DataFrame({"lat": [45.81, 45.81, 48.86], "lon": [15.98, 15.98, 2.35]}).to_csv(
        tmp_path / "europe.csv", index=False
    )
    (tmp_path / "jp").mkdir()
    pd.DataFrame({"latitude": [35.68], "longitude": [139.69]}).to_csv(
        tmp_path / "jp" / "locations.csv", index=False
    )
    df = read_photos([tmp_path / "europe.csv", tmp_path / "jp" / "locations.csv"])
    s = dataset_stats(df)
    assert (s.n_photos, s.n_locations) == (4, 4)
    assert tuple(s.by) == COUNTED
    assert s.by["source"] == {"europe": 3, "jp": 1}
    assert s.by["split"] == {"(none)": 4}
    assert s.by["continent"] == {"Europe": 3, "Asia": 1}
    assert s.countries == {"HR": 2, "FR": 1, "JP": 1}
