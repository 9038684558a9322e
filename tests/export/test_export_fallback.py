"""`img2loc export` with the fallback: the in-domain score fitted on the shards, in the graph."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")
pytest.importorskip("onnxscript")

import onnx  # noqa: E402
import onnx.numpy_helper  # noqa: E402

from img2loc import Predictor  # noqa: E402
from img2loc.data.cells import read_cells, write_cells  # noqa: E402
from img2loc.data.sources.table import import_table  # noqa: E402
from img2loc.export.exporter import ProbabilityModel  # noqa: E402
from img2loc.inference.images import load_input  # noqa: E402
from img2loc.models.checkpoint import load_checkpoint  # noqa: E402
from img2loc.models.domain import DomainScore  # noqa: E402
from tests.conftest import EXE, run, tiny_args  # noqa: E402


@pytest.fixture(scope="module")
def prior_ckpt(tiny_data, tmp_path_factory) -> dict[str, Path]:
    """The tiny model trained one epoch on cells that carry a photo prior."""
    root = tmp_path_factory.mktemp("prior")
    cells = read_cells(tiny_data["cells"])
    rng = np.random.default_rng(0)
    cells.prior = cells.prior_mass(rng.uniform(-50, 60, 300), rng.uniform(-170, 170, 300))
    write_cells(cells, root / "cells.json")
    data = {**tiny_data, "cells": root / "cells.json"}
    # As the tiny_ckpt fixture trains (not `run`: it turns LightningCLI's deprecation notes
    # into errors).
    proc = subprocess.run(
        [str(EXE), "train", *tiny_args(data, root / "run", "--trainer.max_epochs", "1")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"root": root, "ckpt": root / "run" / "checkpoints" / "last.ckpt"}


def test_export_fits_the_in_domain_score_and_the_folder_uses_it(prior_ckpt, tiny_data):
    out = prior_ckpt["root"] / "model"
    proc = run(
        "export", str(prior_ckpt["ckpt"]), "-o", str(out), "--data", str(tiny_data["shards"])
    )
    assert "in-domain score: " in proc.stdout and "prototypes of 36 training photos" in proc.stdout
    info = json.loads((out / "export.json").read_text())
    fit = info["in_domain"]
    assert fit["name"] == "in_domain" and fit["prototypes"] == 36  # never more than photos
    assert fit["train_photos"] == 36 and fit["dev_photos"] == 12 and fit["width"] > 0
    for f in ("model.onnx", "model.browser.onnx"):
        assert [o.name for o in onnx.load(out / f).graph.output] == ["probs", "in_domain"]
    p = Predictor.load(out)
    assert p.has_fallback
    images = list(import_table(tiny_data["root"] / "set" / "locations.csv")[0]["image"][:5])
    rows = p.probabilities(images)
    assert rows.shape == (5, len(p.cells) + 1) and np.all((rows >= 0) & (rows <= 1))
    # The graph's weight is the torch score of its prototypes and export.json's numbers.
    model, _, pre, _ = load_checkpoint(prior_ckpt["ckpt"])
    graph = onnx.load(out / "model.onnx").graph
    [pt] = [i for i in graph.initializer if i.name == "in_domain.prototypes_t"]
    protos = torch.from_numpy(onnx.numpy_helper.to_array(pt).T.copy())
    score = DomainScore(protos, fit["centre"], fit["width"])
    x = torch.from_numpy(np.stack([load_input(i, pre).x for i in images]))
    with torch.no_grad():
        want = ProbabilityModel(model.eval(), score)(x)[1][:, 0].numpy()
    fp32 = Predictor.load(out, "fp32").probabilities(images)
    np.testing.assert_allclose(fp32[:, -1], want, atol=1e-4)
    preds = p.predict(images)
    assert all(r.in_domain is not None and 0 <= r.in_domain <= 1 for r in preds)
    card = (out / "README.md").read_text()
    assert "in-domain" in card.lower()


def test_no_fallback_and_impossible_fallback(prior_ckpt, tiny_ckpt, tiny_data, tmp_path):
    out = tmp_path / "plain"
    run(
        "export",
        str(prior_ckpt["ckpt"]),
        "-o",
        str(out),
        "--data",
        str(tiny_data["shards"]),
        "--no-fallback",
    )
    assert [o.name for o in onnx.load(out / "model.onnx").graph.output] == ["probs"]
    assert json.loads((out / "export.json").read_text())["in_domain"] is None
    assert not Predictor.load(out).has_fallback
    # Cells without a prior: the default leaves the fallback out, asking for it is an error.
    proc = run(
        "export",
        str(tiny_ckpt),
        "-o",
        str(tmp_path / "x"),
        "--data",
        str(tiny_data["shards"]),
        "--fallback",
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no photo prior" in proc.stderr and "--prior" in proc.stderr
    assert not (tmp_path / "x").exists()
