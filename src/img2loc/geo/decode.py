"""Turn per-cell probabilities into a location.

Rules (by name in :data:`DECODERS`):

* ``seed``: threshold 0.5; among predicted cells pick the one with the most
  predicted ancestors, ties to the coarser cell (the original project's rule);
  if nothing passes the threshold, the most probable cell.
* ``hierarchical``: score each leaf by the product of its own and its
  ancestors' probabilities and pick the best.
* ``score``: the point that maximises the *expected* GeoGuessr score under the
  leaf distribution (see :func:`decode_score`). When the model hesitates between
  two regions, this is often a point between them rather than either one.

:func:`leaf_distribution` gives the normalised distribution over leaves for
heatmaps and expected-score guesses. The web app implements ``score`` with the
same candidates and the same arithmetic (``web/src/decode.js``).

**The fallback to the photo prior.** A model exported with an in-domain score gives, per
photo, one more number after its cell probabilities: the weight ``w`` in [0, 1] its own
answer keeps (near 1 for photos like its training photos, near 0 for photos unlike any
of them; see :mod:`img2loc.models.domain`). Rows of ``n_cells + 1`` values carry it, and
every rule here then answers from the leaf distribution ``w * model + (1 - w) * prior``,
where the prior is the cells' share of where people take photos (:attr:`CellSet.prior`).
A place seen from several views keeps their largest ``w`` (:mod:`img2loc.geo.views`). The
``seed`` rule thresholds raw cell probabilities and ignores ``w``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from img2loc.geo.cells import CellSet
from img2loc.geo.distance import (
    EARTH_RADIUS_KM,
    WORLD_MAP_SIZE_KM,
    from_xyz,
    haversine_km,
    to_xyz,
)

_EPS = 1e-12
#: Leaves (by probability) whose centres and pairwise midpoints are candidate guesses.
SCORE_TOP_LEAVES = 24
#: Refinement around the best candidate: distances (km) in 8 compass directions.
SCORE_RING_KM = (400.0, 200.0, 100.0, 50.0, 25.0)

#: (cell index, latitude, longitude) per row.
Decoded = tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]


#: Below this in-domain weight an answer is a fallback (more prior than model).
FALLBACK_BELOW = 0.5


def split_in_domain(
    probs: ArrayLike, cells: CellSet
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    """(cell probabilities (N, n_cells), in-domain weight (N,) or None) of model output rows.

    Rows hold ``n_cells`` probabilities, or ``n_cells + 1`` values when the model has an
    in-domain score (the last one; see the module docstring).
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 1:
        p = p[None]
    n = len(cells)
    if p.ndim != 2 or p.shape[1] not in (n, n + 1):
        raise ValueError(f"expected probabilities of shape (N, {n}) or (N, {n + 1}), got {p.shape}")
    if p.shape[1] == n:
        return p, None
    return p[:, :n], np.clip(p[:, n], 0.0, 1.0)


def _probs(probs: ArrayLike, cells: CellSet) -> NDArray[np.float64]:
    return split_in_domain(probs, cells)[0]


