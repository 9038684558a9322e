"""The loss's targets for a batch's coordinates, built by the data loader (in its worker
processes), not inside each training step."""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray

from img2loc.geo.cells import CellSet
from img2loc.geo.distance import haversine_km


class CellTargets:
    """Coordinates -> targets: multi-hot over every cell holding the photo (parents
    included), optionally smoothed by distance, for ``bce``; the nearest finest cell's
    index for ``ce``."""

    def __init__(self, cells: CellSet, loss: str = "bce", label_smoothing_km: float = 0.0) -> None:
        self.cells, self.loss, self.label_smoothing_km = cells, loss, label_smoothing_km

    def __call__(self, lat: NDArray[np.float64], lon: NDArray[np.float64]) -> torch.Tensor:
        if self.loss == "ce":
            return torch.from_numpy(self.cells.nearest(lat, lon))
        y = self.cells.multi_hot(lat, lon)
        km = self.label_smoothing_km
        if km > 0:
            c = self.cells
            d = haversine_km(lat[:, None], lon[:, None], c.center_lat[None], c.center_lon[None])
            y = np.maximum(y, np.exp(-d / km).astype(np.float32))
        return torch.from_numpy(y)
