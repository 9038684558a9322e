"""Image loading, preprocessing and the onnxruntime predictor (no torch).

Usage: ``Predictor.load("MODEL_DIR").predict("photo.jpg", top_k=5)``; ``load()`` without
a folder uses the model bundled with the package. ``predict`` also takes lists, URLs,
bytes, PIL images and numpy arrays.
"""

from img2loc.inference.model_folder import DEFAULT_MODEL_DIR, ModelError
from img2loc.inference.predictor import Prediction, Predictor, TopCell

__all__ = ["DEFAULT_MODEL_DIR", "ModelError", "Prediction", "Predictor", "TopCell"]
