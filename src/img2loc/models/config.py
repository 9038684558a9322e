"""The model's typed configuration and the one function that builds a model from it.

Like nanoGPT's ``GPT(GPTConfig(**ckpt["model_args"]))``: what a checkpoint stores
about the network is a :class:`ModelConfig`, so a checkpoint alone rebuilds the
model without the training code (see :mod:`img2loc.models.checkpoint`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from img2loc.geo.cells import CellSet
from img2loc.inference.preprocess import PreprocessConfig
from img2loc.models.backbone import DEFAULT_BACKBONE
from img2loc.models.geolocator import HEADS, GeoLocator


@dataclass(frozen=True)
class ModelConfig:
    """The network: backbone, head and input contract (the cell set comes alongside).

    ``pretrained`` and ``weights`` say where the first backbone weights come from;
    they matter only when a model is built to be trained, never when one is
    rebuilt from a checkpoint (its state dict has every weight). ``preprocess`` is
    the input contract the model was trained with; None means the backbone's own
    (timm's ``pretrained_cfg``).
    """

    backbone: str = DEFAULT_BACKBONE
    head: str = "linear"
    dropout: float = 0.2
    hidden_dim: int = 1024
    pretrained: bool = True
    weights: str | None = None
    num_cells: int | None = None
    preprocess: PreprocessConfig | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")

    def stored(self) -> ModelConfig:
        """This config for a rebuild from saved weights: nothing fetched or read."""
        return replace(self, pretrained=False, weights=None)

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any], key: str) -> ModelConfig:
        """The config a checkpoint stores under ``ckpt[key]["model"]``.

        ``dropout`` and ``hidden_dim`` were never stored there; they come from the
        run's hyperparameters, as does everything for a checkpoint without a stored
        model config.
        """
        hp = dict(ckpt.get("hyper_parameters") or {})
        stored = dict((ckpt.get(key) or {}).get("model") or {})
        pre = stored.get("preprocess")
        return cls(
            backbone=str(stored.get("backbone", hp.get("backbone", DEFAULT_BACKBONE))),
            head=str(stored.get("head", hp.get("head", "linear"))),
            dropout=float(hp.get("dropout", 0.2)),
            hidden_dim=int(hp.get("hidden_dim", 1024)),
            pretrained=False,
            weights=None,
            num_cells=int(stored["num_cells"]) if "num_cells" in stored else None,
            preprocess=PreprocessConfig.from_dict(pre) if isinstance(pre, dict) else None,
        )


def build_model(config: ModelConfig, cells: CellSet) -> GeoLocator:
    """A :class:`GeoLocator` over ``cells`` as ``config`` describes (train mode, fresh head)."""
    if config.num_cells is not None and config.num_cells != len(cells):
        raise ValueError(
            f"the model config has {config.num_cells} cells but the cell set {len(cells)}; "
            "use the cell set the model was trained with"
        )
    model = GeoLocator(
        cells,
        config.backbone,
        config.pretrained,
        config.head,
        config.dropout,
        config.hidden_dim,
        config.weights,
    )
    if config.preprocess is not None:
        model.set_preprocess(config.preprocess)
    return model
