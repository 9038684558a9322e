"""Validation figures as a torchmetrics ``Metric``: states summed or concatenated per
batch, gathered across ranks by torchmetrics (ranks may hold different numbers of
photos, some none), and turned into the standard figures once per epoch."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from img2loc.geo.cells import CellSet
from img2loc.geo.decode import decode
from img2loc.geo.distance import haversine_km, metrics_from_distances


class GeoMetrics(Metric):
    """Distance figures of the decoded guesses, cell F1 at 0.5 and the mean loss."""

    full_state_update = False
    dist: list[torch.Tensor]
    counts: torch.Tensor  # true positives, false positives, false negatives, loss sum

    def __init__(self, cells: CellSet, decode_rule: str) -> None:
        super().__init__()
        self.cells, self.decode_rule = cells, decode_rule
        self.add_state("dist", default=[], dist_reduce_fx="cat")
        self.add_state("counts", default=torch.zeros(4, dtype=torch.float64), dist_reduce_fx="sum")

    def update(
        self,
        probs: NDArray[np.float32],
        lat: NDArray[np.float64],
        lon: NDArray[np.float64],
        loss: float,
    ) -> None:
        """One batch: per-cell probabilities, true coordinates and the batch's mean loss."""
        n = len(lat)
        if n:
            _, plat, plon = decode(probs, self.cells, self.decode_rule)
            d = haversine_km(plat, plon, lat, lon)
        else:
            d = np.zeros(0)
        self.dist.append(torch.as_tensor(np.asarray(d, np.float64), device=self.device))
        y = self.cells.multi_hot(lat, lon) > 0 if n else np.zeros((0, len(self.cells)), bool)
        p = probs >= 0.5
        add = [(p & y).sum(), (p & ~y).sum(), (~p & y).sum(), loss * n]
        self.counts += torch.tensor(
            [float(x) for x in add], dtype=torch.float64, device=self.device
        )

    def compute(self) -> dict[str, Any]:
        """The standard figures (:func:`metrics_from_distances`) plus ``f1`` and ``loss``."""
        # A list of batches on one process, one tensor once gathered across ranks.
        synced = isinstance(self.dist, torch.Tensor)
        d = dim_zero_cat(self.dist).cpu().numpy() if synced or self.dist else np.zeros(0)
        m = metrics_from_distances(d)
        tp, fp, fn, loss_sum = (float(x) for x in self.counts.cpu())
        m["loss"] = loss_sum / m["n"] if m["n"] else float("nan")
        m["f1"] = 2 * tp / max(2 * tp + fp + fn, 1)
        return m
