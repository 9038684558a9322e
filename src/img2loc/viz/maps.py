"""World maps drawn offline: bundled Natural Earth outlines + matplotlib."""

from __future__ import annotations

import itertools
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from img2loc.geo import s2
from img2loc.geo.atomic import atomic_path
from img2loc.geo.cells import CellSet


@lru_cache(maxsize=1)
def world_lines() -> list[np.ndarray]:
    """Country borders and coastlines as (n, 2) lon/lat arrays."""
    with resources.files("img2loc.viz").joinpath("data/world_110m.npz").open("rb") as f:
        z = np.load(f)
        coords, offsets = z["lonlat"], z["offsets"]
    lines = []
    for a, b in itertools.pairwise(offsets):
        line = coords[a:b]
        # Arcs that run along the antimeridian jump from +180 to -180: cut them there.
        jumps = np.flatnonzero(np.abs(np.diff(line[:, 0])) > 180) + 1
        lines.extend(part for part in np.split(line, jumps) if len(part) > 1)
    return lines


def world_axes(figsize: tuple[float, float] = (14, 7)) -> tuple[Any, Any]:
    """A figure and equirectangular axes with the world's outlines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    fig, ax = plt.subplots(figsize=figsize)
    ax.add_collection(LineCollection(world_lines(), colors="#555555", linewidths=0.4, zorder=1))
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_aspect("equal")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_facecolor("#f4f8fb")
    return fig, ax


def _unwrapped_polygon(cell_id: int, level: int) -> list[np.ndarray]:
    """Cell boundary as lon/lat polygons, duplicated across the antimeridian when needed."""
    seg = max(1, 2 ** max(0, 6 - level))
    pts = np.array(s2.cell_polygon(cell_id, seg))[:, ::-1]  # -> lon, lat
    lon = np.degrees(np.unwrap(np.radians(pts[:, 0])))
    poly = np.stack([lon, pts[:, 1]], axis=1)
    out = [poly]
    if lon.max() > 180:
        out.append(poly - np.array([360.0, 0.0]))
    if lon.min() < -180:
        out.append(poly + np.array([360.0, 0.0]))
    return out


def plot_cells(cells: CellSet, path: str | Path, title: str | None = None) -> Path:
    """Draw every cell on a world map, leaves shaded by photo count; write a PNG."""
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import LogNorm

    fig, ax = world_axes()
    polys, vals, edges = [], [], []
    for i in range(len(cells)):
        for p in _unwrapped_polygon(int(cells.ids[i]), int(cells.levels[i])):
            if cells.is_leaf[i]:
                polys.append(p)
                vals.append(max(int(cells.counts[i]), 1))
            edges.append(p)
    ax.add_collection(
        PolyCollection(edges, facecolors="none", edgecolors="#1f4e79", linewidths=0.3, zorder=2)
    )
    pc = PolyCollection(
        polys,
        array=np.asarray(vals, float),
        cmap="viridis",
        norm=LogNorm(),
        alpha=0.55,
        edgecolors="none",
        zorder=1.5,
    )
    ax.add_collection(pc)
    fig.colorbar(pc, ax=ax, shrink=0.6, label="photos per leaf cell")
    info = cells.summary()
    ax.set_title(
        title
        or f"{info['n_cells']} cells ({info['n_leaves']} leaves), levels "
        f"{min(cells.level_list)}–{max(cells.level_list)}"
    )
    return save_figure(fig, path)


def plot_points(
    lat: np.ndarray,
    lon: np.ndarray,
    path: str | Path,
    *,
    groups: np.ndarray | None = None,
    title: str = "",
) -> Path:
    """Scatter photo locations on a world map, one colour per group (e.g. source)."""

    fig, ax = world_axes()
    if groups is None:
        ax.scatter(lon, lat, s=3, alpha=0.6, zorder=3)
    else:
        for g in sorted(set(groups.tolist())):
            m = groups == g
            ax.scatter(lon[m], lat[m], s=3, alpha=0.6, zorder=3, label=f"{g} ({int(m.sum())})")
        ax.legend(loc="lower left", markerscale=4, fontsize=8)
    ax.set_title(title)
    return save_figure(fig, path)


def save_figure(fig: Any, path: str | Path) -> Path:
    """Write a figure as PNG atomically (temp file + rename) and close it."""
    import matplotlib.pyplot as plt

    out = Path(path)
    try:
        with atomic_path(out, suffix=".tmp.png") as tmp:  # savefig picks the format by suffix
            fig.savefig(tmp, dpi=130, bbox_inches="tight")
    finally:
        plt.close(fig)
    return out
