"""Great-circle distance, GeoGuessr score and the standard geolocation metrics."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: IUGG mean Earth radius (km).
EARTH_RADIUS_KM = 6371.0088
#: Accuracy thresholds used throughout the field (street, city, region, country, continent).
THRESHOLDS_KM: tuple[float, ...] = (1.0, 25.0, 200.0, 750.0, 2500.0)
#: Largest distance of GeoGuessr's world map; the score's 1492.7 km constant is a tenth of it.
WORLD_MAP_SIZE_KM = 14927.0


def haversine_km(
    lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike
) -> NDArray[np.float64]:
    """Great-circle distance in km on the mean-radius sphere (broadcasts, float64)."""
    p1 = np.radians(np.asarray(lat1, dtype=np.float64))
    p2 = np.radians(np.asarray(lat2, dtype=np.float64))
    dphi = p2 - p1
    dlmb = np.radians(np.asarray(lon2, dtype=np.float64) - np.asarray(lon1, dtype=np.float64))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    # Rounding can push `a` a hair past 1 at antipodes; arcsin would give NaN.
    d: NDArray[np.float64] = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return d


def to_xyz(lat: ArrayLike, lon: ArrayLike) -> NDArray[np.float64]:
    """Unit vectors (..., 3) of coordinates in degrees."""
    la = np.radians(np.asarray(lat, dtype=np.float64))
    lo = np.radians(np.asarray(lon, dtype=np.float64))
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def from_xyz(v: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(lat, lon) in degrees of vectors (..., 3); they need not be unit length."""
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    return np.degrees(np.arctan2(z, np.hypot(x, y))), np.degrees(np.arctan2(y, x))


def geoguessr_score(d_km: ArrayLike, map_size_km: float = WORLD_MAP_SIZE_KM) -> NDArray[np.float64]:
    """GeoGuessr's points for a guess ``d_km`` away: ``5000 * exp(-10 d / D)``.

    ``D`` is the map's largest distance; the world map (default) gives
    ``5000 * exp(-d / 1492.7)``.
    """
    if not map_size_km > 0:
        raise ValueError(f"map_size_km must be positive, got {map_size_km}")
    d = np.asarray(d_km, dtype=np.float64)
    s: NDArray[np.float64] = 5000.0 * np.exp(-10.0 * d / map_size_km)
    return s


def threshold_key(t: float) -> str:
    """Report key of a threshold: 1.0 -> "1", 0.5 -> "0.5"."""
    return f"{t:g}"


def geo_metrics(
    pred_lat: ArrayLike,
    pred_lon: ArrayLike,
    true_lat: ArrayLike,
    true_lon: ArrayLike,
    thresholds_km: tuple[float, ...] = THRESHOLDS_KM,
    map_size_km: float = WORLD_MAP_SIZE_KM,
) -> dict[str, Any]:
    """The standard figures for a set of guesses, used by training, evaluation and the CLI.

    Returns ``acc_km`` (threshold key -> percentage within that distance),
    ``median_km``, ``mean_km``, ``geoguessr_mean`` and ``n``.
    """
    d = haversine_km(pred_lat, pred_lon, true_lat, true_lon).ravel()
    return metrics_from_distances(d, thresholds_km, map_size_km)


def metrics_from_distances(
    d_km: ArrayLike,
    thresholds_km: tuple[float, ...] = THRESHOLDS_KM,
    map_size_km: float = WORLD_MAP_SIZE_KM,
) -> dict[str, Any]:
    """:func:`geo_metrics` for precomputed distances."""
    d = np.asarray(d_km, dtype=np.float64).ravel()
    n = int(d.size)
    if n == 0:
        nan = float("nan")
        return {
            "acc_km": {threshold_key(t): nan for t in thresholds_km},
            "median_km": nan,
            "mean_km": nan,
            "geoguessr_mean": nan,
            "n": 0,
        }
    return {
        "acc_km": {threshold_key(t): float(100.0 * np.mean(d <= t)) for t in thresholds_km},
        "median_km": float(np.median(d)),
        "mean_km": float(np.mean(d)),
        "geoguessr_mean": float(np.mean(geoguessr_score(d, map_size_km))),
        "n": n,
    }
