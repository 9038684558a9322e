"""Adaptive S2 cell sets where split cells keep their parents (multi-label targets).

PlaNet partitions the Earth by recursively splitting S2 cells that hold too
many photos and discarding cells that hold too few. Here a split cell stays in
the set beside its children, so a photo's target is every cell that contains
it, from region to street block, and coarse cells learn from many more photos.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from img2loc.geo import s2
from img2loc.geo.atomic import atomic_write_text
from img2loc.geo.coords import validate_coords
from img2loc.geo.distance import THRESHOLDS_KM, geo_metrics, haversine_km

FORMAT = "img2loc-cellset"
FORMAT_VERSION = 1


class CellSet:
    """An ordered set of S2 cells; a cell's index is its label.

    Cells are sorted by level, then id, so every parent precedes its children.
    Build one with :meth:`build`, load one with :meth:`load`.
    """

    def __init__(
        self,
        ids: ArrayLike,
        counts: ArrayLike | None = None,
        params: dict[str, Any] | None = None,
        centers: ArrayLike | None = None,
    ) -> None:
        ids_arr = np.asarray(ids, dtype=np.uint64).ravel()
        if ids_arr.size == 0:
            raise ValueError("a CellSet needs at least one cell; lower --min-samples or add photos")
        levels = s2.id_level(ids_arr)
        order = np.lexsort((ids_arr, levels))
        self.ids: NDArray[np.uint64] = ids_arr[order]
        self.levels: NDArray[np.int64] = levels[order]
        if np.unique(self.ids).size != self.ids.size:
            raise ValueError("duplicate cells in CellSet")
        self.counts: NDArray[np.int64] = (
            np.zeros(self.ids.size, np.int64)
            if counts is None
            else np.asarray(counts, dtype=np.int64).ravel()[order]
        )
        self.params: dict[str, Any] = dict(params or {})
        self.level_list: list[int] = sorted({int(v) for v in self.levels})
        self._index: dict[int, tuple[NDArray[np.uint64], NDArray[np.int64]]] = {}
        for lv in self.level_list:
            idx = np.flatnonzero(self.levels == lv)
            self._index[lv] = (self.ids[idx], idx.astype(np.int64))
        self.parent: NDArray[np.int64] = np.full(self.ids.size, -1, np.int64)
        for lv in self.level_list:
            if lv == 0:
                continue
            idx = self._index[lv][1]
            self.parent[idx] = self._lookup(s2.parent_ids(self.ids[idx], lv - 1), lv - 1)
        has_child = np.zeros(self.ids.size, bool)
        has_child[self.parent[self.parent >= 0]] = True
        self.is_leaf: NDArray[np.bool_] = ~has_child
        self.depth: NDArray[np.int64] = np.zeros(self.ids.size, np.int64)
        for i in range(self.ids.size):  # parents come first, so one pass suffices
            if self.parent[i] >= 0:
                self.depth[i] = self.depth[self.parent[i]] + 1
        # chain[i] = (i, parent(i), grandparent(i), ...) padded with -1.
        max_depth = int(self.depth.max()) + 1
        chain = np.full((self.ids.size, max_depth), -1, np.int64)
        chain[:, 0] = np.arange(self.ids.size)
        for k in range(1, max_depth):
            prev = chain[:, k - 1]
            chain[:, k] = np.where(prev >= 0, self.parent[np.maximum(prev, 0)], -1)
        self.chain: NDArray[np.int64] = chain
        if centers is None:
            cl = np.array([s2.cell_center(int(c)) for c in self.ids], dtype=np.float64)
        else:
            cl = np.asarray(centers, dtype=np.float64).reshape(-1, 2)[order]
        self.center_lat: NDArray[np.float64] = cl[:, 0]
        self.center_lon: NDArray[np.float64] = cl[:, 1]

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        lat: ArrayLike,
        lon: ArrayLike,
        *,
        min_samples: int = 50,
        max_samples: int = 1000,
        min_level: int = 2,
        max_level: int = 14,
        groups: Sequence[object] | NDArray[Any] | None = None,
    ) -> CellSet:
        """Partition the Earth adaptively from photo coordinates.

        Every cell at ``min_level`` holding ``min_samples`` photos or more is
        kept; a kept cell holding more than ``max_samples`` is split (and stays)
        until ``max_level``. With ``groups`` (e.g. a panorama's location_id)
        photos are counted once per group, so four views of a place count as one.
        """
        if not 1 <= min_samples <= max_samples:
            raise ValueError(
                f"need 1 <= min_samples <= max_samples, got {min_samples}, {max_samples}"
            )
        if not 0 <= min_level <= max_level <= s2.MAX_LEVEL:
            raise ValueError(
                f"need 0 <= min_level <= max_level <= 30, got {min_level}, {max_level}"
            )
        la, lo = validate_coords(lat, lon)
        if groups is not None:
            g = np.asarray(groups)
            if g.shape[0] != la.size:
                raise ValueError(f"{g.shape[0]} groups for {la.size} coordinates")
            _, first = np.unique(g, return_index=True)
            la, lo = la[first], lo[first]
        active = s2.leaf_ids(la, lo)
        kept_ids: list[NDArray[np.uint64]] = []
        kept_counts: list[NDArray[np.int64]] = []
        for lv in range(min_level, max_level + 1):
            p = s2.parent_ids(active, lv)
            uniq, counts = np.unique(p, return_counts=True)
            keep = counts >= min_samples
            kept_ids.append(uniq[keep])
            kept_counts.append(counts[keep])
            split = uniq[keep & (counts > max_samples)]
            if split.size == 0:
                break
            pos = np.clip(np.searchsorted(split, p), 0, split.size - 1)
            active = active[split[pos] == p]
        params = {
            "min_samples": min_samples,
            "max_samples": max_samples,
            "min_level": min_level,
            "max_level": max_level,
            "counted": "groups" if groups is not None else "photos",
            "n_counted": int(la.size),
        }
        return cls(np.concatenate(kept_ids), np.concatenate(kept_counts), params)

    # ------------------------------------------------------------------ labelling
    def __len__(self) -> int:
        return int(self.ids.size)

    def _lookup(self, ids: NDArray[np.uint64], level: int) -> NDArray[np.int64]:
        if level not in self._index:
            return np.full(ids.shape, -1, np.int64)
        ref, idx = self._index[level]
        pos = np.clip(np.searchsorted(ref, ids), 0, ref.size - 1)
        return np.where(ref[pos] == ids, idx[pos], -1)

    def labels(self, lat: ArrayLike, lon: ArrayLike) -> NDArray[np.int64]:
        """Cell index per photo and level: shape (N, n_levels), -1 where no cell."""
        la, lo = validate_coords(lat, lon)
        leaves = s2.leaf_ids(la, lo)
        out = np.full((la.size, len(self.level_list)), -1, np.int64)
        for k, lv in enumerate(self.level_list):
            out[:, k] = self._lookup(s2.parent_ids(leaves, lv), lv)
        return out

    def finest(self, lat: ArrayLike, lon: ArrayLike) -> NDArray[np.int64]:
        """Index of the finest cell holding each photo (single-label target); -1 if none."""
        lab = self.labels(lat, lon)
        has = lab >= 0
        # Labels are a prefix of levels (parents are always kept), so the last hit is finest.
        last = has.shape[1] - 1 - np.argmax(has[:, ::-1], axis=1)
        return np.where(has.any(axis=1), lab[np.arange(lab.shape[0]), last], -1)

    def multi_hot(self, lat: ArrayLike, lon: ArrayLike) -> NDArray[np.float32]:
        """Dense multi-label targets (N, n_cells): 1 for every cell holding the photo."""
        lab = self.labels(lat, lon)
        out = np.zeros((lab.shape[0], len(self)), np.float32)
        rows, cols = np.nonzero(lab >= 0)
        out[rows, lab[rows, cols]] = 1.0
        return out

    def nearest(self, lat: ArrayLike, lon: ArrayLike) -> NDArray[np.int64]:
        """Finest cell holding each photo, else the leaf whose centre is nearest."""
        la, lo = validate_coords(lat, lon)
        idx = self.finest(la, lo)
        miss = np.flatnonzero(idx < 0)
        if miss.size:
            leaves = np.flatnonzero(self.is_leaf)
            d = haversine_km(
                la[miss, None], lo[miss, None], self.center_lat[leaves], self.center_lon[leaves]
            )
            idx[miss] = leaves[np.argmin(d, axis=1)]
        return idx

    # ------------------------------------------------------------------ info
    def tokens(self) -> list[str]:
        """S2 tokens of the cells, in label order."""
        return [s2.id_to_token(int(c)) for c in self.ids]

    def summary(self) -> dict[str, Any]:
        """Cells per level, counts per cell, and the share of cells that are leaves."""
        per_level = {int(lv): int(np.sum(self.levels == lv)) for lv in self.level_list}
        leaf_counts = self.counts[self.is_leaf]
        return {
            "n_cells": len(self),
            "n_leaves": int(self.is_leaf.sum()),
            "cells_per_level": per_level,
            "leaf_count_min": int(leaf_counts.min()),
            "leaf_count_median": float(np.median(leaf_counts)),
            "leaf_count_max": int(leaf_counts.max()),
            "params": self.params,
        }

    # ------------------------------------------------------------------ serialisation
    def to_dict(self, polygons: bool = True) -> dict[str, Any]:
        """JSON-ready description: build parameters and one record per cell."""
        cells = []
        for i, cid in enumerate(self.ids):
            rec: dict[str, Any] = {
                "token": s2.id_to_token(int(cid)),
                "level": int(self.levels[i]),
                "parent": s2.id_to_token(int(self.ids[self.parent[i]]))
                if self.parent[i] >= 0
                else None,
                "lat": round(float(self.center_lat[i]), 6),
                "lon": round(float(self.center_lon[i]), 6),
                "count": int(self.counts[i]),
            }
            if polygons:
                # Big cells have visibly curved edges on a lat/lon map.
                seg = max(1, 2 ** max(0, 6 - int(self.levels[i])))
                rec["polygon"] = [
                    [round(a, 5), round(b, 5)] for a, b in s2.cell_polygon(int(cid), seg)
                ]
            cells.append(rec)
        return {"format": FORMAT, "version": FORMAT_VERSION, "params": self.params, "cells": cells}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CellSet:
        """Inverse of :meth:`to_dict`."""
        if d.get("format") != FORMAT:
            raise ValueError(f"not an img2loc cell set (format={d.get('format')!r})")
        if int(d.get("version", 0)) > FORMAT_VERSION:
            raise ValueError(
                f"cell set version {d['version']} is newer than this img2loc "
                f"understands ({FORMAT_VERSION}); upgrade img2loc"
            )
        cells = d["cells"]
        ids = [s2.token_to_id(c["token"]) for c in cells]
        counts = [int(c.get("count", 0)) for c in cells]
        centers = [(float(c["lat"]), float(c["lon"])) for c in cells]
        return cls(ids, counts, d.get("params", {}), centers)

    def save(self, path: str | os.PathLike[str], polygons: bool = True) -> None:
        """Write JSON atomically (temp file + rename)."""
        atomic_write_text(path, json.dumps(self.to_dict(polygons), separators=(",", ":")))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CellSet:
        """Read a cell set written by :meth:`save`."""
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no cell set at {p}; build one with `img2loc cells build`"
            ) from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{p} is not valid JSON ({e}); rebuild it") from None
        return cls.from_dict(d)


def oracle_metrics(
    cells: CellSet,
    lat: ArrayLike,
    lon: ArrayLike,
    thresholds_km: tuple[float, ...] = THRESHOLDS_KM,
) -> dict[str, Any]:
    """Best figures the cell set allows: every photo guessed at its finest cell's centre.

    Photos outside every cell are guessed at the nearest leaf's centre.
    """
    la, lo = validate_coords(lat, lon)
    idx = cells.nearest(la, lo)
    return geo_metrics(cells.center_lat[idx], cells.center_lon[idx], la, lo, thresholds_km)
