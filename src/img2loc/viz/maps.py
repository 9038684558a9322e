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
    lines: list[np.ndarray] = []
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


#: Data spanning more than this share of the world's width or height gets the world map.
REGIONAL_SHARE = 0.6


def fit_to_data(ax: Any, lon: np.ndarray, lat: np.ndarray, margin: float = 0.12) -> bool:
    """Zoom world axes to the data's extent (plus a margin) when the data is regional.

    Data spanning most of the world keeps the whole world. A zoomed map is drawn with
    the aspect of its middle latitude (a degree of longitude shrinks with its cosine), so
    a country keeps its shape. Returns whether the view was zoomed.
    """
    lon, lat = np.asarray(lon, float).ravel(), np.asarray(lat, float).ravel()
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        return False
    lon, lat = lon[ok], lat[ok]
    x0, x1, y0, y1 = lon.min(), lon.max(), lat.min(), lat.max()
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    squash = max(float(np.cos(np.radians(cy))), 0.2)  # displayed width of a degree of lon
    # At least 2 degrees of view, framed between square and 2.5:1 landscape as displayed.
    w, h = max(x1 - x0, 2.0) * squash, max(y1 - y0, 2.0)
    w, h = max(w, h), max(h, w / 2.5)
    w, h = w / squash * (1 + 2 * margin), h * (1 + 2 * margin)
    if w > REGIONAL_SHARE * 360 or h > REGIONAL_SHARE * 180:
        return False
    cx = float(np.clip(cx, -180 + w / 2, 180 - w / 2))
    cy = float(np.clip(cy, -90 + h / 2, 90 - h / 2))
    ax.set_xlim(cx - w / 2, cx + w / 2)
    ax.set_ylim(cy - h / 2, cy + h / 2)
    ax.set_aspect(1 / squash)
    return True


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
    if edges:
        pts = np.concatenate(edges)
        fit_to_data(ax, pts[:, 0], pts[:, 1], margin=0.04)
    # `cells build` counts places (location groups) unless told --count-photos.
    counted = "places" if cells.params.get("counted") == "groups" else "photos"
    fig.colorbar(pc, ax=ax, shrink=0.6, label=f"{counted} per leaf cell")
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
    fit_to_data(ax, lon, lat)
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
