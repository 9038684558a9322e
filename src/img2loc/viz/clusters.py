"""Contact sheets of photo clusters (``img2loc data clean``): look before you drop."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image

from img2loc.data.images import open_image
from img2loc.data.io import read_bytes
from img2loc.viz.errors import contact_sheet


def write_cluster_sheets(
    clusters: pd.DataFrame,
    manifest: pd.DataFrame,
    out_dir: str | Path,
    per_cluster: int = 24,
    thumb: int = 160,
) -> list[Path]:
    """A contact sheet per cluster, photos nearest the centre first; returns the PNG paths."""
    images = manifest.set_index("key")["image"]
    out = []
    for c, grp in clusters.groupby("cluster", sort=True):
        top = grp.nsmallest(per_cluster, "distance")
        ims, caps = [], []
        for key in top["key"]:
            ims.append(_thumbnail(images.get(key), thumb))
            caps.append(str(key)[-24:])
        title = f"cluster {c}: {len(grp)} photos ({len(grp) / len(clusters):.1%})"
        out.append(
            contact_sheet(
                ims, caps, Path(out_dir) / f"cluster_{c:03d}.png", title=title, cols=6, thumb=thumb
            )
        )
    return out


def _thumbnail(ref: object, size: int) -> Image.Image | None:
    if not isinstance(ref, str):
        return None
    try:
        return open_image(read_bytes(ref), draft=(size, size))
    except Exception:  # an unreadable photo becomes a grey tile, the sheet still draws
        return None
