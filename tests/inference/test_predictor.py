"""Predictor: the Python API over a model folder (no torch)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from img2loc import Prediction, Predictor
from img2loc.data.images import ImageError
from img2loc.geo.decode import leaf_distribution
from img2loc.inference.images import BadInput, ImageBytes, load_input, open_input
from img2loc.inference.predictor import DEFAULT_MODEL_DIR, ModelError
from img2loc.inference.preprocess import PreprocessConfig
from tests.conftest import gps_exif
from tests.inference.conftest import FIELDS, SIZE, TOP_FIELDS, bad_corpus, photo


def test_load_and_contract(model_dir):
    p = Predictor.load(model_dir)
    assert p.model_path == model_dir / "model.onnx"
    assert p.preprocess.input_size == SIZE
    x = np.random.default_rng(0).normal(size=(5, 3, SIZE, SIZE)).astype(np.float32)
    probs = p.run(x)
    assert probs.shape == (5, len(p.cells)) and probs.dtype == np.float32
    assert ((probs >= 0) & (probs <= 1)).all()
    p.batch_size = 2  # chunked runs give the same answer
    np.testing.assert_allclose(p.run(x), probs, atol=1e-6)
    with pytest.raises(ValueError, match="expected a float32 batch"):
        p.run(x[:, :, :8])
    assert len(p.places) == len(p.cells) and all(p.places)


def test_every_input_kind_gives_the_same_answer(model_dir, tmp_path):
    rng = np.random.default_rng(1)
    data = photo(rng, (90, 70), fmt="PNG")
    path = tmp_path / "a.png"
    path.write_bytes(data)
    im = Image.open(io.BytesIO(data))
    p = Predictor.load(model_dir)
    inputs = [path, str(path), data, ImageBytes("x", data), im, np.asarray(im.convert("RGB"))]
    probs = p.probabilities(inputs)
    assert probs.shape == (len(inputs), len(p.cells))
    np.testing.assert_allclose(probs, np.repeat(probs[:1], len(inputs), 0), atol=1e-6)
    # float arrays in [0, 1] and greyscale arrays are accepted too
    grey = np.asarray(im.convert("L"))
    assert p.probabilities([np.asarray(im.convert("RGB")) / 255.0, grey]).shape[0] == 2
    with pytest.raises(ImageError, match="not an image"):
        p.probabilities([np.zeros((4, 4, 7), np.uint8)])
    with pytest.raises(ImageError, match="empty file"):
        p.probabilities([b""])


def test_predict_records(model_dir, tmp_path):
    rng = np.random.default_rng(2)
    f = tmp_path / "gps.jpg"
    f.write_bytes(photo(rng, exif=gps_exif(48.8584, 2.2945)))
    p = Predictor.load(model_dir)
    r = p.predict(f, top_k=3)
    assert isinstance(r, Prediction) and r.ok
    d = r.to_dict()
    assert set(d) == FIELDS and d["error"] is None
    assert d["exif"] == pytest.approx({"lat": 48.8584, "lon": 2.2945}, abs=1e-4)
    assert d["error_km"] > 0 and isinstance(d["place"], str) and d["place"]
    assert len(d["top"]) == 3 and all(set(t) == TOP_FIELDS for t in d["top"])
    probs = [t["probability"] for t in d["top"]]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
    # hierarchical decoding guesses the most probable finest cell
    assert (d["lat"], d["lon"], d["confidence"]) == (
        d["top"][0]["lat"],
        d["top"][0]["lon"],
        d["top"][0]["probability"],
    )
    s = p.predict([f, f], top_k=1, decode="seed")
    assert isinstance(s, list) and len(s) == 2 and 0 < (s[0].confidence or 0) <= 1
    with pytest.raises(ValueError, match="unknown decoding rule"):
        p.predict(f, decode="nearest")
    plain = p.predict(photo(rng))
    assert plain.exif is None and plain.error_km is None


def test_bad_inputs_are_answered_and_the_batch_goes_on(model_dir, tmp_path):
    expected = bad_corpus(tmp_path / "bad", np.random.default_rng(3))
    names = sorted(expected)
    paths = [tmp_path / "bad" / n for n in names]
    p = Predictor.load(model_dir, batch_size=3)
    res = p.predict([*paths, tmp_path / "missing.jpg", BadInput("x/*.jpg", "no file matches")])
    assert [r.image for r in res[: len(names)]] == [str(q) for q in paths]
    for name, r in zip(names, res, strict=False):
        why = expected[name]
        if why is None:
            assert r.ok and r.lat is not None and r.top, (name, r.error)
        else:
            assert r.error is not None and why in r.error and name in r.error, (name, r.error)
            assert r.to_dict()["lat"] is None and r.top == []
    assert "no such file" in (res[-2].error or "") and "no file matches" in (res[-1].error or "")


def test_big_images_are_decoded_small():
    def encoded(size: tuple[int, int], fmt: str) -> bytes:
        buf = io.BytesIO()
        Image.linear_gradient("L").convert("RGB").resize(size).save(buf, fmt)
        return buf.getvalue()

    im = open_input(encoded((4000, 3000), "JPEG"), 256)  # 12 MP
    assert im.size == (500, 375)  # JPEG draft: decoded at 1/8 scale
    cfg = PreprocessConfig(input_size=224, resize_size=256)
    x = load_input(encoded((2000, 1200), "PNG"), cfg).x  # no draft for PNG: box-reduced first
    assert x.shape == (3, 224, 224) and np.isfinite(x).all()


def test_variants_and_model_errors(model_dir, tmp_path):
    fp32 = Predictor.load(model_dir, "fp32")
    small = Predictor.load(model_dir, "browser")
    assert small.model_path is not None and small.model_path.name == "model.browser.onnx"
    x = np.random.default_rng(5).normal(size=(4, 3, SIZE, SIZE)).astype(np.float32)
    np.testing.assert_allclose(small.run(x), fp32.run(x), atol=0.02)
    assert Predictor.load(model_dir / "model.browser.onnx").model_path == small.model_path
    assert DEFAULT_MODEL_DIR.parts[-3:] == ("img2loc", "assets", "default_model")
    if not DEFAULT_MODEL_DIR.exists():
        with pytest.raises(ModelError, match="--model"):
            Predictor.load()
    with pytest.raises(ModelError, match="not found"):
        Predictor.load(tmp_path / "nope")
    with pytest.raises(ModelError, match="variant"):
        Predictor.load(model_dir, "int4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="model folder"):
        Predictor.load(tmp_path / "empty")


def test_confidence_is_the_mass_inside_the_guessed_cell(model_dir):
    p = Predictor.load(model_dir)
    cells = p.cells
    parent = int(np.flatnonzero(~cells.is_leaf)[0])
    probs = np.full((1, len(cells)), 0.01, np.float32)
    probs[0, parent] = 0.9  # the only cell over 0.5: the seed rule guesses it
    [(lat, lon, idx, conf, top)] = p.results(probs, top_k=2, rule="seed")
    assert idx == parent and (lat, lon) == (cells.center_lat[parent], cells.center_lon[parent])
    leaves, dist = leaf_distribution(probs, cells)
    inside = [i for i, c in enumerate(leaves) if parent in cells.chain[c]]
    assert conf == pytest.approx(dist[0, inside].sum()) and 0 < conf < 1
    assert [t.probability for t in top] == pytest.approx(sorted(dist[0], reverse=True)[:2])
