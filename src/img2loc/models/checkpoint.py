"""Reading training checkpoints without the training code (torch only, no Lightning).

A checkpoint written by ``img2loc train`` is a Lightning checkpoint whose
``state_dict`` holds the network under ``model.`` (and its weight average under
``ema.module.`` when the run kept one), and whose ``img2loc`` entry holds the cell
set and the model config. That is all it takes to rebuild the model, as
open_clip's ``load_checkpoint`` does in its library rather than its trainer.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from img2loc.geo.cells import CellSet
from img2loc.inference.preprocess import PreprocessConfig
from img2loc.models.config import ModelConfig, build_model
from img2loc.models.geolocator import GeoLocator

#: The checkpoint entry holding the cell set and the model config.
CKPT_KEY = "img2loc"
#: Set to 1 to load a trusted checkpoint that holds Python objects beyond tensors and
#: plain data (full unpickling runs code from the file: never for downloaded files).
TRUST_ENV = "IMG2LOC_TRUST_CHECKPOINT"
#: Where the network's weights sit in a checkpoint's state dict.
MODEL_PREFIX, EMA_PREFIX = "model.", "ema.module."


def read_checkpoint(path: str | Path, map_location: str = "cpu", mmap: bool = False) -> Any:
    """A checkpoint file's content, loaded with ``weights_only=True`` (no pickled code runs).

    img2loc checkpoints hold only tensors, numbers, strings, lists and dicts, so this
    always works for them; anything else is refused unless ``$IMG2LOC_TRUST_CHECKPOINT=1``.
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        if os.environ.get(TRUST_ENV) == "1":
            return torch.load(path, map_location=map_location, weights_only=False, mmap=mmap)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"{path} holds Python objects beyond model weights ({first}); loading it would "
            f"run code from the file. If you made it yourself, set {TRUST_ENV}=1 to load it."
        ) from None


def model_state(state_dict: dict[str, Any], use_ema: bool = True) -> dict[str, Any]:
    """The network's weights from a training state dict: the averaged ones when present
    (they are the ones the run validated) and ``use_ema``, else the trained ones."""
    ema = use_ema and any(k.startswith(EMA_PREFIX) for k in state_dict)
    prefix = EMA_PREFIX if ema else MODEL_PREFIX
    return {k.removeprefix(prefix): v for k, v in state_dict.items() if k.startswith(prefix)}


def load_checkpoint(
    path: str | Path, map_location: str = "cpu", use_ema: bool = True
) -> tuple[GeoLocator, CellSet, PreprocessConfig, dict[str, Any]]:
    """A checkpoint's model (eval mode), cells, preprocessing and hyperparameters."""
    ckpt = read_checkpoint(path, map_location)
    if not isinstance(ckpt, dict) or CKPT_KEY not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"{path} is not an img2loc training checkpoint")
    cells = CellSet.from_dict(ckpt[CKPT_KEY]["cells"])
    config = ModelConfig.from_checkpoint(ckpt, CKPT_KEY)
    model = build_model(config, cells)
    model.load_state_dict(model_state(ckpt["state_dict"], use_ema), strict=True)
    model.eval()
    return model, cells, model.preprocess, dict(ckpt.get("hyper_parameters") or {})
