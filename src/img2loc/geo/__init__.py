"""Pure numpy + S2 geography: coordinates, distances, scores, cell sets, decoding.

Nothing in this package imports torch, so every layer above (inference included)
can use it.
"""

from img2loc.geo.cells import CellSet, oracle_metrics
from img2loc.geo.coords import CoordinateError, validate_coords
from img2loc.geo.decode import DECODERS, decode, leaf_distribution
from img2loc.geo.distance import (
    EARTH_RADIUS_KM,
    THRESHOLDS_KM,
    WORLD_MAP_SIZE_KM,
    geo_metrics,
    geoguessr_score,
    haversine_km,
)

__all__ = [
    "DECODERS",
    "EARTH_RADIUS_KM",
    "THRESHOLDS_KM",
    "WORLD_MAP_SIZE_KM",
    "CellSet",
    "CoordinateError",
    "decode",
    "geo_metrics",
    "geoguessr_score",
    "haversine_km",
    "leaf_distribution",
    "oracle_metrics",
    "validate_coords",
]
