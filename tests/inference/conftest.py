"""A tiny model folder built without torch: a hand-made ONNX graph over a real cell set."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from img2loc.geo import CellSet
from img2loc.inference.preprocess import PreprocessConfig
from tests.bad_inputs import bomb_png

onnx = pytest.importorskip("onnx")

SIZE = 32


def _tiny_graph(n_cells: int, seed: int = 0, in_domain: float | None = None):
    """Conv -> ReLU -> global pool -> linear -> sigmoid: colours and edges move the answer.

    ``in_domain``: also output a constant in-domain weight of about this value (N, 1), as a
    model exported with a fallback does.
    """
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    hidden = 64
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.5, (hidden, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(0, 0.1, hidden).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.normal(0, 0.3, (n_cells, hidden)).astype(np.float32), "w2"),
        numpy_helper.from_array(rng.normal(-1, 0.5, n_cells).astype(np.float32), "b2"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "w1", "b1"], ["c"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "w2", "b2"], ["logits"], transB=1),
        helper.make_node("Sigmoid", ["logits"], ["probs"]),
    ]
    outputs = [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", n_cells])]
    if in_domain is not None:
        z = float(np.log(in_domain / (1 - in_domain)))  # logit of the wanted weight
        inits += [
            numpy_helper.from_array(np.array([1], np.int64), "axis"),
            numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
            numpy_helper.from_array(np.array(z, np.float32), "z"),
        ]
        nodes += [
            helper.make_node("ReduceMean", ["f", "axis"], ["m"], keepdims=1),
            helper.make_node("Mul", ["m", "zero"], ["m0"]),
            helper.make_node("Add", ["m0", "z"], ["mz"]),
            helper.make_node("Sigmoid", ["mz"], ["in_domain"]),
        ]
        outputs.append(helper.make_tensor_value_info("in_domain", TensorProto.FLOAT, ["batch", 1]))
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
        outputs,
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    return model


def make_model_dir(root: Path, in_domain: float | None = None, prior: bool | None = None) -> Path:
    """A complete model folder (the `img2loc export` layout) with a tiny hand-made graph.

    ``in_domain``: the graph also gives this constant in-domain weight, and the cells carry
    a photo prior (``prior`` overrides whether they do); the prior sits on Tokyo.
    """
    import json

    from img2loc.export.bundle import cells_document
    from img2loc.export.compress import compress_weights, quantizable

    rng = np.random.default_rng(3)
    # Spread-out photos plus three dense towns, so cells nest over several levels.
    towns = np.repeat([[48.85, 2.35], [35.68, 139.69], [-33.87, 151.21]], 80, axis=0)
    lat = np.r_[rng.uniform(-40, 60, 200), towns[:, 0] + rng.normal(0, 0.3, len(towns))]
    lon = np.r_[rng.uniform(-120, 140, 200), towns[:, 1] + rng.normal(0, 0.3, len(towns))]
    cells = CellSet.build(lat, lon, min_samples=4, max_samples=30)
    if prior if prior is not None else in_domain is not None:
        cells.prior = cells.prior_mass(
            35.68 + rng.normal(0, 0.2, 50), 139.69 + rng.normal(0, 0.2, 50)
        )
    root.mkdir(parents=True)
    model = _tiny_graph(len(cells), in_domain=in_domain)
    onnx.save(model, root / "model.onnx")
    onnx.save(compress_weights(model, quantizable(model)), root / "model.browser.onnx")
    (root / "cells.json").write_text(json.dumps(cells_document(cells)))
    PreprocessConfig(input_size=SIZE, resize_size=SIZE + 4).save(root / "preprocess.json")
    return root


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("model") / "tiny")


def photo(rng: np.random.Generator, size=(120, 90), fmt="JPEG", exif=None, mode="RGB") -> bytes:
    """Encoded photo-like image: a colour gradient plus noise."""
    w, h = size
    base = np.linspace(rng.uniform(0, 255, 3), rng.uniform(0, 255, 3), h)[:, None, :]
    arr = np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
    im = Image.fromarray(arr)
    if mode != "RGB":
        im = im.convert(mode)
    buf = io.BytesIO()
    kw = {"exif": exif} if exif is not None else {}
    im.save(buf, fmt, **kw)
    return buf.getvalue()


# What predict's JSON records hold (the contract tests check).
FIELDS = {
    "image",
    "lat",
    "lon",
    "place",
    "confidence",
    "top",
    "exif",
    "error_km",
    "error",
    "views",
    "view_errors",
    "in_domain",
    "fallback",
    "note",
}
TOP_FIELDS = {"lat", "lon", "probability", "cell", "place"}


def bad_corpus(folder: Path, rng: np.random.Generator) -> dict[str, str | None]:
    """Write the awkward inputs; name -> expected error fragment (None: must succeed)."""
    folder.mkdir(parents=True, exist_ok=True)
    good = photo(rng, (200, 150))
    files: dict[str, tuple[bytes, str | None]] = {
        "good.jpg": (good, None),
        "zero.jpg": (b"", "empty file"),
        "truncated.jpg": (good[: len(good) // 2], "truncated"),
        "text.jpg": (b"this is a note, not a photo\n", "not a recognised image format"),
        "bomb.png": (bomb_png(), "bomb"),
        "alpha.png": (photo(rng, fmt="PNG", mode="RGBA"), None),
        "cmyk.jpg": (photo(rng, mode="CMYK"), None),
        "anim.gif": (photo(rng, fmt="GIF", mode="P"), None),
    }
    a16 = (rng.uniform(0, 65535, (60, 80))).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(a16).save(buf, "PNG")
    files["sixteen.png"] = (buf.getvalue(), None)
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    return {name: why for name, (_, why) in files.items()}
