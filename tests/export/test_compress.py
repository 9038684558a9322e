"""Weight-only compression of ONNX models and the browser model search (no torch)."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from img2loc.export import browser  # noqa: E402
from img2loc.export.compress import compress_weights, quantizable  # noqa: E402
from img2loc.export.devdata import DevImages  # noqa: E402
from img2loc.inference.predictor import Predictor, make_session  # noqa: E402
from tests.inference.conftest import SIZE, _tiny_graph  # noqa: E402


def _run(model, x):
    return make_session(model.SerializeToString()).run(None, {"image": x})[0]


@pytest.mark.parametrize(("kind", "ratio", "tol"), [("int8", 0.35, 0.02), ("fp16", 0.6, 2e-3)])
def test_weights_shrink_and_outputs_stay(kind, ratio, tol):
    model = _tiny_graph(200)
    small = compress_weights(model, quantizable(model) if kind == "int8" else ())
    onnx.checker.check_model(small, full_check=True)
    assert small.ByteSize() < ratio * model.ByteSize()
    assert {n.op_type for n in small.graph.node} >= (
        {"Cast", "Mul"} if kind == "int8" else {"Cast"}
    )
    x = np.random.default_rng(0).normal(size=(3, 3, SIZE, SIZE)).astype(np.float32)
    ref, got = _run(model, x), _run(small, x)
    assert np.abs(ref - got).max() < tol
    assert (ref.argmax(1) == got.argmax(1)).all()
    assert len(model.graph.node) == 6  # the input model is left alone


def test_mixed_precision_and_bad_names():
    model = _tiny_graph(200)
    assert set(quantizable(model)) == {"w1", "w2"}  # biases are too small to bother
    mixed = compress_weights(model, ["w2"])
    kept = {i.name: i.data_type for i in mixed.graph.initializer}
    assert kept["w2_int8"] == onnx.TensorProto.INT8 and kept["w1_fp16"] == onnx.TensorProto.FLOAT16
    assert kept["b1"] == onnx.TensorProto.FLOAT
    with pytest.raises(ValueError, match="not quantizable"):
        compress_weights(model, ["b1"])


def test_browser_search_falls_back_to_mixed_then_fp16(model_dir, monkeypatch):
    p = Predictor.load(model_dir)
    model = onnx.load(model_dir / "model.onnx")
    x = np.random.default_rng(1).normal(size=(16, 3, SIZE, SIZE)).astype(np.float32)
    ref = p.run(x)
    dev = DevImages(x, None, None, "test")
    logs: list[str] = []
    # A bar that at most one int8 weight passes: the search must find a one-weight mix.
    monkeypatch.setattr(browser, "passes", lambda c: len(c["int8_weights"]) <= 1)
    chosen, cmp = browser.choose_browser_model(model, ref, dev, p.cells, p.preprocess, logs.append)
    [w] = cmp["int8_weights"]
    assert "1 of 2" in cmp["weights"] and w + "_int8" in {i.name for i in chosen.graph.initializer}
    assert "[misses the bar]" in logs[0] and any("ranked 2 weights" in s for s in logs)
    monkeypatch.setattr(browser, "passes", lambda c: not c["int8_weights"])
    _, cmp = browser.choose_browser_model(model, ref, dev, p.cells, p.preprocess, logs.append)
    assert cmp["weights"] == "fp16" and cmp["int8_weights"] == []
    monkeypatch.setattr(browser, "passes", lambda c: False)
    with pytest.raises(browser.ExportError, match="fp16"):
        browser.choose_browser_model(model, ref, dev, p.cells, p.preprocess, logs.append)
