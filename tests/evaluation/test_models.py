"""Real models: the tiny checkpoint end to end, ONNX parity, the torch-free path."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from img2loc.cli import app
from img2loc.evaluation import EvalOptions, evaluate
from img2loc.evaluation.models import ModelError, load_model
from tests.conftest import make_photo_table

EXE = str(Path(sys.executable).with_name("img2loc"))
REPO = Path(__file__).resolve().parents[2]


def test_console_script_help_and_usage_errors(tmp_path):
    out = subprocess.run([EXE, "eval", "--help"], capture_output=True, text=True, timeout=60)
    assert "--group-by" in out.stdout and "--train-data" in out.stdout
    bad = subprocess.run(
        [
            EXE,
            "eval",
            "--data",
            str(tmp_path),
            "-o",
            str(tmp_path / "r"),
            "--model",
            str(tmp_path / "nope.ckpt"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "no such model" in bad.stderr


def test_model_errors_say_what_to_pass(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="no such model"):
        load_model(tmp_path / "nope.ckpt")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    with pytest.raises(ModelError, match=r"checkpoints/last\.ckpt"):
        load_model(run)
    from img2loc.inference import model_folder

    monkeypatch.setattr(model_folder, "DEFAULT_MODEL_DIR", tmp_path / "absent")
    with pytest.raises(ModelError, match="--model"):
        load_model(None)


def test_cli_end_to_end_on_the_tiny_checkpoint(tiny_ckpt, tiny_data, tmp_path):
    out = tmp_path / "report"
    # In-process (the console script itself is covered by the --help test): saves
    # importing torch and Lightning a second time.
    res = CliRunner().invoke(
        app,
        [
            "eval",
            "--model",
            str(tiny_ckpt),
            "--data",
            str(tiny_data["shards"]),
            "-o",
            str(out),
            "--group-by",
            "location_id",
            "--train-data",
            str(tiny_data["shards"]),
            "--compare",
            str(tiny_ckpt),
            "--sheet-size",
            "4",
            "--aggregate",
            "product",
        ],
    )
    assert res.exit_code == 0, res.output[-3000:]
    assert "hierarchical" in res.stdout and "baseline nearest_neighbour" in res.stdout
    rep = json.loads((out / "report.json").read_text())
    assert rep["n"] == 12 and rep["splits"] == {str(tiny_data["shards"]): "val"}
    assert set(rep["acc_km"]) == {"1", "25", "200", "750", "2500"}
    for k in ("median_km", "mean_km", "geoguessr_mean", "f1"):
        assert isinstance(rep[k], float)
    assert rep["multiview"]["n_locations"] == 3 and rep["multiview"]["aggregate"] == "product"
    assert rep["baselines"]["nearest_neighbour"]["n_train"] == 36
    assert rep["baselines"]["constant"]["reference"] == "best single guess for the training photos"
    names = [c["name"] for c in rep["compare"]]
    assert len(names) == 2 and names[0] != names[1]
    assert rep["compare"][0]["acc_km"] == rep["compare"][1]["acc_km"]
    assert len(pd.read_csv(out / "predictions.csv")) == 12
    for png in ("error_cdf", "map", "continents", "reliability", "worst", "best"):
        Image.open(out / f"{png}.png").verify()
    assert "## Models compared" in (out / "report.md").read_text()


def test_csv_of_generated_photos(tiny_ckpt, tmp_path):
    csv = make_photo_table(tmp_path, n_loc=6, seed=3)
    rep = evaluate(
        tiny_ckpt,
        [csv],
        tmp_path / "r",
        options=EvalOptions(group_by="location_id", limit=12, progress=False, sheet_size=0),
    )
    assert rep["n"] == 12 and rep["multiview"]["n_locations"] == 3
    assert list(rep["by_source"]) == ["set"]
    pred = pd.read_csv(tmp_path / "r" / "predictions.csv")
    assert pred["image"].map(os.path.isfile).all()


def test_checkpoint_and_onnx_give_the_same_numbers(tiny_ckpt, tiny_data, tmp_path):
    exporter = pytest.importorskip("img2loc.export.exporter")
    model_dir = tmp_path / "model"
    exporter.export_checkpoint(tiny_ckpt, model_dir, log=lambda _: None)
    ckpt, onnx = load_model(tiny_ckpt), load_model(model_dir)
    assert (ckpt.kind, onnx.kind) == ("checkpoint", "onnx")
    x = np.random.default_rng(0).normal(size=(5, 3, 160, 160)).astype(np.float32)
    np.testing.assert_allclose(ckpt.run(x), onnx.run(x), atol=1e-4)
    rep = evaluate(
        tiny_ckpt,
        [tiny_data["shards"]],
        tmp_path / "r",
        compare=[model_dir],
        options=EvalOptions(progress=False, sheet_size=0),
    )
    a, b = rep["compare"]
    for k in ("acc_km", "n"):
        assert a[k] == b[k]
    for k in ("median_km", "mean_km", "geoguessr_mean", "f1"):
        assert a[k] == pytest.approx(b[k], rel=1e-4)


NO_TORCH = """
import sys
from pathlib import Path
from typer.testing import CliRunner


from img2loc.cli import app
from img2loc.evaluation import EvalOptions, evaluate
from tests.inference.conftest import make_model_dir
model = make_model_dir(Path(sys.argv[1]) / "model")
rep = evaluate(model, [Path(sys.argv[2])], Path(sys.argv[1]) / "r",
               options=EvalOptions(progress=False, sheet_size=2, limit=8))
assert rep["n"] == 8, rep["n"]
assert "torch" not in sys.modules, "evaluating an exported model imported torch"
"""


def test_exported_model_evaluates_without_torch(tmp_path):
    pytest.importorskip("tests.inference.conftest")
    csv = make_photo_table(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", NO_TORCH, str(tmp_path), str(csv)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_default_model_may_be_browser_only(model_dir, tmp_path, monkeypatch):
    """The package ships model.browser.onnx without model.onnx: eval's default must load it."""
    import shutil

    from img2loc.evaluation.models import default_model_dir, load_model
    from img2loc.inference import model_folder

    only = tmp_path / "default_model"
    shutil.copytree(model_dir, only)
    (only / "model.onnx").unlink()
    monkeypatch.setattr(model_folder, "DEFAULT_MODEL_DIR", only)
    assert default_model_dir() == only
    assert load_model(None).cells is not None
