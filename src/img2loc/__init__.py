"""img2loc: tell where on Earth a photo was taken, from the pixels alone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from img2loc.inference.predictor import Prediction, Predictor

__all__ = ["Prediction", "Predictor", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy: `import img2loc` (e.g. for the CLI) must not load onnxruntime.
    if name in ("Predictor", "Prediction"):
        from img2loc.inference import predictor

        return getattr(predictor, name)
    raise AttributeError(f"module 'img2loc' has no attribute {name!r}")
