"""The model folder: the one home of its file names and of their validation (no torch).

``img2loc export`` writes a model folder; the predictor, the server, evaluation and the
web app read it. Every name of a file or tensor inside it lives here, and every file is
checked where it is read: a missing file is a :class:`ModelError` naming it, a malformed
one a :class:`~img2loc.errors.FormatError` naming the file and the field. Files:

* ``model.onnx`` — fp32; input ``image`` (N, 3, S, S) float32, output ``probs`` (N, cells)
  and, when exported with a fallback, ``in_domain`` (N, 1): the weight the answer keeps
  (the rest goes to the cells' photo prior; :mod:`img2loc.geo.decode`);
* ``model.browser.onnx`` — the same graph with compressed weights (fp32 compute);
* ``cells.json`` — the cell set plus each cell's place name (read by :func:`read_cells`);
* ``preprocess.json`` — :class:`~img2loc.inference.preprocess.PreprocessConfig`;
* ``README.md`` (model card) and ``export.json`` (versions, checksums, parity figures).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from img2loc.data.cells import cells_from_document, read_cell_document
from img2loc.errors import Img2locError
from img2loc.geo.cells import CellSet
from img2loc.inference.preprocess import PreprocessConfig

#: The model shipped inside the package (used when no model folder is given).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "assets" / "default_model"
FP32_FILE = "model.onnx"
BROWSER_FILE = "model.browser.onnx"
CELLS_FILE = "cells.json"
PREPROCESS_FILE = "preprocess.json"
EXPORT_FILE = "export.json"
CARD_FILE = "README.md"
#: Model files by variant name; ``auto`` tries them in this order.
VARIANTS = {"fp32": FP32_FILE, "browser": BROWSER_FILE}
#: Names of the ONNX graph's input and output tensors.
INPUT_NAME, OUTPUT_NAME, DOMAIN_NAME = "image", "probs", "in_domain"
#: Files an export checksums in export.json (the ones a model is made of).
MODEL_FILES = (FP32_FILE, BROWSER_FILE, CELLS_FILE, PREPROCESS_FILE)
#: Files of a model folder the browser may fetch (the server's allow-list).
BROWSER_FILES = frozenset({*MODEL_FILES, CARD_FILE, EXPORT_FILE})
#: Files a folder must hold to be a model folder, besides one of :data:`VARIANTS`.
REQUIRED_FILES = (CELLS_FILE, PREPROCESS_FILE)


class ModelError(Img2locError, ValueError):
    """A model folder (or checkpoint) cannot be used; the message says how to fix it."""


def has_model(folder: Path) -> bool:
    """True when ``folder`` holds an ONNX model of either variant."""
    return any((folder / n).is_file() for n in VARIANTS.values())


def missing_files(folder: Path) -> list[str]:
    """Files a model folder needs that ``folder`` lacks (empty when it has them all)."""
    missing = [n for n in REQUIRED_FILES if not (folder / n).is_file()]
    if not has_model(folder):
        missing.append(" or ".join(VARIANTS.values()))
    return missing


def resolve_model(model_dir: str | os.PathLike[str] | None, variant: str) -> tuple[Path, Path]:
    """(model folder, ONNX file) for a folder (default: the bundled model) and a variant.

    ``variant``: ``fp32`` (model.onnx), ``browser`` (model.browser.onnx) or ``auto``
    (fp32 when present). A path to an ``.onnx`` file inside a model folder also works.
    """
    if variant not in (*VARIANTS, "auto"):
        raise ModelError(f"variant must be one of {[*VARIANTS, 'auto']}, got {variant!r}")
    d = DEFAULT_MODEL_DIR if model_dir is None else Path(model_dir)
    if d.suffix == ".onnx" and d.is_file():
        return d.parent, d
    if not d.is_dir():
        if model_dir is None:
            raise ModelError(
                f"no bundled model in this installation ({d} is missing). Pass a model folder "
                "written by `img2loc export`: `img2loc predict --model DIR ...` or "
                "Predictor.load('DIR')"
            )
        if d.is_file():
            what = "a training checkpoint" if d.suffix == ".ckpt" else "a file"
            raise ModelError(
                f"{d} is {what}; --model takes a model folder: make one with "
                f"`img2loc export {d} -o model_dir/`, then pass --model model_dir/"
            )
        raise ModelError(f"model folder {d} not found; write one with `img2loc export`")
    names = list(VARIANTS.values()) if variant == "auto" else [VARIANTS[variant]]
    for n in names:
        if (d / n).is_file():
            return d, d / n
    raise ModelError(
        f"{d} has no {' or '.join(names)}; is it a model folder written by `img2loc export`?"
    )


def read_cells(path: Path) -> tuple[CellSet, list[str] | None]:
    """A model folder's cells and their place names (None when the export predates them)."""
    if not path.is_file():
        raise ModelError(f"{path} is missing; re-export the model with `img2loc export`")
    fix = "re-export the model"
    doc = read_cell_document(path, fix)
    cells = cells_from_document(path, doc, fix)
    records = doc["cells"]
    places = [c.get("place") for c in records]
    # Place names are optional (older exports): all or none, else none.
    ok = bool(places) and all(isinstance(p, str) for p in places)
    return cells, [str(p) for p in places] if ok else None


def read_preprocess(path: Path) -> PreprocessConfig:
    """A model folder's preprocessing; :class:`ModelError` when missing."""
    if not path.is_file():
        raise ModelError(f"{path} is missing; re-export the model with `img2loc export`")
    return PreprocessConfig.load(path)


@dataclass(frozen=True)
class ModelFolder:
    """A model folder read and checked: the ONNX file to run, cells, places, preprocessing."""

    path: Path
    onnx: Path
    cells: CellSet
    places: list[str] | None
    preprocess: PreprocessConfig

    @classmethod
    def open(cls, model_dir: str | os.PathLike[str] | None, variant: str = "auto") -> ModelFolder:
        """Read a model folder (default: the bundled one); see :func:`resolve_model`."""
        d, onnx_path = resolve_model(model_dir, variant)
        cells, places = read_cells(d / CELLS_FILE)
        pre = read_preprocess(d / PREPROCESS_FILE)
        return cls(d, onnx_path, cells, places, pre)
