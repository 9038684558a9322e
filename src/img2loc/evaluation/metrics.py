"""Evaluation figures on top of :mod:`img2loc.geo.distance` (pure numpy, no model).

* :func:`summarize`: the standard figures plus a bootstrap interval of the mean
  GeoGuessr score.
* :func:`f1_from_counts` / :func:`multilabel_counts`: micro-averaged multi-label F1
  at a threshold, over all cells (parents included).
* :func:`aggregate_views`: one probability vector per place from several views
  (mean of probabilities, or mean of log-probabilities = normalised product;
  see :mod:`img2loc.geo.views`).
* Baseline helpers: :func:`nearest_rows`
  (nearest neighbour in embedding space); error analysis: :func:`confused_pairs`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from img2loc.geo.distance import geoguessr_score, metrics_from_distances

# View aggregation lives in geo/ (inference uses it too); re-exported for evaluation.
from img2loc.geo.views import AGGREGATES as AGGREGATES
from img2loc.geo.views import view_values as view_values
from img2loc.geo.views import views_to_probs as views_to_probs


def bootstrap_ci(
    x: ArrayLike, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``x`` (NaNs for empty input)."""
    v = np.asarray(x, dtype=np.float64).ravel()
    if v.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    # Resample in chunks: n_boot x n indices at once would not fit for large sets.
    chunk = max(1, min(n_boot, 4_000_000 // v.size))
    for a in range(0, n_boot, chunk):
        b = min(n_boot, a + chunk)
        means[a:b] = v[rng.integers(0, v.size, size=(b - a, v.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def paired_bootstrap(
    diff: ArrayLike,
    clusters: ArrayLike | None = None,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean of per-photo differences ``diff`` with a percentile bootstrap interval.

    ``clusters`` (one label per photo, e.g. its place) resamples whole clusters: the views
    of one place are not independent evidence, so the interval resamples places.
    """
    d = np.asarray(diff, np.float64).ravel()
    c = np.arange(d.size) if clusters is None else np.asarray(clusters).ravel()
    ok = np.isfinite(d)
    d, c = d[ok], c[ok]
    if d.size == 0:
        return {"n": 0, "units": 0, "mean": float("nan"), "ci": [float("nan"), float("nan")]}
    _, inv = np.unique(c, return_inverse=True)
    sums = np.bincount(inv, weights=d)
    counts = np.bincount(inv).astype(np.float64)
    rng = np.random.default_rng(seed)
    k = sums.size
    means = np.empty(n_boot)
    chunk = max(1, min(n_boot, 4_000_000 // k))
    for a in range(0, n_boot, chunk):
        b = min(n_boot, a + chunk)
        pick = rng.integers(0, k, size=(b - a, k))
        means[a:b] = sums[pick].sum(axis=1) / counts[pick].sum(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return {
        "n": int(d.size),
        "units": int(k),
        "mean": float(d.mean()),
        "ci": [float(lo), float(hi)],
    }


def summarize(d_km: ArrayLike, seed: int = 0) -> dict[str, Any]:
    """:func:`metrics_from_distances` plus ``geoguessr_ci95`` (95% bootstrap interval)."""
    d = np.asarray(d_km, dtype=np.float64).ravel()
    m = metrics_from_distances(d)
    m["geoguessr_ci95"] = list(bootstrap_ci(geoguessr_score(d), seed=seed))
    return m


def multilabel_counts(
    probs: ArrayLike, targets: ArrayLike, threshold: float = 0.5
) -> NDArray[np.int64]:
    """(true positives, false positives, false negatives) summed over rows and cells."""
    p = np.asarray(probs) >= threshold
    y = np.asarray(targets) > 0
    return np.array([(p & y).sum(), (p & ~y).sum(), (~p & y).sum()], dtype=np.int64)


def f1_from_counts(counts: ArrayLike) -> float:
    """Micro F1 from (tp, fp, fn); NaN when there is nothing to score."""
    tp, fp, fn = (int(c) for c in np.asarray(counts).ravel()[:3])
    denom = 2 * tp + fp + fn
    return 2 * tp / denom if denom else float("nan")


def segment_sums(
    values: NDArray[np.float64], codes: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]]:
    """(code, summed rows, row count) per run of equal consecutive ``codes``."""
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    counts = np.diff(np.r_[starts, codes.size])
    return codes[starts], np.add.reduceat(values, starts, axis=0), counts


def aggregate_views(
    probs: ArrayLike, groups: ArrayLike, how: str = "mean"
) -> tuple[NDArray[Any], NDArray[np.float64]]:
    """(group names, (n_groups, C) aggregated probabilities) for views in any order."""
    uniq, codes = np.unique(np.asarray(groups), return_inverse=True)
    order = np.argsort(codes, kind="stable")
    vals = view_values(np.asarray(probs)[order], how)
    _, sums, counts = segment_sums(vals, codes[order].astype(np.int64))
    return uniq, views_to_probs(sums, counts, how)


def normalize_rows(x: ArrayLike) -> NDArray[np.float32]:
    """Rows scaled to unit length (cosine similarity becomes a dot product)."""
    a = np.asarray(x, np.float32)
    n = np.linalg.norm(a, axis=1, keepdims=True)
    out: NDArray[np.float32] = a / np.maximum(n, 1e-12)
    return out


def nearest_rows(queries: ArrayLike, unit_index: ArrayLike) -> NDArray[np.int64]:
    """Row of ``unit_index`` (rows of length 1, see :func:`normalize_rows`) most
    cosine-similar to each query row."""
    sims = normalize_rows(queries) @ np.asarray(unit_index, np.float32).T
    out: NDArray[np.int64] = np.argmax(sims, axis=1).astype(np.int64)
    return out


def confused_pairs(
    true_idx: ArrayLike, pred_idx: ArrayLike, top: int = 10
) -> list[tuple[int, int, int, int]]:
    """Most frequent (true, predicted, count, true total) with true != predicted, commonest first.

    Ties go to the smaller indices, so the list is deterministic.
    """
    t = np.asarray(true_idx, np.int64).ravel()
    p = np.asarray(pred_idx, np.int64).ravel()
    ok = (t >= 0) & (p >= 0)
    t, p = t[ok], p[ok]
    totals = dict(zip(*np.unique(t, return_counts=True), strict=True))
    wrong = t != p
    if not wrong.any():
        return []
    pairs, counts = np.unique(np.c_[t[wrong], p[wrong]], axis=0, return_counts=True)
    order = np.lexsort((pairs[:, 1], pairs[:, 0], -counts))[:top]
    return [
        (int(pairs[i, 0]), int(pairs[i, 1]), int(counts[i]), int(totals[pairs[i, 0]]))
        for i in order
    ]


def breakdown(d_km: ArrayLike, labels: ArrayLike, seed: int = 0) -> dict[str, dict[str, Any]]:
    """:func:`summarize` per label value, most photos first (then by name)."""
    d = np.asarray(d_km, np.float64).ravel()
    lab = np.asarray(labels).astype(str).ravel()
    names, counts = np.unique(lab, return_counts=True)
    order = sorted(range(names.size), key=lambda i: (-counts[i], names[i]))
    return {str(names[i]): summarize(d[lab == names[i]], seed) for i in order}


def reliability(confidence: ArrayLike, correct: ArrayLike, n_bins: int = 10) -> dict[str, Any]:
    """Whether a confidence means what it says: reliability bins and the calibration error.

    ``confidence`` is the probability shown with each guess (that the photo lies in the
    named cell) and ``correct`` whether it did. Returns ``ece`` (expected calibration
    error: the photo-weighted mean gap between confidence and frequency over
    ``n_bins`` equal-width bins, in percentage points), ``mean_confidence`` and
    ``accuracy`` (%), and per bin ``lo``, ``hi``, ``n``, ``confidence``, ``accuracy``.
    """
    c = np.asarray(confidence, np.float64).ravel()
    y = np.asarray(correct, bool).ravel()
    keep = np.isfinite(c)
    c, y = c[keep], y[keep]
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, c, side="right") - 1, 0, n_bins - 1)
    bins, gap = [], 0.0
    for b in range(n_bins):
        m = which == b
        n = int(m.sum())
        conf = float(c[m].mean()) if n else None
        acc = float(y[m].mean()) if n else None
        if n:
            gap += n * abs(acc - conf)  # type: ignore[operator]
        bins.append(
            {
                "lo": float(edges[b]),
                "hi": float(edges[b + 1]),
                "n": n,
                "confidence": None if conf is None else 100 * conf,
                "accuracy": None if acc is None else 100 * acc,
            }
        )
    n_all = int(c.size)
    return {
        "n": n_all,
        "ece": 100 * gap / n_all if n_all else None,
        "mean_confidence": 100 * float(c.mean()) if n_all else None,
        "accuracy": 100 * float(y.mean()) if n_all else None,
        "bins": bins,
    }
