"""One interface over the models evaluation can read.

* a Lightning training checkpoint (``.ckpt``): needs the ``train`` extra (torch);
  gives embeddings too (the nearest-neighbour baseline);
* an exported model directory (``model.onnx``, ``cells.json``, ``preprocess.json``)
  read by :class:`img2loc.inference.predictor.Predictor`: base install, no torch.

Both give per-cell sigmoid probabilities for a (N, 3, S, S) float32 batch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from img2loc.errors import Img2locError
from img2loc.geo.cells import CellSet
from img2loc.inference import model_folder

# ModelError is re-exported: the CLI imports it from here.
from img2loc.inference.model_folder import ModelError as ModelError
from img2loc.inference.preprocess import PreprocessConfig


class EvalModel:
    """What evaluation needs from a model: cells, preprocessing, probabilities."""

    kind = "model"
    can_embed = False

    def __init__(self, path: Path, cells: CellSet, preprocess: PreprocessConfig) -> None:
        self.path = path
        self.name = _model_name(path)
        self.cells = cells
        self.preprocess = preprocess

    def run(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        """(N, C) per-cell probabilities."""
        raise NotImplementedError

    def run_embed(
        self, batch: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
        """Probabilities and, when the model can, backbone embeddings from one pass."""
        return self.run(batch), None

    def embed(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        """(N, F) backbone embeddings."""
        raise ModelError(f"{self.path}: this model gives no embeddings")

    def share_cores(self, decode_threads: int) -> None:
        """Leave ``decode_threads`` cores to image decoding (a no-op where it does not matter)."""


class CheckpointModel(EvalModel):
    """A training checkpoint run with torch (EMA weights when the run kept them)."""

    kind = "checkpoint"
    can_embed = True

    def __init__(self, path: Path) -> None:
        try:
            import torch

            from img2loc.models.checkpoint import load_checkpoint
        except ImportError as e:
            raise ModelError(
                f"evaluating a checkpoint needs the train extra: pip install 'img2loc[train]' "
                f"({e}); or export it (`img2loc export {path} -o DIR`) and evaluate DIR"
            ) from None
        try:
            model, cells, pre, _ = load_checkpoint(path)
        except (ValueError, KeyError, RuntimeError, OSError) as e:
            raise ModelError(f"{path}: cannot load the checkpoint ({e})") from None
        super().__init__(path, cells, pre)
        self._torch = torch
        self._model = model

    def run_embed(
        self, batch: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
        torch = self._torch
        with torch.inference_mode():
            feats = self._model.forward_features(torch.from_numpy(np.ascontiguousarray(batch)))
            probs = torch.sigmoid(self._model.forward_head(feats).float())
        return probs.numpy(), feats.float().numpy()

    def run(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        return self.run_embed(batch)[0]

    def share_cores(self, decode_threads: int) -> None:
        # torch's OpenMP threads spin; competing with decoding threads for the same
        # cores made a 2-core run 5x slower (41 vs 216 photos/s), so give them the rest.
        self._torch.set_num_threads(max(1, (os.cpu_count() or 1) - decode_threads))

    def embed(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        torch = self._torch
        with torch.inference_mode():
            feats = self._model.forward_features(torch.from_numpy(np.ascontiguousarray(batch)))
        out: NDArray[np.float32] = feats.float().numpy()
        return out


class OnnxModel(EvalModel):
    """An exported model directory run by the torch-free Predictor."""

    kind = "onnx"

    def __init__(self, path: Path) -> None:
        predictor_cls = _predictor_module().Predictor
        try:
            self._predictor = predictor_cls.load(path)
        except ModelError:
            raise
        except Img2locError as e:  # already names the file (and the field) at fault
            raise ModelError(str(e)) from None
        except (ValueError, OSError) as e:
            raise ModelError(f"{path}: cannot load the exported model ({e})") from None
        p = self._predictor
        super().__init__(path, p.cells, p.preprocess)
        # An export may add an embedding output; use it for the nearest-neighbour baseline.
        self.can_embed = callable(getattr(p, "embed", None))

    def run(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        out: NDArray[np.float32] = np.asarray(self._predictor.run(batch), np.float32)
        return out

    def embed(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        if not self.can_embed:
            return super().embed(batch)
        out: NDArray[np.float32] = np.asarray(self._predictor.embed(batch), np.float32)
        return out


def _predictor_module() -> Any:
    try:
        from img2loc.inference import predictor
    except ImportError as e:
        raise ModelError(
            f"this img2loc cannot run exported models yet ({e}); evaluate a .ckpt instead"
        ) from None
    return predictor


def default_model_dir() -> Path:
    """The model shipped with the package, or a ModelError saying it is missing."""
    try:
        # The package ships the browser model only; either variant makes a model folder.
        folder, _ = model_folder.resolve_model(None, "auto")
    except ModelError:
        raise ModelError(
            "no default model is installed with this img2loc; pass --model with a training "
            "checkpoint (.ckpt) or an exported model directory (`img2loc export`)"
        ) from None
    return Path(folder)


def _model_name(path: Path) -> str:
    # "last.ckpt" or "model/" say little on their own: keep the folder above them.
    p = path.resolve()
    if p.suffix == ".ckpt" and p.parent.name == "checkpoints":
        return f"{p.parent.parent.name}/{p.stem}"
    return f"{p.parent.name}/{p.stem if p.is_file() else p.name}"


def load_model(spec: str | Path | None) -> EvalModel:
    """A checkpoint file, an exported model directory, or (None) the default model."""
    path = default_model_dir() if spec is None else Path(spec)
    if not path.exists():
        raise ModelError(f"{path}: no such model file or directory")
    if path.is_dir():
        # fp32 when present, else the browser model (all the package ships).
        if model_folder.has_model(path):
            return OnnxModel(path)
        ckpts = sorted(path.glob("checkpoints/*.ckpt"))
        hint = f"; e.g. --model {ckpts[-1]}" if ckpts else ""
        raise ModelError(
            f"{path} is not an exported model (no {' or '.join(model_folder.VARIANTS.values())}); "
            f"pass a .ckpt file{hint}"
        )
    return CheckpointModel(path)
