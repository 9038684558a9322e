"""`img2loc demo`: the quick start's guesses next to the truth."""

from __future__ import annotations

import numpy as np
import pytest

from img2loc import Predictor
from img2loc.inference.demo import EXAMPLES_DIR, demo_lines, read_locations, run_demo
from tests.conftest import run
from tests.inference.conftest import photo


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "img").mkdir()
    rows = ["image,latitude,longitude"]
    for i, (lat, lon) in enumerate([(48.8, 2.3), (35.6, 139.7), (-33.9, 151.2)]):
        (tmp_path / "img" / f"{i}.jpg").write_bytes(photo(rng))
        rows.append(f"img/{i}.jpg,{lat},{lon}")
    (tmp_path / "img" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    rows.append("img/broken.jpg,10,10")
    (tmp_path / "locations.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_demo_measures_errors_and_survives_a_bad_photo(model_dir, folder):
    rows = run_demo(Predictor.load(model_dir), folder)
    assert [r.image for r in rows] == ["0.jpg", "1.jpg", "2.jpg", "broken.jpg"]
    ok = rows[:3]
    for r in ok:
        assert r.pred.ok and 0 <= r.error_km <= 20_016
    assert rows[3].error_km is None and rows[3].pred.error
    text = "\n".join(demo_lines(rows))
    assert "Paris" in text or "FR" in text  # the truth is named offline
    assert "3 photos: median error" in text and "error:" in text


def test_demo_marks_fallback_answers(tmp_path, folder):
    from img2loc.inference.predictor import FALLBACK_NOTE
    from tests.inference.conftest import make_model_dir

    rows = run_demo(Predictor.load(make_model_dir(tmp_path / "fb", in_domain=0.001)), folder)
    lines = demo_lines(rows)
    assert all(" * " in line for line in lines[1:4]) and " * " not in lines[4]
    assert lines[-1] == f"* 3 photo(s) {FALLBACK_NOTE}"
    plain = demo_lines(rows[:0])
    assert not any(FALLBACK_NOTE in line for line in plain)


def test_demo_cli(model_dir, folder):
    out = run("demo", str(folder), "--model", str(model_dir), "--decode", "score").stdout
    assert "median error" in out and "img2loc serve" in out


def test_read_locations_errors_say_how_to_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"locations\.csv"):
        read_locations(tmp_path)
    (tmp_path / "locations.csv").write_text("image,latitude,longitude\na.jpg,north,2\n")
    with pytest.raises(ValueError, match=r"locations\.csv:2"):
        read_locations(tmp_path)


@pytest.mark.skipif(not (EXAMPLES_DIR / "locations.csv").is_file(), reason="no bundled examples")
def test_bundled_examples_are_listed_with_attribution():
    rows = read_locations(EXAMPLES_DIR)
    assert len(rows) >= 5 and all(p.is_file() for p, _, _ in rows)
    assert "CC BY-SA 4.0" in (EXAMPLES_DIR / "ATTRIBUTION.md").read_text()
