"""Dataset cleaning from embeddings: cluster, look, drop.

PlaNet-style training data from photo sites is full of indoor shots, portraits,
food and documents that carry no location signal. The original project clustered
its Flickr images and threw such clusters away; this module does the same:

1. ``cluster_features`` — k-means (scipy, k-means++ start, seeded) on L2-normalised
   frozen-backbone features from ``img2loc embed``; ``clusters.csv`` maps every
   key to its cluster and its distance to the centre.
2. :func:`img2loc.viz.clusters.write_cluster_sheets` — a contact sheet PNG per cluster
   (the photos nearest its centre), so a person can name the clusters to drop (drawing
   lives in viz/: data/ never imports it).
3. ``drop_clusters`` — the manifest without the photos of the named clusters.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.cluster.vq import kmeans2

from img2loc.data.features import load_feature_info, load_features
from img2loc.data.manifest import read_manifest, write_manifest
from img2loc.geo.atomic import atomic_write_text


def cluster_features(
    features: str | Path, k: int, seed: int = 0, splits: list[str] | None = None
) -> pd.DataFrame:
    """One row per photo: ``key``, ``cluster``, ``distance`` (cosine distance to its centre)."""
    info = load_feature_info(features)
    parts = [load_features(features, s) for s in (splits or sorted(info["splits"]))]
    x = np.concatenate([p["features"] for p in parts]).astype(np.float64)
    keys = np.concatenate([p["key"] for p in parts])
    if not 1 <= k <= len(x):
        raise ValueError(f"k must be between 1 and the number of photos ({len(x)}), got {k}")
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    centres, labels = kmeans2(x, k, minit="++", seed=np.random.default_rng(seed))
    centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    dist = 1.0 - np.einsum("ij,ij->i", x, centres[labels])
    return pd.DataFrame({"key": keys, "cluster": labels.astype(int), "distance": dist})


def write_clusters(clusters: pd.DataFrame, path: str | Path) -> Path:
    """Write ``clusters.csv`` atomically."""
    atomic_write_text(path, clusters.to_csv(index=False))
    return Path(path)


def drop_clusters(
    manifest: str | Path, clusters: pd.DataFrame, drop: list[int], output: str | Path
) -> tuple[int, int]:
    """Write the manifest without the photos of clusters ``drop``; returns (kept, dropped)."""
    unknown = sorted(set(drop) - set(clusters["cluster"].unique().tolist()))
    if unknown:
        raise ValueError(f"no cluster {unknown} (clusters are 0..{clusters['cluster'].max()})")
    df = read_manifest(manifest)
    gone = set(clusters.loc[clusters["cluster"].isin(drop), "key"])
    keep = ~df["key"].isin(gone)
    write_manifest(df[keep], output)
    return int(keep.sum()), int((~keep).sum())
