"""Every command that reads photos, over the bad-input corpus (tests/bad_inputs.py).

Each must name the bad file and why, carry on with the rest, exit as documented,
finish (subprocess timeouts), and leave no temp or half-written file behind.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from img2loc.server import load_game_data
from tests.bad_inputs import Case, write_bad_corpus
from tests.inference.conftest import make_model_dir

EXE = Path(sys.executable).with_name("img2loc")
#: Cases whose problem is visible without decoding the pixels (header, size, type).
HEADER_ERRORS = ("empty file", "not a recognised", "HTML", "decompression bomb")


def img2loc(*args: str | Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run the CLI; a hang fails the test (TimeoutExpired) instead of stalling CI."""
    proc = subprocess.run(
        [str(EXE), *map(str, args)], capture_output=True, text=True, timeout=timeout
    )
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc


def leftovers(folder: Path) -> list[Path]:
    """Temp or partial files under ``folder`` (what a crash mid-write would leave)."""
    return [
        p
        for p in folder.rglob("*")
        if ".tmp" in p.name or p.name.endswith((".part", ".partial", "~"))
    ]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, Case], Path]:
    """The corpus folder, its expectations, and a locations.csv over it (plus bad rows)."""
    root = tmp_path_factory.mktemp("bad")
    folder = root / "photos"
    cases = write_bad_corpus(folder)
    table = root / "locations.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "latitude", "longitude"])
        for i, name in enumerate(sorted(cases)):
            w.writerow([f"photos/{name}", -40 + 3 * i, -170 + 14 * i])
        # Coordinates no photo can have: reported per row, never fatal.
        w.writerows([["photos/good_0.jpg", 91, 10], ["photos/good_1.jpg", 10, 200]])
        w.writerow(["photos/good_2.jpg", "nan", 1])
    return folder, cases, table


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("model") / "tiny")


def test_import_folder(corpus, tmp_path):
    folder, cases, _ = corpus
    out = tmp_path / "m.parquet"
    proc = img2loc("data", "import", "folder", folder, "-o", out)
    assert proc.returncode == 0, proc.stderr
    df = pd.read_parquet(out)
    assert sorted(Path(p).name for p in df["image"]) == sorted(n for n, c in cases.items() if c.gps)
    skipped = dict(pd.read_csv(tmp_path / "m.skipped.csv").itertuples(index=False))
    assert set(skipped) == {n for n, c in cases.items() if not c.gps}
    assert all(isinstance(why, str) and why for why in skipped.values())
    for name, c in cases.items():
        if not c.decodes and c.error in HEADER_ERRORS:
            assert c.error in skipped[name], (name, skipped[name])
    assert "out of range (lat=91.0" in skipped["gps_lat91.jpg"]
    assert "lon=200.0" in skipped["gps_lon200.jpg"]
    assert "0/0" in skipped["gps_nan.jpg"]
    assert leftovers(tmp_path) == []


