"""Adaptive S2 cell sets where split cells keep their parents (multi-label targets).

PlaNet partitions the Earth by recursively splitting S2 cells that hold too
many photos and discarding cells that hold too few. Here a split cell stays in
the set beside its children, so a photo's target is every cell that contains
it, from region to street block, and coarse cells learn from many more photos.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from img2loc.errors import FormatError
from img2loc.geo import s2
from img2loc.geo.coords import validate_coords
from img2loc.geo.distance import THRESHOLDS_KM, from_xyz, geo_metrics, haversine_km, to_xyz

FORMAT = "img2loc-cellset"
FORMAT_VERSION = 1


class CellSet:
    """An ordered set of S2 cells; a cell's index is its label.

    Cells are sorted by level, then id, so every parent precedes its children.
    Build one with :meth:`build`; read one with :func:`img2loc.data.cells.read_cells`.
    """

    def __init__(
        self,
        ids: ArrayLike,
        counts: ArrayLike | None = None,
        params: dict[str, Any] | None = None,
        centers: ArrayLike | None = None,
        prior: ArrayLike | None = None,
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
        #: Probability of each cell under a prior over where photos are taken (see
        #: :meth:`with_prior`): leaves sum to 1, a cell holds its leaves' sum. None without.
        self.prior: NDArray[np.float64] | None = (
            None if prior is None else np.asarray(prior, dtype=np.float64).ravel()[order]
        )
        if self.prior is not None and self.prior.size != self.ids.size:
            raise ValueError(f"{self.prior.size} prior values for {self.ids.size} cells")

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
        xyz = to_xyz(la, lo)
        kept_ids: list[NDArray[np.uint64]] = []
        kept_counts: list[NDArray[np.int64]] = []
        kept_points: list[NDArray[np.float64]] = []
        for lv in range(min_level, max_level + 1):
            p = s2.parent_ids(active, lv)
            uniq, inverse, counts = np.unique(p, return_inverse=True, return_counts=True)
            keep = counts >= min_samples
            kept_ids.append(uniq[keep])
            kept_counts.append(counts[keep])
            # A cell's guess point is where its photos are (their spherical centroid), not
            # its S2 centre: a coastal cell's centre can lie at sea or a country away.
            sums = np.zeros((uniq.size, 3))
            np.add.at(sums, inverse, xyz)
            kept_points.append(sums[keep])
            split = uniq[keep & (counts > max_samples)]
            if split.size == 0:
                break
            pos = np.clip(np.searchsorted(split, p), 0, split.size - 1)
            inside = split[pos] == p
            active, xyz = active[inside], xyz[inside]
        params = {
            "min_samples": min_samples,
            "max_samples": max_samples,
            "min_level": min_level,
            "max_level": max_level,
            "counted": "groups" if groups is not None else "photos",
            "n_counted": int(la.size),
        }
        centers = np.stack(from_xyz(np.concatenate(kept_points)), axis=1)
        return cls(np.concatenate(kept_ids), np.concatenate(kept_counts), params, centers)

    def with_prior(
        self,
        lat: ArrayLike,
        lon: ArrayLike,
        *,
        min_samples: int,
        max_samples: int,
    ) -> CellSet:
        """These cells plus cells seeded by a prior over where photos are taken.

        ``lat``/``lon`` are where people take photos (e.g. MP-16's Flickr coordinates),
        not training photos. Cells are built from them as by :meth:`build` (same levels)
        and added where they do not split a cell of this set's leaves, so every trained
        cell keeps its meaning while places without training photos (much of Asia,
        Africa, South America for a Street View set) get cells a guess can land in.
        Added cells count no training place; their guess point is their prior points'
        centroid. :attr:`prior` gets each cell's share of the prior points (each point
        goes to the leaf whose guess point is nearest).
        """
        la, lo = validate_coords(lat, lon)
        seeded = CellSet.build(
            la,
            lo,
            min_samples=min_samples,
            max_samples=max_samples,
            min_level=int(self.params.get("min_level", self.level_list[0])),
            max_level=int(self.params.get("max_level", self.level_list[-1])),
        )
        # Both sets hold every ancestor of their cells down to min_level, so a seeded cell
        # lies under one of our leaves exactly when its own chain holds that leaf.
        our_leaves = set(self.ids[self.is_leaf].tolist())
        ours = set(self.ids.tolist())
        add = [
            i
            for i in range(len(seeded))
            if int(seeded.ids[i]) not in ours
            and not any(int(seeded.ids[j]) in our_leaves for j in seeded.chain[i] if j >= 0)
        ]
        params = dict(self.params)
        params["prior"] = {
            "n_points": int(la.size),
            "min_samples": min_samples,
            "max_samples": max_samples,
            "added_cells": len(add),
        }
        ids = np.r_[self.ids, seeded.ids[add]]
        centers = np.r_[
            np.c_[self.center_lat, self.center_lon],
            np.c_[seeded.center_lat[add], seeded.center_lon[add]],
        ]
        counts = np.r_[self.counts, np.zeros(len(add), np.int64)]
        out = CellSet(ids, counts, params, centers)
        out.prior = out.prior_mass(la, lo)
        return out

    def prior_mass(self, lat: ArrayLike, lon: ArrayLike) -> NDArray[np.float64]:
        """Share of the points ``lat``/``lon`` in every cell (leaves by nearest guess point)."""
        la, lo = validate_coords(lat, lon)
        leaves = np.flatnonzero(self.is_leaf)
        _, k = cKDTree(to_xyz(self.center_lat[leaves], self.center_lon[leaves])).query(
            to_xyz(la, lo)
        )
        mass = np.zeros(len(self))
        mass[leaves] = np.bincount(np.asarray(k), minlength=leaves.size) / max(la.size, 1)
        for i in range(len(self) - 1, -1, -1):  # children come after parents
            if self.parent[i] >= 0:
                mass[self.parent[i]] += mass[i]
        return mass

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

    def nearest_point(self, lat: ArrayLike, lon: ArrayLike) -> NDArray[np.int64]:
        """Index of the cell whose guess point is nearest to each coordinate."""
        la, lo = validate_coords(lat, lon)
        # Chord length orders points as great-circle distance does.
        tree = cKDTree(to_xyz(self.center_lat, self.center_lon))
        _, idx = tree.query(to_xyz(la, lo))
        out: NDArray[np.int64] = np.asarray(idx, np.int64).reshape(la.shape)
        return out

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
            if self.prior is not None:
                rec["prior"] = round(float(self.prior[i]), 8)
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
        """Inverse of :meth:`to_dict`, validated record by record.

        Raises :class:`~img2loc.errors.FormatError` naming the record and the field
        (the reader of the file adds the file's name).
        """
        if not isinstance(d, dict):
            raise FormatError(f"expected a JSON object, got {type(d).__name__}")
        if d.get("format") != FORMAT:
            raise FormatError(f"not an img2loc cell set (format={d.get('format')!r})")
        version = d.get("version", 0)
        if not isinstance(version, int) or isinstance(version, bool):
            raise FormatError(f"field 'version' must be an integer, got {version!r}")
        if version > FORMAT_VERSION:
            raise FormatError(
                f"cell set version {version} is newer than this img2loc "
                f"understands ({FORMAT_VERSION}); upgrade img2loc"
            )
        cells = d.get("cells")
        if not isinstance(cells, list) or not cells:
            raise FormatError("field 'cells' must be a non-empty list of cell records")
        params = d.get("params", {})
        if not isinstance(params, dict):
            raise FormatError(f"field 'params' must be an object, got {type(params).__name__}")
        ids, counts, centers, prior = [], [], [], []
        for i, c in enumerate(cells):
            token, count, lat, lon, p = _cell_record(i, c)
            ids.append(token)
            counts.append(count)
            centers.append((lat, lon))
            prior.append(p)
        priors = [p for p in prior if p is not None]
        if len(priors) < len(prior):  # priors are all or none
            priors = []
        try:
            return cls(ids, counts, params, centers, priors or None)
        except ValueError as e:
            raise FormatError(str(e)) from None


def _cell_record(i: int, c: object) -> tuple[int, int, float, float, float | None]:
    """(id, count, lat, lon, prior or None) of record ``i`` of a cell set document."""
    if not isinstance(c, dict):
        raise FormatError(f"cells[{i}] must be an object, got {type(c).__name__}")

    def number(key: str, lo: float, hi: float) -> float:
        v = c.get(key)
        if v is None:
            raise FormatError(f"cells[{i}]: field {key!r} is missing")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise FormatError(
                f"cells[{i}]: field {key!r} must be a number in [{lo:g}, {hi:g}], got {v!r}"
            )
        return float(v)

    token = c.get("token")
    if not isinstance(token, str):
        raise FormatError(f"cells[{i}]: field 'token' must be an S2 token string, got {token!r}")
    try:
        cid = s2.token_to_id(token)
    except ValueError as e:
        raise FormatError(f"cells[{i}]: field 'token': {e}") from None
    count = c.get("count", 0)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise FormatError(f"cells[{i}]: field 'count' must be a whole number >= 0, got {count!r}")
    prior = number("prior", 0.0, math.inf) if "prior" in c else None
    return cid, count, number("lat", -90.0, 90.0), number("lon", -180.0, 180.0), prior


def oracle_metrics(
    cells: CellSet,
    lat: ArrayLike,
    lon: ArrayLike,
    thresholds_km: tuple[float, ...] = THRESHOLDS_KM,
) -> dict[str, Any]:
    """Best figures the cell set allows: every photo guessed at the nearest cell point.

    A decoder that answers with cells can do no better than the cell whose guess point
    (:attr:`CellSet.center_lat`, where the cell's photos are) lies nearest the truth.
    Per photo this is the best of all cells, so it can only beat a constant guess
    by as much as the cells are spread over the photos.
    """
    la, lo = validate_coords(lat, lon)
    idx = cells.nearest_point(la, lo)
    return geo_metrics(cells.center_lat[idx], cells.center_lon[idx], la, lo, thresholds_km)
