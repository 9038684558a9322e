"""The model folder: its file names in one place, every file checked where it is read."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from img2loc.errors import FormatError, Img2locError
from img2loc.inference import model_folder
from img2loc.inference.model_folder import (
    BROWSER_FILES,
    CELLS_FILE,
    PREPROCESS_FILE,
    VARIANTS,
    ModelError,
    ModelFolder,
    missing_files,
)
from img2loc.inference.preprocess import PreprocessConfig

EXE = Path(sys.executable).with_name("img2loc")


@pytest.fixture
def folder(model_dir, tmp_path) -> Path:
    d = tmp_path / "model"
    shutil.copytree(model_dir, d)
    return d


def _edit(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_names_are_the_export_layout():
    assert VARIANTS == {"fp32": "model.onnx", "browser": "model.browser.onnx"}
    assert {"model.onnx", "model.browser.onnx", "cells.json", "preprocess.json"} < BROWSER_FILES
    assert "README.md" in BROWSER_FILES and "export.json" in BROWSER_FILES


def test_a_good_folder_opens(folder):
    m = ModelFolder.open(folder)
    assert m.onnx == folder / "model.onnx"
    assert m.places is not None and len(m.places) == len(m.cells)
    assert m.preprocess.input_size == 32
    assert missing_files(folder) == []


def test_missing_files_are_named(folder):
    (folder / CELLS_FILE).unlink()
    assert missing_files(folder) == [CELLS_FILE]
    with pytest.raises(ModelError, match=r"cells\.json is missing"):
        ModelFolder.open(folder)
    shutil.copy(folder / PREPROCESS_FILE, folder / CELLS_FILE)  # keep the test honest below
    (folder / PREPROCESS_FILE).unlink()
    with pytest.raises(ModelError, match=r"preprocess\.json is missing"):
        model_folder.read_preprocess(folder / PREPROCESS_FILE)
    for name in VARIANTS.values():
        (folder / name).unlink()
    assert "model.onnx or model.browser.onnx" in missing_files(folder)


def test_malformed_cells_json_names_file_and_field(folder):
    _edit(folder / CELLS_FILE, lambda d: d["cells"][2].pop("lat"))
    with pytest.raises(FormatError, match=r"cells\.json: cells\[2\]: field 'lat' is missing"):
        ModelFolder.open(folder)


def test_cells_json_not_json(folder):
    (folder / CELLS_FILE).write_text("{oops")
    with pytest.raises(FormatError, match=r"cells\.json is not valid JSON"):
        ModelFolder.open(folder)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("input_size", "224", r"field 'input_size' must be a whole number"),
        ("resize_size", 2.5, r"field 'resize_size' must be a whole number"),
        ("mean", [0.5, 0.5], r"field 'mean' must be a list of 3 numbers"),
        ("std", [0.5, 0.0, 0.5], r"field 'std' must be > 0"),
        ("interpolation", "cubic", r"field 'interpolation' must be one of"),
        ("crop", 3, r"field 'crop' must be a string"),
        ("input_size", 999, r"fields 'input_size' and 'resize_size'"),
    ],
)
def test_malformed_preprocess_json_names_file_and_field(folder, field, value, message):
    _edit(folder / PREPROCESS_FILE, lambda d: d.update({field: value}))
    with pytest.raises(FormatError, match=message) as err:
        ModelFolder.open(folder)
    assert str(folder / PREPROCESS_FILE) in str(err.value)


def test_preprocess_round_trip(tmp_path):
    cfg = PreprocessConfig(input_size=48, resize_size=52, mean=(0.1, 0.2, 0.3))
    cfg.save(tmp_path / "p.json")
    assert PreprocessConfig.load(tmp_path / "p.json") == cfg


def test_model_error_is_one_class():
    from img2loc.evaluation.models import ModelError as EvalModelError
    from img2loc.inference.predictor import ModelError as PredictorModelError

    assert EvalModelError is ModelError is PredictorModelError
    assert issubclass(ModelError, Img2locError) and issubclass(ModelError, ValueError)


def _predict(model: Path, photo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXE), "predict", "--model", str(model), str(photo)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("file", "change", "expect"),
    [
        (
            CELLS_FILE,
            lambda d: d["cells"][0].pop("token"),
            r"cells\.json: cells\[0\]: field 'token'",
        ),
        (
            PREPROCESS_FILE,
            lambda d: d.update(input_size="224"),
            r"preprocess\.json: field 'input_size'",
        ),
    ],
)
def test_cli_predict_on_a_malformed_folder(folder, tmp_path, file, change, expect):
    import re

    import numpy as np

    from tests.inference.conftest import photo

    img = tmp_path / "photo.jpg"
    img.write_bytes(photo(np.random.default_rng(0)))
    _edit(folder / file, change)
    line = _one_error_line(_predict(folder, img))
    assert re.search(expect, line), line


def test_cli_predict_on_a_folder_missing_a_file(folder, tmp_path):
    (folder / CELLS_FILE).unlink()
    line = _one_error_line(_predict(folder, tmp_path / "photo.jpg"))
    assert "cells.json is missing" in line


def test_the_web_app_fetches_only_files_the_model_folder_names():
    """web/src/model.js loads a model folder by name: those names must be the ones here."""
    import re

    js = Path(__file__).resolve().parents[2] / "web" / "src" / "model.js"
    if not js.is_file():
        pytest.skip("web sources not in this checkout")
    named = set(re.findall(r"[\w.]+\.(?:onnx|json)(?=['`])", js.read_text()))
    assert named, "the test no longer finds the file names in model.js"
    assert named <= BROWSER_FILES, named - BROWSER_FILES
    assert {CELLS_FILE, PREPROCESS_FILE, *VARIANTS.values()} <= named


def test_eval_names_the_malformed_file(folder):
    from img2loc.evaluation.models import load_model

    _edit(folder / CELLS_FILE, lambda d: d["cells"][1].update(lon=500))
    with pytest.raises(ModelError, match=r"cells\.json: cells\[1\]: field 'lon' must be a number"):
        load_model(folder)
