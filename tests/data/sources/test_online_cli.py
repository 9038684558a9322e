"""`img2loc data import streetview` end to end against the fake Google server."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.data.sources.test_streetview import POINTS, SECRET, FakeGoogle

EXE = str(Path(sys.executable).with_name("img2loc"))


def test_streetview_cli(serve, tmp_path):
    srv = serve(FakeGoogle())
    pts = tmp_path / "points.csv"
    pd.DataFrame(POINTS, columns=["latitude", "longitude"]).to_csv(pts, index=False)
    env = {**os.environ, "GOOGLE_MAPS_API_KEY": SECRET}
    args = [
        EXE,
        "data",
        "import",
        "streetview",
        "--points",
        str(pts),
        "--headings",
        "2",
        "--images",
        str(tmp_path / "sv"),
        "-o",
        str(tmp_path / "sv.parquet"),
        "--base-url",
        srv.url,
        "--budget-usd",
        "0.028",
        "--price-per-1000",
        "7",
    ]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    df = pd.read_parquet(tmp_path / "sv.parquet")
    assert len(df) == 4 and set(df["source"]) == {"streetview"}  # budget: 4 images
    assert "not imported" in proc.stdout  # ZERO_RESULTS / malformed points are reported
    env.pop("GOOGLE_MAPS_API_KEY")
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and "GOOGLE_MAPS_API_KEY" in proc.stderr
