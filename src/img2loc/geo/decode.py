"""Turn per-cell probabilities into a location.

Rules (by name in :data:`DECODERS`):

* ``seed``: threshold 0.5; among predicted cells pick the one with the most
  predicted ancestors, ties to the coarser cell (the original project's rule);
  if nothing passes the threshold, the most probable cell.
* ``hierarchical``: score each leaf by the product of its own and its
  ancestors' probabilities and pick the best.

:func:`leaf_distribution` gives the normalised distribution over leaves for
heatmaps and expected-score guesses.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from img2loc.geo.cells import CellSet

_EPS = 1e-12


def _probs(probs: ArrayLike, cells: CellSet) -> NDArray[np.float64]:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 1:
        p = p[None]
    if p.ndim != 2 or p.shape[1] != len(cells):
        raise ValueError(f"expected probabilities of shape (N, {len(cells)}), got {p.shape}")
    return p


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
    """Leaf index per row maximising the product of probabilities along its chain."""
    p = _probs(probs, cells)
    leaves, s = _leaf_log_scores(p, cells)
    out: NDArray[np.int64] = leaves[np.argmax(s, axis=1)].astype(np.int64)
    return out


def leaf_distribution(
    probs: ArrayLike, cells: CellSet
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """(leaf indices, (N, n_leaves) distribution summing to 1 per row) from chain products."""
    p = _probs(probs, cells)
    leaves, s = _leaf_log_scores(p, cells)
    s = s - s.max(axis=1, keepdims=True)
    w = np.exp(s)
    return leaves, w / w.sum(axis=1, keepdims=True)


DECODERS = {"seed": decode_seed, "hierarchical": decode_hierarchical}


def decode(
    probs: ArrayLike, cells: CellSet, method: str = "hierarchical"
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """(cell index, lat, lon) per row with the named rule; the location is the cell's centre."""
    try:
        fn = DECODERS[method]
    except KeyError:
        raise ValueError(
            f"unknown decoding rule {method!r}; choose from {sorted(DECODERS)}"
        ) from None
    idx = fn(probs, cells)
    return idx, cells.center_lat[idx], cells.center_lon[idx]
