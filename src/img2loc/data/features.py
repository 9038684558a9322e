"""Reading the feature folders written by ``img2loc embed`` (numpy only, no torch).

A folder holds one ``.npz`` per shard (``features`` N x D float16, optional
``features_flip``, ``latitude``, ``longitude``, ``key``, ``location_id``,
``source``) and ``_info.json`` naming the backbone and the splits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from img2loc.data.io import INFO as INFO
from img2loc.data.io import read_folder_info


def load_feature_info(features: str | Path) -> dict[str, Any]:
    """The ``_info.json`` of a feature folder, with a fix-it message when it is missing."""
    return read_folder_info(features, "compute features with `img2loc embed`")


def load_features(features: str | Path, split: str) -> dict[str, np.ndarray]:
    """All feature files of one split, concatenated (features as float32)."""
    info = load_feature_info(features)
    if split not in info["splits"]:
        raise ValueError(f"{features} has no {split!r} split (has {sorted(info['splits'])})")
    parts = []
    for name in info["splits"][split]["files"]:
        with np.load(Path(features) / name, allow_pickle=False) as z:
            parts.append({k: z[k] for k in z.files})
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    for k in ("features", "features_flip"):
        if k in out:
            out[k] = out[k].astype(np.float32)
    return out
