"""GeoLocator: a timm backbone and a head with one logit per cell of a CellSet."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch
from torch import nn

from img2loc.geo.cells import CellSet
from img2loc.inference.preprocess import PreprocessConfig
from img2loc.models.backbone import DEFAULT_BACKBONE, create_backbone

HEADS = ("linear", "mlp", "hierarchical")


class GeoLocator(nn.Module):
    """Photo -> per-cell logits.

    ``forward_features`` gives pooled backbone embeddings and ``forward_head`` the
    logits, so embeddings and head swaps need no surgery. Heads: ``linear``
    (dropout + linear), ``mlp`` (a hidden layer), ``hierarchical`` (a cell's logit
    adds its ancestors' logits, so a child starts from its parent's evidence).
    """

    ancestors: torch.Tensor

    def __init__(
        self,
        cells: CellSet,
        backbone: str = DEFAULT_BACKBONE,
        pretrained: bool = True,
        head: str = "linear",
        dropout: float = 0.2,
        hidden_dim: int = 1024,
        weights: str | None = None,
    ) -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        self.backbone, self.preprocess = create_backbone(backbone, pretrained, weights)
        self.backbone_name = backbone
        self.num_features = int(cast(Any, self.backbone).num_features)
        self.num_cells = len(cells)
        self.head_type = head
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if head == "mlp":
            layers += [nn.Linear(self.num_features, hidden_dim), nn.GELU(), nn.Dropout(dropout)]
            layers.append(nn.Linear(hidden_dim, self.num_cells))
        else:
            layers.append(nn.Linear(self.num_features, self.num_cells))
        self.head = nn.Sequential(*layers)
        # ancestors[i, j] = 1 when j is i or an ancestor of i (used by the hierarchical head).
        anc = np.zeros((self.num_cells, self.num_cells), np.float32)
        rows = np.repeat(np.arange(self.num_cells), cells.chain.shape[1])
        cols = cells.chain.ravel()
        ok = cols >= 0
        anc[rows[ok], cols[ok]] = 1.0
        self.register_buffer("ancestors", torch.from_numpy(anc), persistent=False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, num_features) pooled embeddings."""
        out: torch.Tensor = self.backbone(x)
        return out

    def forward_head(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, num_features) -> (B, num_cells) logits."""
        logits: torch.Tensor = self.head(feats)
        if self.head_type == "hierarchical":
            logits = logits @ self.ancestors.T
        return logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def config(self) -> dict[str, Any]:
        """What it takes to rebuild this model (stored in checkpoints)."""
        return {
            "backbone": self.backbone_name,
            "head": self.head_type,
            "num_cells": self.num_cells,
            "num_features": self.num_features,
            "preprocess": self.preprocess.to_dict(),
        }

    def set_preprocess(self, cfg: PreprocessConfig) -> None:
        self.preprocess = cfg