def test_import_csv_then_shards(corpus, tmp_path):
    _, cases, table = corpus
    m = tmp_path / "m.parquet"
    proc = img2loc("data", "import", "csv", table, "-o", m)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("bad coordinates") == 3
    out = tmp_path / "shards"
    proc = img2loc("data", "shards", m, "-o", out, "--shard-size", "6", "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    errors = pd.read_csv(out / "errors.csv")
    bad = {n for n, c in cases.items() if not c.decodes}
    info = json.loads((out / "_info.json").read_text())
    assert info["n_errors"] == len(errors) == len(bad)
    for msg in errors["error"]:
        name = next(n for n in bad if n in msg)  # every message names its file ...
        assert cases[name].error in msg, msg  # ... and says what is wrong with it
    index = pd.read_parquet(out / "_index.parquet")
    assert len(index) == len(cases) - len(bad)
    assert sum(s["n"] for s in info["splits"].values()) == len(index)
    assert leftovers(tmp_path) == []
    # Run again: nothing to do, same result (resumable, idempotent).
    again = img2loc("data", "shards", m, "-o", out, "--shard-size", "6", "--workers", "2")
    assert again.returncode == 0 and json.loads((out / "_info.json").read_text()) == info


def test_predict(corpus, tiny_model, tmp_path):
    folder, cases, _ = corpus
    proc = img2loc(
        "predict", "--json", "--model", tiny_model, folder, tmp_path / "missing.jpg",
        str(tmp_path / "nothing-*.png"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr  # 1 only when every input failed
    res = {Path(r["image"]).name: r for r in json.loads(proc.stdout)}
    assert len(res) == len(cases) + 2
    for name, c in cases.items():
        r = res[name]
        if c.decodes:
            assert r["error"] is None and r["lat"] is not None, (name, r["error"])
        else:
            assert name in r["error"] and c.error in r["error"] and r["lat"] is None, r
    assert "no such file" in res["missing.jpg"]["error"]
    assert res["phone.heic"]["exif"] == {"lat": 45.0, "lon": 7.0}
    for name in ("gps_lat91.jpg", "gps_lon200.jpg", "gps_nan.jpg", "gps_broken_ifd.jpg"):
        assert res[name]["exif"] is None and res[name]["error_km"] is None
    assert "failed" in proc.stderr  # the summary line on stderr
    only_bad = [folder / n for n, c in cases.items() if not c.decodes]
    proc = img2loc("predict", "--csv", "--model", tiny_model, *only_bad)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr


def test_eval(corpus, tiny_model, tmp_path):
    _, cases, table = corpus
    out = tmp_path / "report"
    proc = img2loc("eval", "--model", tiny_model, "--data", table, "-o", out, "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    errors = pd.read_csv(out / "errors.csv")
    bad = {n for n, c in cases.items() if not c.decodes}
    for name in bad:
        (msg,) = [m for m in errors["reason"] if f"/{name}:" in m]
        assert cases[name].error in msg
    assert errors["reason"].str.contains("bad coordinates").sum() == 3
    pred = pd.read_csv(out / "predictions.csv")  # every row, the failed ones with the error
    assert len(pred) == len(cases) and pred["error"].notna().sum() == len(bad)
    assert pred.loc[pred["error"].isna(), "score_lat"].notna().all()
    assert leftovers(tmp_path) == []


def test_serve_game_data(corpus, tiny_model, tmp_path):
    _, cases, table = corpus
    game = load_game_data(table)
    msgs = io.StringIO()
    game.report(msgs, limit=100)
    text = msgs.getvalue()
    served = {str(p.name) for p in game.files.values()}
    for name, c in cases.items():
        if not c.decodes and c.error in HEADER_ERRORS:
            assert name not in served and c.error in text, name
    assert "good_0.jpg" in served and "bad coordinates" in text
    site = tmp_path / "site"
    proc = img2loc("serve", "--model", tiny_model, "--game-data", table, "--export-site", site)
    assert proc.returncode == 0, proc.stderr
    assert "left out" in proc.stderr and (site / "game" / "locations.csv").is_file()
    assert leftovers(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["site"]


@pytest.mark.shared_data
def test_real_camera_files(tiny_model, tmp_path):
    """The 45 real files with odd EXIF in ../shared/data/photos-exif-gps: no crash, all named."""
    from tests.conftest import SHARED

    folder = SHARED / "photos-exif-gps"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".heic"))
    proc = img2loc("data", "import", "folder", folder, "-o", tmp_path / "m.parquet")
    assert proc.returncode == 0, proc.stderr
    n_imported = len(pd.read_parquet(tmp_path / "m.parquet"))
    n_skipped = len(pd.read_csv(tmp_path / "m.skipped.csv"))
    assert n_imported + n_skipped == len(list(folder.iterdir())) and n_imported > 30
    proc = img2loc("predict", "--json", "--model", tiny_model, *photos, timeout=300)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert [r["image"] for r in res] == [str(p) for p in photos]
    assert all(r["error"] is None for r in res), [r["error"] for r in res if r["error"]]
    assert sum(r["exif"] is not None for r in res) == n_imported