def _leaf_log_scores(
    p: NDArray[np.float64], cells: CellSet
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    leaves = np.flatnonzero(cells.is_leaf)
    chain = cells.chain[leaves]  # (L, D)
    logp = np.log(np.clip(p, _EPS, 1.0))
    g = logp[:, np.maximum(chain, 0)]  # (N, L, D)
    g = np.where(chain >= 0, g, 0.0)
    return leaves, g.sum(axis=2)


def decode_seed(probs: ArrayLike, cells: CellSet, threshold: float = 0.5) -> NDArray[np.int64]:
    """Cell index per row by the seed rule."""
    p = _probs(probs, cells)
    pred = p >= threshold
    anc = cells.chain[:, 1:]  # ancestors, excluding the cell itself
    n_anc = np.where(anc >= 0, pred[:, np.maximum(anc, 0)], False).sum(axis=2)
    # Lexicographic: most predicted ancestors, then coarser level, then probability.
    key = n_anc * 1000.0 - cells.levels[None, :] * 10.0 + p
    key = np.where(pred, key, -np.inf)
    best = np.argmax(key, axis=1)
    none = ~pred.any(axis=1)
    out: NDArray[np.int64] = np.where(none, np.argmax(p, axis=1), best).astype(np.int64)
    return out


def decode_hierarchical(probs: ArrayLike, cells: CellSet) -> NDArray[np.int64]:
    """Leaf index per row maximising the product of probabilities along its chain.

    With an in-domain weight, the most probable leaf of the blend with the prior.
    """
    p, keep = split_in_domain(probs, cells)
    if keep is not None and cells.prior is not None:
        leaves, dist = leaf_distribution(probs, cells)
        best: NDArray[np.int64] = leaves[np.argmax(dist, axis=1)].astype(np.int64)
        return best
    leaves, s = _leaf_log_scores(p, cells)
    out: NDArray[np.int64] = leaves[np.argmax(s, axis=1)].astype(np.int64)
    return out


def prior_leaves(cells: CellSet) -> NDArray[np.float64] | None:
    """The photo prior over the leaves (sums to 1), or None when the cells carry none."""
    if cells.prior is None:
        return None
    q = cells.prior[cells.is_leaf]
    total = q.sum()
    return None if not total > 0 else q / total


def leaf_distribution(
    probs: ArrayLike, cells: CellSet
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """(leaf indices, (N, n_leaves) distribution summing to 1 per row) from chain products.

    Rows with an in-domain weight ``w`` get ``w * model + (1 - w) * prior``.
    """
    p, keep = split_in_domain(probs, cells)
    leaves, s = _leaf_log_scores(p, cells)
    s = s - s.max(axis=1, keepdims=True)
    w = np.exp(s)
    dist = w / w.sum(axis=1, keepdims=True)
    q = prior_leaves(cells)
    if keep is not None and q is not None:
        dist = keep[:, None] * dist + (1.0 - keep[:, None]) * q[None]
    return leaves, dist


def destination(
    lat: NDArray[np.float64], lon: NDArray[np.float64], bearing_deg: float, km: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Point ``km`` from (lat, lon) along ``bearing_deg`` on the sphere."""
    d = km / EARTH_RADIUS_KM
    b = np.radians(bearing_deg)
    p1, l1 = np.radians(lat), np.radians(lon)
    p2 = np.arcsin(np.sin(p1) * np.cos(d) + np.cos(p1) * np.sin(d) * np.cos(b))
    l2 = l1 + np.arctan2(np.sin(b) * np.sin(d) * np.cos(p1), np.cos(d) - np.sin(p1) * np.sin(p2))
    return np.degrees(p2), (np.degrees(l2) + 540.0) % 360.0 - 180.0


def expected_score(
    lat: ArrayLike,
    lon: ArrayLike,
    dist: NDArray[np.float64],
    leaf_lat: NDArray[np.float64],
    leaf_lon: NDArray[np.float64],
    map_size_km: float = WORLD_MAP_SIZE_KM,
) -> NDArray[np.float64]:
    """Expected GeoGuessr score of guesses (N, K) under leaf distributions ``dist`` (N, L).

    The mass of a leaf is placed at its centre.
    """
    la = np.asarray(lat, dtype=np.float64)
    lo = np.asarray(lon, dtype=np.float64)
    d = haversine_km(la[..., None], lo[..., None], leaf_lat[:, None, :], leaf_lon[:, None, :])
    s: NDArray[np.float64] = (5000.0 * np.exp(-10.0 * d / map_size_km) * dist[:, None, :]).sum(-1)
    return s


def score_optimal(
    probs: ArrayLike,
    cells: CellSet,
    map_size_km: float = WORLD_MAP_SIZE_KM,
    top_leaves: int = SCORE_TOP_LEAVES,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(lat, lon, expected score) per row: the guess maximising the expected score.

    Candidates are the centres of the ``top_leaves`` most probable leaves and the
    great-circle midpoints of every pair of them; the best candidate is then
    refined on rings of shrinking radius (:data:`SCORE_RING_KM`, 8 directions).
    The expected score counts only those top leaves (the rest of the mass is
    far too thin to move the optimum); the web app computes exactly the same.
    """
    leaves, dist = leaf_distribution(probs, cells)
    return score_optimal_leaves(leaves, dist, cells, map_size_km, top_leaves)


def score_optimal_leaves(
    leaves: NDArray[np.int64],
    dist: NDArray[np.float64],
    cells: CellSet,
    map_size_km: float = WORLD_MAP_SIZE_KM,
    top_leaves: int = SCORE_TOP_LEAVES,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """:func:`score_optimal` for a given distribution ``dist`` (N, L) over ``leaves``."""
    m = min(top_leaves, leaves.size)
    top = np.argsort(-dist, axis=1, kind="stable")[:, :m]  # (N, M)
    w = np.take_along_axis(dist, top, axis=1)
    tlat = cells.center_lat[leaves[top]]
    tlon = cells.center_lon[leaves[top]]
    # Midpoints of all pairs: normalised sum of unit vectors (antipodal pairs are skipped).
    i, j = np.triu_indices(m, k=1)
    xyz = to_xyz(tlat, tlon)
    mid = xyz[:, i] + xyz[:, j]
    norm = np.linalg.norm(mid, axis=-1, keepdims=True)
    mlat, mlon = from_xyz(mid / np.maximum(norm, _EPS))
    far = norm[..., 0] < 1e-6
    mlat, mlon = np.where(far, tlat[:, i], mlat), np.where(far, tlon[:, i], mlon)
    clat = np.concatenate([tlat, mlat], axis=1)
    clon = np.concatenate([tlon, mlon], axis=1)
    return _refine(clat, clon, w, tlat, tlon, map_size_km)


def _refine(
    clat: NDArray[np.float64],
    clon: NDArray[np.float64],
    w: NDArray[np.float64],
    tlat: NDArray[np.float64],
    tlon: NDArray[np.float64],
    map_size_km: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Best of candidate guesses (N, K) under masses ``w`` at points (N, M), refined on rings."""
    es = expected_score(clat, clon, w, tlat, tlon, map_size_km)
    best = np.argmax(es, axis=1)
    rows = np.arange(best.size)
    blat, blon, bes = clat[rows, best], clon[rows, best], es[rows, best]
    for km in SCORE_RING_KM:
        moved = [destination(blat, blon, 45.0 * k, km) for k in range(8)]
        rlat = np.stack([blat] + [a for a, _ in moved], axis=1)
        rlon = np.stack([blon] + [b for _, b in moved], axis=1)
        res = expected_score(rlat, rlon, w, tlat, tlon, map_size_km)
        k = np.argmax(res, axis=1)  # index 0 (stay) wins ties
        blat, blon, bes = rlat[rows, k], rlon[rows, k], res[rows, k]
    return blat, blon, bes


def best_constant(
    lat: ArrayLike,
    lon: ArrayLike,
    weights: ArrayLike | None = None,
    map_size_km: float = WORLD_MAP_SIZE_KM,
    max_points: int = 20000,
    candidates: int = 500,
    seed: int = 0,
) -> tuple[float, float]:
    """The one guess with the best mean GeoGuessr score over (weighted) points.

    The baseline every model must beat: answering the same place for every photo. It is
    not the medoid (which minimises the mean distance): the score rewards being close to
    many photos, so it lands in the densest region. Candidates are ``candidates`` of the
    points, scored against up to ``max_points`` of them, then refined on rings.
    """
    la = np.asarray(lat, dtype=np.float64).ravel()
    lo = np.asarray(lon, dtype=np.float64).ravel()
    if la.size == 0:
        raise ValueError("best_constant needs at least one point")
    w = np.ones(la.size) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if w.shape != la.shape or not np.all(w >= 0) or not w.sum() > 0:
        raise ValueError("best_constant needs one non-negative weight per point, not all zero")
    la, lo, w = la[w > 0], lo[w > 0], w[w > 0]
    w = w / w.sum()
    rng = np.random.default_rng(seed)
    if la.size > max_points:  # a weighted sample stands in for all points
        keep = rng.choice(la.size, max_points, p=w)
        la, lo, w = la[keep], lo[keep], np.full(max_points, 1.0 / max_points)
    pick = rng.choice(la.size, min(candidates, la.size), replace=False, p=w)
    blat, blon, _ = _refine(
        la[pick][None], lo[pick][None], w[None], la[None], lo[None], map_size_km
    )
    return float(blat[0]), float(blon[0])


def prior_constant(cells: CellSet) -> tuple[float, float] | None:
    """:func:`best_constant` under the cells' photo prior (None when they carry none)."""
    if cells.prior is None:
        return None
    leaves = np.flatnonzero(cells.is_leaf)
    w = cells.prior[leaves]
    if not w.sum() > 0:
        return None
    return best_constant(cells.center_lat[leaves], cells.center_lon[leaves], w)


def decode_score(
    probs: ArrayLike, cells: CellSet, map_size_km: float = WORLD_MAP_SIZE_KM
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """(cell, lat, lon) of the score-optimal guess; the cell is the finest one holding it."""
    lat, lon, _ = score_optimal(probs, cells, map_size_km)
    return cells.nearest(lat, lon), lat, lon


def cell_confidence(
    leaves: NDArray[np.int64], dist: NDArray[np.float64], cells: CellSet, idx: ArrayLike
) -> NDArray[np.float64]:
    """The confidence shown with a guess: the probability that the photo lies in cell ``idx``.

    The mass of the leaf distribution (``leaves``, ``dist`` from :func:`leaf_distribution`,
    computed once by the caller) inside each row's cell, so a coarse cell gets the mass of
    all its leaves. ``img2loc eval`` checks that it means what it says (reliability
    diagram, expected calibration error).
    """
    i = np.asarray(idx, np.int64).reshape(-1)
    inside = (cells.chain[leaves][None, :, :] == i[:, None, None]).any(axis=2)
    out: NDArray[np.float64] = (dist * inside).sum(axis=1)
    return out


def _at_centre(
    fn: Callable[[ArrayLike, CellSet], NDArray[np.int64]],
) -> Callable[[ArrayLike, CellSet], Decoded]:
    def run(probs: ArrayLike, cells: CellSet) -> Decoded:
        idx = fn(probs, cells)
        return idx, cells.center_lat[idx], cells.center_lon[idx]

    run.__doc__ = fn.__doc__
    return run


#: The rule used when none is named (predict, eval's headline figures, the web app): on the
#: default model's dev split it beats ``hierarchical`` at 200/750/2500 km and in GeoGuessr
#: score (docs/default-model.md); for a confident model the two agree.
DEFAULT_RULE = "score"

#: Decoding rules by name: each maps (probabilities, cells) to (cell index, lat, lon).
DECODERS: dict[str, Callable[[ArrayLike, CellSet], Decoded]] = {
    "seed": _at_centre(decode_seed),
    "hierarchical": _at_centre(decode_hierarchical),
    "score": decode_score,
}


def check_rule(rule: str) -> str:
    """``rule`` if it names a decoding rule, else a ValueError listing the choices."""
    if rule not in DECODERS:
        raise ValueError(f"unknown decoding rule {rule!r}; choose from {sorted(DECODERS)}")
    return rule


def decode(probs: ArrayLike, cells: CellSet, rule: str = DEFAULT_RULE) -> Decoded:
    """(cell index, lat, lon) per row with the named rule.

    ``seed`` and ``hierarchical`` guess the chosen cell's centre; ``score`` guesses
    the score-optimal point, and its cell is the finest cell holding that point.
    """
    return DECODERS[check_rule(rule)](probs, cells)
