"""`img2loc export` on a tiny checkpoint: parity, model folder contract, loud failures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")
pytest.importorskip("onnxscript")

import onnx  # noqa: E402

from img2loc import Predictor  # noqa: E402
from img2loc.data.sources.table import import_table  # noqa: E402
from img2loc.export import exporter  # noqa: E402
from img2loc.export.bundle import ExportError  # noqa: E402
from img2loc.models.checkpoint import load_checkpoint  # noqa: E402

EXE = str(Path(sys.executable).with_name("img2loc"))


@pytest.fixture(scope="module")
def tiny(tiny_ckpt, tiny_data, tmp_path_factory) -> dict[str, Path]:
    """The tiny model trained one epoch (a real Lightning checkpoint), its shards and photos."""
    return {
        "root": tmp_path_factory.mktemp("export"),
        "ckpt": tiny_ckpt,
        "shards": tiny_data["shards"],
        "csv": tiny_data["root"] / "set" / "locations.csv",
    }


def test_export_cli_writes_a_checked_model_folder(tiny):
    out = tiny["root"] / "model"
    proc = subprocess.run(
        [
            EXE,
            "export",
            str(tiny["ckpt"]),
            "-o",
            str(out),
            "--data",
            str(tiny["shards"]),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = proc.stdout
    assert "ONNX Runtime vs PyTorch max |diff|" in log and "top cell = fp32's" in log
    assert "accuracy change 1 km" in log
    names = {p.name for p in out.iterdir()}
    assert names == {
        "model.onnx",
        "model.browser.onnx",
        "cells.json",
        "preprocess.json",
        "README.md",
        "export.json",
    }

    info = json.loads((out / "export.json").read_text())
    assert (
        info["parity"]["fp32_max_abs_diff"] <= 1e-4 and info["parity"]["n"] == 12
    )  # the val split
    browser = info["parity"]["browser"]
    assert browser["top_cell_agreement"] >= 0.98
    assert all(d >= -1.0 for d in browser["acc_km_delta"].values())
    assert set(info["metrics"]["fp32"]["acc_km"]) == {"1", "25", "200", "750", "2500"}
    assert info["files"]["model.onnx"]["bytes"] == (out / "model.onnx").stat().st_size

    model = onnx.load(out / "model.onnx")
    onnx.checker.check_model(model, full_check=True)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    [inp], [outp] = model.graph.input, model.graph.output
    assert (inp.name, outp.name) == ("image", "probs")
    assert inp.type.tensor_type.shape.dim[0].dim_param  # dynamic batch axis
    # Neither ONNX file carries the exporter's debug metadata (stack traces with this
    # machine's paths): the bytes depend on the weights, not on where the source sits.
    for f in ("model.onnx", "model.browser.onnx"):
        m = onnx.load(out / f)
        assert not any(n.metadata_props for n in m.graph.node) and not m.graph.metadata_props
        assert str(Path.cwd()).encode() not in (out / f).read_bytes()
        assert b"stack_trace" not in (out / f).read_bytes()
    cells = json.loads((out / "cells.json").read_text())["cells"]
    assert all(
        {"token", "level", "lat", "lon", "polygon", "ancestors", "place"} <= set(c) for c in cells
    )
    card = (out / "README.md").read_text()
    assert "test_efficientnet" in card and "| fp32 |" in card and "Shards: train" in card

    # The folder answers like the checkpoint, through the torch-free predictor.
    model_t, _, pre, _ = load_checkpoint(tiny["ckpt"])
    p = Predictor.load(out)
    images = list(import_table(tiny["csv"])[0]["image"][:6])
    from img2loc.inference.images import load_input

    x = np.stack([load_input(i, pre).x for i in images])
    with torch.no_grad():
        ref = torch.sigmoid(model_t(torch.from_numpy(x))).numpy()
    np.testing.assert_allclose(p.probabilities(images), ref, atol=1e-4)
    assert p.predict(images[0]).ok


def test_failed_parity_writes_nothing(tiny, monkeypatch):
    out = tiny["root"] / "kept"
    out.mkdir()
    (out / "export.json").write_text('{"old": true}')
    monkeypatch.setattr(exporter, "FP32_TOLERANCE", -1.0)  # no export can pass this
    with pytest.raises(ExportError, match="disagree"):
        exporter.export_checkpoint(tiny["ckpt"], out, log=lambda s: None)
    assert [p.name for p in out.iterdir()] == ["export.json"]  # the old folder is untouched
    assert not list(tiny["root"].glob(".kept.*"))
    with pytest.raises(ExportError, match="not found"):
        exporter.export_checkpoint(tiny["root"] / "nope.ckpt", out)


def test_cli_reports_export_errors(tiny):
    notes = tiny["root"] / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("x")
    proc = subprocess.run(
        [EXE, "export", str(tiny["ckpt"]), "-o", str(notes)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0 and "not a model folder" in proc.stderr
