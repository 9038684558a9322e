"""Vectorised S2 cell ids (numpy uint64) plus per-cell geometry from s2sphere.

s2sphere computes one cell id per Python call (~30 us); labelling a million
photos that way takes half a minute. The leaf-id computation below is the same
algorithm (face projection, quadratic ST transform, Hilbert-curve lookup) done
on whole arrays, and is tested bit for bit against s2sphere.
"""

from __future__ import annotations

import numpy as np
import s2sphere
from numpy.typing import ArrayLike, NDArray
from s2sphere import sphere as _s2

MAX_LEVEL = 30
_POS_BITS = 2 * MAX_LEVEL + 1
_LOOKUP_BITS = 4
_LOOKUP_POS = np.asarray(_s2.LOOKUP_POS, dtype=np.uint64)
_SWAP_INVERT = np.uint64(_s2.SWAP_MASK | _s2.INVERT_MASK)
_U64 = NDArray[np.uint64]


def _face_uv(
    lat: NDArray[np.float64], lon: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    phi, lmb = np.radians(lat), np.radians(lon)
    cphi = np.cos(phi)
    xyz = np.stack([cphi * np.cos(lmb), cphi * np.sin(lmb), np.sin(phi)])
    axis = np.argmax(np.abs(xyz), axis=0)
    comp = np.take_along_axis(xyz, axis[None], axis=0)[0]
    face = (axis + np.where(comp < 0, 3, 0)).astype(np.int64)
    x, y, z = xyz
    # S2's per-face (u, v) projections, faces 0..5.
    u_num = np.choose(face, [y, -x, -x, z, z, -y])
    v_num = np.choose(face, [z, z, -y, y, -x, -x])
    den = np.choose(face, [x, y, z, x, y, z])
    return face, u_num / den, v_num / den


def _uv_to_ij(u: NDArray[np.float64]) -> _U64:
    a = 0.5 * np.sqrt(1 + 3 * np.abs(u))
    s = np.where(u >= 0, a, 1 - a)
    ij = np.floor(s * (1 << MAX_LEVEL))
    out: _U64 = np.clip(ij, 0, (1 << MAX_LEVEL) - 1).astype(np.uint64)
    return out


def leaf_ids(lat: ArrayLike, lon: ArrayLike) -> _U64:
    """Leaf (level-30) S2 cell ids of coordinates in degrees, as uint64."""
    la = np.atleast_1d(np.asarray(lat, dtype=np.float64)).ravel()
    lo = np.atleast_1d(np.asarray(lon, dtype=np.float64)).ravel()
    face, u, v = _face_uv(la, lo)
    i, j = _uv_to_ij(u), _uv_to_ij(v)
    f = face.astype(np.uint64)
    n = f << np.uint64(_POS_BITS - 1)
    bits = f & np.uint64(_s2.SWAP_MASK)
    mask = np.uint64((1 << _LOOKUP_BITS) - 1)
    for k in range(7, -1, -1):
        shift = np.uint64(k * _LOOKUP_BITS)
        bits = bits + (((i >> shift) & mask) << np.uint64(_LOOKUP_BITS + 2))
        bits = bits + (((j >> shift) & mask) << np.uint64(2))
        bits = _LOOKUP_POS[bits.astype(np.intp)]
        n |= (bits >> np.uint64(2)) << np.uint64(k * 2 * _LOOKUP_BITS)
        bits &= _SWAP_INVERT
    out: _U64 = n * np.uint64(2) + np.uint64(1)
    return out


def lsb_for_level(level: int) -> np.uint64:
    """Lowest set bit of every cell id at ``level``."""
    return np.uint64(1) << np.uint64(2 * (MAX_LEVEL - level))


def parent_ids(ids: ArrayLike, level: int) -> _U64:
    """Ancestors at ``level`` of cell ids (which must be at ``level`` or finer)."""
    lsb = lsb_for_level(level)
    a = np.asarray(ids, dtype=np.uint64)
    out: _U64 = (a & ~(lsb - np.uint64(1))) | lsb
    return out


def id_level(ids: ArrayLike) -> NDArray[np.int64]:
    """Level of each cell id."""
    a = np.atleast_1d(np.asarray(ids, dtype=np.uint64))
    lsb = a & (~a + np.uint64(1))
    # log2 of a power of two via float64 is exact for 2**0..2**60.
    return (MAX_LEVEL - np.log2(lsb.astype(np.float64)).astype(np.int64) // 2).astype(np.int64)


def id_to_token(cell_id: int) -> str:
    """S2 token: hex id without trailing zeros ("X" for 0)."""
    if cell_id == 0:
        return "X"
    return f"{int(cell_id):016x}".rstrip("0")


def token_to_id(token: str) -> int:
    """Inverse of :func:`id_to_token`; raises ValueError on a malformed token."""
    t = token.strip().lower()
    if t == "x":
        return 0
    if not 0 < len(t) <= 16 or any(c not in "0123456789abcdef" for c in t):
        raise ValueError(f"not an S2 token: {token!r}")
    return int(t.ljust(16, "0"), 16)


def cell_center(cell_id: int) -> tuple[float, float]:
    """Centre (lat, lon) of a cell in degrees."""
    ll = s2sphere.LatLng.from_point(s2sphere.Cell(s2sphere.CellId(int(cell_id))).get_center())
    return float(ll.lat().degrees), float(ll.lng().degrees)


def cell_polygon(cell_id: int, segments_per_edge: int = 1) -> list[tuple[float, float]]:
    """Boundary (lat, lon) of a cell, counter-clockwise, edges split into geodesic segments.

    Large cells have curved edges on a lat/lon map; ``segments_per_edge`` > 1
    interpolates along each great-circle edge so drawings follow them.
    """
    cell = s2sphere.Cell(s2sphere.CellId(int(cell_id)))
    verts = [np.array([p[0], p[1], p[2]]) for p in (cell.get_vertex(k) for k in range(4))]
    out: list[tuple[float, float]] = []
    for k in range(4):
        a, b = verts[k], verts[(k + 1) % 4]
        for s in range(segments_per_edge):
            t = s / segments_per_edge
            p = (1 - t) * a + t * b
            p = p / np.linalg.norm(p)
            out.append(
                (
                    float(np.degrees(np.arcsin(np.clip(p[2], -1, 1)))),
                    float(np.degrees(np.arctan2(p[1], p[0]))),
                )
            )
    return out
