"""The model: a typed config, the network built from it, its transforms and checkpoints
(torch + timm; no Lightning, no training code)."""

from img2loc.models.checkpoint import load_checkpoint, read_checkpoint
from img2loc.models.config import ModelConfig, build_model
from img2loc.models.geolocator import GeoLocator
from img2loc.models.transforms import AugmentConfig, Transforms, create_transforms

__all__ = [
    "AugmentConfig",
    "GeoLocator",
    "ModelConfig",
    "Transforms",
    "build_model",
    "create_transforms",
    "load_checkpoint",
    "read_checkpoint",
]
