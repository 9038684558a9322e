"""One probability vector per place from several views of it (pure numpy).

A place seen from several headings (Street View views, the rendered views of a
360° panorama, photos a user took around one spot) carries more evidence than
one view. Per-cell sigmoid probabilities of the views are combined before
decoding:

* ``mean``: the average probability (robust: one misleading view cannot veto a cell);
* ``product``: the product of the views' probabilities, i.e. the sum of their logs,
  normalised by the number of views (the geometric mean), so values stay in [0, 1]
  and places with different numbers of views stay comparable.

Used by `img2loc predict --views`, panoramas, `img2loc eval --group-by` and
`img2loc geoguessr`.

Rows of a model with an in-domain score carry its weight after the ``n_cells``
probabilities (:mod:`img2loc.geo.decode`); a place keeps the *largest* weight of its
views: one view that looks like the training photos (a street, not the hedge another
view faces) makes the place one the model knows.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

AGGREGATES = ("mean", "product")
_EPS = 1e-12


def check_aggregate(how: str) -> str:
    """``how`` if it names an aggregation, else a ValueError listing the choices."""
    if how not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {AGGREGATES}, got {how!r}")
    return how


def view_values(probs: ArrayLike, how: str) -> NDArray[np.float64]:
    """What gets averaged over views: probabilities (mean) or log-probabilities (product)."""
    check_aggregate(how)
    p = np.asarray(probs, dtype=np.float64)
    return np.log(np.clip(p, _EPS, 1.0)) if how == "product" else p


def views_to_probs(sums: ArrayLike, counts: ArrayLike, how: str) -> NDArray[np.float64]:
    """Per-place probabilities from summed :func:`view_values` and view counts."""
    mean = np.asarray(sums, np.float64) / np.asarray(counts, np.float64).reshape(-1, 1)
    # exp(mean log p) is the geometric mean: the product of the views' probabilities,
    # normalised by the number of views so places with more views stay comparable.
    return np.exp(mean) if how == "product" else mean


def combine_views(
    probs: ArrayLike, how: str = "mean", n_cells: int | None = None
) -> NDArray[np.float64]:
    """(C,) probabilities of one place from its views' (V, C) probabilities.

    With ``n_cells`` and rows of ``n_cells + 1`` values, the last (the in-domain weight)
    is the views' largest.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"expected (views, cells) probabilities with views >= 1, got {p.shape}")
    weighted = n_cells is not None and p.shape[1] == n_cells + 1
    cells = p[:, :n_cells] if weighted else p
    out: NDArray[np.float64] = views_to_probs(
        view_values(cells, how).sum(axis=0, keepdims=True), [p.shape[0]], how
    )[0]
    return np.r_[out, p[:, -1].max()] if weighted else out
