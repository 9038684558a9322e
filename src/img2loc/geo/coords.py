"""Validation and normalisation of latitude/longitude arrays."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from img2loc.errors import Img2locError


class CoordinateError(Img2locError, ValueError):
    """A coordinate is missing, not finite or out of range; the message names the rows."""


def _describe(
    bad: NDArray[np.intp],
    rows: Sequence[object] | None,
    lat: NDArray[np.float64],
    lon: NDArray[np.float64],
) -> str:
    shown = []
    for i in bad[:5]:
        name = rows[int(i)] if rows is not None else int(i)
        shown.append(f"row {name!r} (lat={float(lat[i])!r}, lon={float(lon[i])!r})")
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    return "; ".join(shown) + more


def validate_coords(
    lat: ArrayLike,
    lon: ArrayLike,
    rows: Sequence[object] | None = None,
    *,
    wrap_lon: bool = False,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Check coordinates and return them as float64 with longitude in [-180, 180).

    Latitude must lie in [-90, 90]; longitude in [-180, 180] (180 becomes -180).
    With ``wrap_lon`` any finite longitude is wrapped instead (for data in [0, 360)).
    NaN/inf or out-of-range values raise :class:`CoordinateError` naming the
    offending rows (``rows`` gives their names, e.g. file names; default: index).
    """
    la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    if la.shape != lo.shape:
        raise CoordinateError(f"latitude and longitude differ in shape: {la.shape} vs {lo.shape}")
    if rows is not None and len(rows) != la.size:
        raise CoordinateError(f"{len(rows)} row names for {la.size} coordinates")
    la, lo = la.ravel(), lo.ravel()

    bad = np.flatnonzero(~(np.isfinite(la) & np.isfinite(lo)))
    if bad.size:
        raise CoordinateError(
            f"{bad.size} coordinate(s) are missing or not finite: {_describe(bad, rows, la, lo)}. "
            "Fix or drop these rows."
        )
    bad = np.flatnonzero(np.abs(la) > 90.0)
    if bad.size:
        raise CoordinateError(
            f"{bad.size} latitude(s) outside [-90, 90]: {_describe(bad, rows, la, lo)}. "
            "Are latitude and longitude swapped?"
        )
    if not wrap_lon:
        bad = np.flatnonzero(np.abs(lo) > 180.0)
        if bad.size:
            raise CoordinateError(
                f"{bad.size} longitude(s) outside [-180, 180]: {_describe(bad, rows, la, lo)}. "
                "If your data uses [0, 360), pass wrap_lon=True (CLI: --wrap-lon)."
            )
    return la, normalize_lon(lo)


def normalize_lon(lon: ArrayLike) -> NDArray[np.float64]:
    """Wrap longitudes to [-180, 180)."""
    lo = np.asarray(lon, dtype=np.float64)
    out: NDArray[np.float64] = np.mod(lo + 180.0, 360.0) - 180.0
    return out
