"""Regenerate src/img2loc/viz/data/world_110m.npz from npm's `world-atlas` package.

    npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz
    python scripts/make_world_outline.py package/countries-110m.json

The TopoJSON arcs (country borders and coastlines, Natural Earth 1:110m, public
domain) are decoded to lon/lat polylines and stored compactly so `img2loc cells
show` and the reports draw maps offline with no geo stack.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def main(src: str, dst: str = "src/img2loc/viz/data/world_110m.npz") -> None:
    topo = json.loads(Path(src).read_text())
    sx, sy = topo["transform"]["scale"]
    tx, ty = topo["transform"]["translate"]
    lines = []
    for arc in topo["arcs"]:
        q = np.cumsum(np.asarray(arc, dtype=np.int64), axis=0)  # delta-encoded
        lines.append(np.stack([q[:, 0] * sx + tx, q[:, 1] * sy + ty], axis=1))
    coords = np.concatenate(lines).astype(np.float32)
    offsets = np.cumsum([0] + [len(x) for x in lines]).astype(np.int64)
    np.savez_compressed(dst, lonlat=coords, offsets=offsets)
    print(f"{len(lines)} lines, {len(coords)} points -> {dst}")


if __name__ == "__main__":
    main(*sys.argv[1:])
