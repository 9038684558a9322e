"""A model's train and eval transforms, from its input contract (open_clip's
``create_model_and_transforms``): the data code receives them, it never asks the model.

The eval transform is :func:`img2loc.inference.preprocess.preprocess`, the one
``img2loc predict`` and the browser apply. The train transform is a random resized
crop at the epoch's size (``sizes``: see :meth:`Transforms.train_size`), an
optional flip and colour jitter, then the model's normalisation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image
from torchvision.transforms import v2

from img2loc.inference.preprocess import PreprocessConfig, preprocess


@dataclass
class AugmentConfig:
    """Training augmentation. The original author found strong hue/saturation jitter hurt."""

    scale_min: float = 0.35
    hflip: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.1
    hue: float = 0.0


def train_transform(size: int, pre: PreprocessConfig, aug: AugmentConfig) -> Callable[..., Any]:
    """PIL image -> augmented, normalised (3, size, size) float tensor."""
    t: list[Any] = [
        v2.RandomResizedCrop(
            size,
            scale=(aug.scale_min, 1.0),
            interpolation=v2.InterpolationMode.BICUBIC,
            antialias=True,
        )
    ]
    if aug.hflip > 0:
        t.append(v2.RandomHorizontalFlip(aug.hflip))
    if max(aug.brightness, aug.contrast, aug.saturation, aug.hue) > 0:
        t.append(v2.ColorJitter(aug.brightness, aug.contrast, aug.saturation, aug.hue))
    t += [
        v2.PILToTensor(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(pre.mean), list(pre.std)),
    ]
    compose: Callable[..., Any] = v2.Compose(t)
    return compose


@dataclass(frozen=True)
class Transforms:
    """What the data code needs of a model: its preprocessing and the train size per epoch."""

    preprocess: PreprocessConfig
    sizes: tuple[int, ...] = ()

    def train_size(self, epoch: int) -> int:
        """The training crop size of ``epoch``: the model's input size in epoch 0, then
        ``sizes`` from epoch 1 on (the last listed size repeats).

        The one-epoch offset is the schedule every shipped model was trained with (the
        size used to be set at an epoch's start, after that epoch's loader was built),
        kept so that the recipes rebuild those models exactly.
        """
        if not self.sizes or epoch <= 0:
            return self.preprocess.input_size
        return self.sizes[min(epoch - 1, len(self.sizes) - 1)]

    def train(self, epoch: int, aug: AugmentConfig) -> Callable[..., Any]:
        """The training transform of ``epoch``."""
        return train_transform(self.train_size(epoch), self.preprocess, aug)

    def eval(self, im: Image.Image) -> NDArray[np.float32]:
        """The evaluation transform: exactly what inference applies."""
        return preprocess(im, self.preprocess)


def create_transforms(
    pre: PreprocessConfig, train_sizes: Sequence[int] | None = None, random_sizes: bool = False
) -> Transforms:
    """The transforms of a model with preprocessing ``pre``.

    ``train_sizes`` sets the crop size per epoch; with ``random_sizes`` the size is
    drawn per batch on the device instead (the loader then crops at the model's size).
    """
    sizes = () if random_sizes or not train_sizes else tuple(int(s) for s in train_sizes)
    return Transforms(pre, sizes)
