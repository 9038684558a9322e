"""The preprocessing a model was trained with, applied identically everywhere.

A model carries its :class:`PreprocessConfig` (like timm's ``pretrained_cfg``);
training's evaluation transform, Python inference and the browser (which reads
``preprocess.json``) all apply it: resize the shorter side to ``resize_size``
with ``interpolation``, centre-crop ``input_size``, scale to [0, 1], then
``(x - mean) / std``, channels first.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from img2loc.errors import FormatError, MissingFileError
from img2loc.files import atomic_write_text

_RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
}


@dataclass(frozen=True)
class PreprocessConfig:
    """Input geometry and normalisation of a model."""

    input_size: int = 224
    resize_size: int = 256
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    interpolation: str = "bicubic"
    crop: str = "center"
    layout: str = field(default="NCHW")

    def __post_init__(self) -> None:
        if self.interpolation not in _RESAMPLE:
            raise ValueError(
                f"field 'interpolation' must be one of {sorted(_RESAMPLE)}, "
                f"got {self.interpolation!r}"
            )
        if self.crop not in ("center", "none"):
            raise ValueError(f"field 'crop' must be 'center' or 'none', got {self.crop!r}")
        if not 0 < self.input_size <= self.resize_size:
            raise ValueError(
                f"fields 'input_size' and 'resize_size': need 0 < input_size <= resize_size, "
                f"got {self.input_size} and {self.resize_size}"
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreprocessConfig:
        """Inverse of :meth:`to_dict`; :class:`FormatError` names a malformed field."""
        if not isinstance(d, dict):
            raise FormatError(f"expected a JSON object, got {type(d).__name__}")
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for k in ("input_size", "resize_size"):
            v = known.get(k, 1)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise FormatError(f"field {k!r} must be a whole number > 0, got {v!r}")
        for k in ("mean", "std"):
            if k in known:
                v = known[k]
                if not (
                    isinstance(v, list)
                    and len(v) == 3
                    and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
                ):
                    raise FormatError(f"field {k!r} must be a list of 3 numbers, got {v!r}")
                if k == "std" and not all(x > 0 for x in v):
                    raise FormatError(f"field 'std' must be > 0, got {v!r}")
                known[k] = tuple(float(x) for x in v)
        for k in ("interpolation", "crop", "layout"):
            if k in known and not isinstance(known[k], str):
                raise FormatError(f"field {k!r} must be a string, got {known[k]!r}")
        try:
            return cls(**known)
        except ValueError as e:
            raise FormatError(str(e)) from None

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> PreprocessConfig:
        """Read a ``preprocess.json``; errors name the file and the field."""
        p = Path(path)
        try:
            doc = json.loads(p.read_text())
        except FileNotFoundError:
            raise MissingFileError(f"{p} is missing; re-export the model") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise FormatError(f"{p} is not valid JSON ({e}); re-export the model") from None
        try:
            return cls.from_dict(doc)
        except FormatError as e:
            raise FormatError(f"{p}: {e}; re-export the model") from None


def resize_crop(im: Image.Image, cfg: PreprocessConfig) -> Image.Image:
    """Resize the shorter side to ``resize_size`` then centre-crop ``input_size`` (RGB in/out)."""
    w, h = im.size
    if cfg.crop == "none":
        return im.resize((cfg.input_size, cfg.input_size), _RESAMPLE[cfg.interpolation])
    s = cfg.resize_size / min(w, h)
    nw, nh = max(cfg.input_size, round(w * s)), max(cfg.input_size, round(h * s))
    im = im.resize((nw, nh), _RESAMPLE[cfg.interpolation], reducing_gap=None)
    left, top = (nw - cfg.input_size) // 2, (nh - cfg.input_size) // 2
    return im.crop((left, top, left + cfg.input_size, top + cfg.input_size))


def normalize(im: Image.Image, cfg: PreprocessConfig) -> NDArray[np.float32]:
    """(3, H, W) float32 array: [0, 1] scaling then mean/std."""
    a = np.asarray(im, dtype=np.float32) * np.float32(1.0 / 255.0)
    a -= np.asarray(cfg.mean, np.float32)
    a /= np.asarray(cfg.std, np.float32)
    out: NDArray[np.float32] = np.ascontiguousarray(a.transpose(2, 0, 1))
    return out


def preprocess(im: Image.Image, cfg: PreprocessConfig) -> NDArray[np.float32]:
    """Model input for one RGB image: resize, crop, normalise -> (3, S, S) float32."""
    return normalize(resize_crop(im, cfg), cfg)
