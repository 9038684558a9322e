"""A model with an in-domain score: answers unlike the training photos fall back to the prior."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from img2loc import Predictor
from img2loc.geo.distance import haversine_km
from img2loc.inference.model_folder import ModelError
from img2loc.inference.output import write_predictions
from img2loc.inference.predictor import FALLBACK_NOTE
from tests.conftest import run
from tests.inference.conftest import make_model_dir, photo


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("fallback")
    return {
        "plain": make_model_dir(root / "plain"),
        "out": make_model_dir(root / "out", in_domain=0.001),  # unlike every training photo
        "in": make_model_dir(root / "in", in_domain=0.999),  # like the training photos
    }


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(5)
    paths = []
    for i in range(6):
        p = d / f"p{i}.jpg"
        p.write_bytes(photo(rng, (160, 120)))
        paths.append(str(p))
    return paths


def test_out_of_domain_photos_are_answered_from_the_prior(folders, photos):
    p = Predictor.load(folders["out"])
    assert p.has_fallback and p.width == len(p.cells) + 1
    assert p.run(np.zeros((2, 3, 32, 32), np.float32)).shape == (2, len(p.cells) + 1)
    preds = p.predict(photos)
    assert all(r.fallback and r.in_domain is not None and r.in_domain < 0.01 for r in preds)
    # Whatever the photo, the answer is the prior's: near Tokyo, where all its mass sits.
    assert all(haversine_km(r.lat, r.lon, 35.68, 139.69) < 300 for r in preds)
    d = preds[0].to_dict()
    assert d["fallback"] is True and d["note"] == FALLBACK_NOTE and d["in_domain"] < 0.01
    # The model alone answers elsewhere, and differently per photo.
    plain = Predictor.load(folders["plain"]).predict(photos)
    assert not any(r.fallback or r.in_domain is not None for r in plain)
    assert plain[0].to_dict()["note"] is None
    assert max(haversine_km(r.lat, r.lon, 35.68, 139.69) for r in plain) > 1000


def test_in_domain_photos_keep_the_model_answer(folders, photos):
    keep = Predictor.load(folders["in"]).predict(photos)
    plain = Predictor.load(folders["plain"]).predict(photos)
    for a, b in zip(keep, plain, strict=True):
        assert not a.fallback and a.in_domain is not None and a.in_domain > 0.99
        assert haversine_km(a.lat, a.lon, b.lat, b.lon) < 50


def test_views_average_the_weight(folders, photos):
    r = Predictor.load(folders["out"]).predict_views(photos[:3])
    assert r.fallback and r.n_views == 3 and r.in_domain is not None and r.in_domain < 0.01


def test_outputs_say_it_in_words(folders, photos):
    preds = Predictor.load(folders["out"]).predict(photos[:2])
    buf = io.StringIO()
    summary = write_predictions(preds, buf, "table")
    text = buf.getvalue()
    assert text.count(f"fallback: {FALLBACK_NOTE}") == 2 and summary.fallbacks == 2
    assert "2 unlike the training photos: answered from the photo prior" in text
    buf = io.StringIO()
    write_predictions(preds, buf, "csv")
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert rows[0]["fallback"] == "1" and float(rows[0]["in_domain"]) < 0.01
    proc = run("predict", "--model", str(folders["out"]), photos[0], "--json")
    [rec] = json.loads(proc.stdout)
    assert rec["fallback"] is True and rec["note"] == FALLBACK_NOTE


def test_weight_without_a_prior_is_a_one_line_error(tmp_path):
    folder = make_model_dir(tmp_path / "mixed", in_domain=0.5, prior=False)
    with pytest.raises(ModelError, match="no photo prior"):
        Predictor.load(folder)
    proc = run("predict", "--model", str(folder), str(tmp_path), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no photo prior" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
