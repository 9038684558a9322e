"""The in-domain score: how much like the training photos a photo is (torch).

A model trained on street views answers a photo of a dinner plate as confidently as a
street: its own confidence does not tell (ROC AUC 0.40 between Street View dev and
Im2GPS3k photos, docs/default-model.md), distances in its feature space do (0.948). So
an exported model carries ``K`` prototypes of its training photos' features (spherical
k-means) and gives, per photo, the weight its answer keeps::

    w = sigmoid((max cosine similarity to a prototype - centre) / width)

``centre`` and ``width`` are calibration numbers fitted on dev photos (in-domain ones
only): ``centre`` is the score that ``quantile`` of them fall below, ``width`` a fraction
of their spread. Decoding then blends the answer with the photo prior by ``w``
(:mod:`img2loc.geo.decode`). Defaults measured on the default model's dev sets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: Prototypes of the training features (256: AUC 0.948; the browser model grows 0.33 MB).
DEFAULT_PROTOTYPES = 256
#: Share of in-domain dev photos whose answer falls back (centre of the weight).
DEFAULT_QUANTILE = 0.03
#: Width of the weight's sigmoid, in standard deviations of the dev photos' scores.
DEFAULT_WIDTH = 0.25
#: Narrowest sigmoid (cosine units): a steeper one turns float noise between runtimes
#: into visible jumps of the weight (the default model's width is 0.021).
MIN_WIDTH = 0.01
#: Spherical k-means iterations (the assignment is stable well before).
KMEANS_ITERS = 20


@dataclass(frozen=True)
class DomainFit:
    """What a fit measured (recorded in export.json and the model card)."""

    prototypes: int
    train_photos: int
    dev_photos: int
    quantile: float
    centre: float
    width: float
    fallback_share_dev: float


def spherical_kmeans(
    feats: torch.Tensor, k: int, iters: int = KMEANS_ITERS, seed: int = 0
) -> torch.Tensor:
    """(k, D) unit-norm centroids of unit-normalised ``feats`` (N, D) (cosine k-means).

    Seeded (the same features give the same prototypes): centroids start at ``k`` distinct
    photos; an empty cluster keeps its centroid.
    """
    x = F.normalize(feats.double(), dim=1)
    if x.shape[0] == 0:
        raise ValueError("spherical_kmeans needs at least one feature vector")
    k = min(k, x.shape[0])
    g = torch.Generator().manual_seed(seed)
    cent = x[torch.randperm(x.shape[0], generator=g)[:k]].clone()
    for _ in range(iters):
        lab = (x @ cent.T).argmax(dim=1)
        sums = torch.zeros_like(cent).index_add_(0, lab, x)
        filled = sums.norm(dim=1) > 0
        cent[filled] = F.normalize(sums[filled], dim=1)
    return cent.float()


class DomainScore(nn.Module):
    """Pooled features (N, D) -> the weight (N, 1) the model's answer keeps, in [0, 1]."""

    prototypes: torch.Tensor
    centre: torch.Tensor
    width: torch.Tensor

    def __init__(self, prototypes: torch.Tensor, centre: float, width: float) -> None:
        super().__init__()
        if not width > 0:
            raise ValueError(f"width must be > 0, got {width}")
        self.register_buffer("prototypes", F.normalize(prototypes.float(), dim=1))
        self.register_buffer("centre", torch.tensor(float(centre)))
        self.register_buffer("width", torch.tensor(float(width)))

    def similarity(self, feats: torch.Tensor) -> torch.Tensor:
        """(N,) cosine similarity of each photo to its nearest prototype."""
        f = F.normalize(feats.float(), dim=1)
        return (f @ self.prototypes.T).amax(dim=1)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        s = self.similarity(feats)
        return torch.sigmoid((s - self.centre) / self.width)[:, None]


def fit_domain(
    train_feats: torch.Tensor,
    dev_feats: torch.Tensor,
    k: int = DEFAULT_PROTOTYPES,
    quantile: float = DEFAULT_QUANTILE,
    width: float = DEFAULT_WIDTH,
    seed: int = 0,
) -> tuple[DomainScore, DomainFit]:
    """Prototypes from training features, centre and width from in-domain dev features."""
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    if dev_feats.shape[0] < 2:
        raise ValueError("fitting the in-domain score needs at least 2 dev photos")
    protos = spherical_kmeans(train_feats, k, seed=seed)
    probe = DomainScore(protos, 0.0, 1.0)
    with torch.no_grad():
        s = probe.similarity(dev_feats).double()
    centre = float(torch.quantile(s, quantile))
    spread = max(float(s.std()) * width, MIN_WIDTH)
    score = DomainScore(protos, centre, spread)
    with torch.no_grad():
        share = float((score(dev_feats)[:, 0] < 0.5).double().mean())
    fit = DomainFit(
        prototypes=int(protos.shape[0]),
        train_photos=int(train_feats.shape[0]),
        dev_photos=int(dev_feats.shape[0]),
        quantile=quantile,
        centre=round(centre, 6),
        width=round(spread, 6),
        fallback_share_dev=round(share, 4),
    )
    return score, fit
