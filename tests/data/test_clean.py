import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from img2loc.data.clean import cluster_features
from img2loc.data.manifest import read_manifest, write_manifest
from img2loc.data.sources.table import import_table
from tests.conftest import make_photo_table

EXE = str(Path(sys.executable).with_name("img2loc"))


def _features(tmp_path: Path) -> tuple[Path, Path, dict[str, int]]:
    """A manifest of generated photos and fake features in 3 well-separated groups."""
    df, _ = import_table(make_photo_table(tmp_path, n_loc=10, seed=3))
    write_manifest(df, tmp_path / "m.parquet")
    df = read_manifest(tmp_path / "m.parquet")
    rng = np.random.default_rng(0)
    truth = {k: i % 3 for i, k in enumerate(df["key"])}
    centres = np.eye(3, 16) * 10
    feats = np.stack([centres[truth[k]] + rng.normal(0, 0.3, 16) for k in df["key"]])
    d = tmp_path / "feats"
    d.mkdir()
    np.savez(
        d / "train-000000.npz",
        features=feats.astype(np.float16),
        latitude=df["latitude"].to_numpy(),
        longitude=df["longitude"].to_numpy(),
        key=df["key"].to_numpy(str),
        location_id=df["location_id"].to_numpy(str),
        source=df["source"].to_numpy(str),
    )
    (d / "_info.json").write_text(
        json.dumps(
            {
                "splits": {
                    "train": {"files": ["train-000000.npz"], "counts": [len(df)], "n": len(df)}
                }
            }
        )
    )
    return d, tmp_path / "m.parquet", truth


def test_kmeans_recovers_separated_groups(tmp_path):
    feats, _, truth = _features(tmp_path)
    c = cluster_features(feats, k=3, seed=0)
    assert len(c) == len(truth)
    # Every true group maps to exactly one cluster, and vice versa.
    pairs = {(truth[k], int(cl)) for k, cl in zip(c["key"], c["cluster"], strict=True)}
    assert len(pairs) == 3 and len({a for a, _ in pairs}) == len({b for _, b in pairs}) == 3
    assert (c["distance"] >= -1e-9).all() and (c["distance"] < 0.1).all()


def test_cli_writes_sheets_then_drops_named_clusters(tmp_path):
    feats, manifest, _ = _features(tmp_path)
    out = tmp_path / "clean"
    run = [EXE, "data", "clean", str(feats), "--manifest", str(manifest), "-o", str(out), "-k", "3"]
    proc = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    sheets = sorted(out.glob("cluster_*.png"))
    assert len(sheets) == 3 and Image.open(sheets[0]).size[0] > 100
    clusters = pd.read_csv(out / "clusters.csv", dtype={"key": str})
    dropped = set(clusters.loc[clusters["cluster"] == 1, "key"])

    filtered = tmp_path / "clean.parquet"
    proc = subprocess.run(
        [*run, "--drop", "1", "--filtered", str(filtered)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    kept = read_manifest(filtered)
    assert len(kept) == len(read_manifest(manifest)) - len(dropped)
    assert not set(kept["key"]) & dropped

    proc = subprocess.run(
        [*run, "--drop", "9", "--filtered", str(filtered)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "no cluster [9]" in proc.stderr
