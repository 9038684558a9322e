"""Several views of one place: aggregation, Predictor.predict_views, `predict --views`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from img2loc import Predictor
from img2loc.geo.views import combine_views, view_values, views_to_probs
from img2loc.inference.images import ImageBytes
from tests.conftest import run
from tests.inference.conftest import photo


def test_combine_views():
    p = np.array([[0.9, 0.1, 0.5], [0.1, 0.1, 0.5]])
    assert combine_views(p, "mean") == pytest.approx([0.5, 0.1, 0.5])
    # product = geometric mean: a cell one view rules out stays unlikely
    assert combine_views(p, "product") == pytest.approx([0.3, 0.1, 0.5])
    assert combine_views(p[:1], "product") == pytest.approx(p[0])
    s = view_values(p, "product").sum(axis=0, keepdims=True)
    assert views_to_probs(s, [2], "product")[0] == pytest.approx([0.3, 0.1, 0.5])
    with pytest.raises(ValueError, match="aggregate"):
        combine_views(p, "max")
    with pytest.raises(ValueError):
        combine_views(np.zeros((0, 3)), "mean")


@pytest.fixture(scope="module")
def views(tmp_path_factory):
    d = tmp_path_factory.mktemp("views")
    rng = np.random.default_rng(11)
    paths = []
    for k in range(3):
        p = d / f"v{k}.jpg"
        p.write_bytes(photo(rng, size=(80, 60)))
        paths.append(p)
    return paths


@pytest.mark.parametrize("how", ["mean", "product"])
def test_predict_views_combines_probabilities(model_dir, views, how):
    p = Predictor.load(model_dir)
    r = p.predict_views([str(v) for v in views], top_k=3, aggregate=how)
    assert r.ok and r.n_views == 3 and r.views == [str(v) for v in views]
    assert r.image == f"{views[0]} +2" and r.view_errors == []
    probs = p.probabilities([str(v) for v in views])
    [(lat, lon, _, conf, top)] = p.results(combine_views(probs, how)[None].astype(np.float32), 3)
    assert (r.lat, r.lon, r.confidence) == pytest.approx((lat, lon, conf))
    assert [t.cell for t in r.top] == [t.cell for t in top]
    # score-optimal decoding works on the combined place too
    s = p.predict_views([str(v) for v in views], decode="score", aggregate=how)
    assert s.ok and -90 <= s.lat <= 90


def test_predict_views_bad_views(model_dir, views, tmp_path):
    p = Predictor.load(model_dir)
    bad = ImageBytes("bad.jpg", b"<html>404</html>")
    r = p.predict_views([str(views[0]), bad, str(tmp_path / "nope.jpg")], name="place")
    assert r.ok and r.image == "place" and r.n_views == 1 and len(r.view_errors) == 2
    assert "HTML" in r.view_errors[0] and "no such file" in r.view_errors[1]
    one = p.predict(str(views[0]))
    assert (r.lat, r.lon) == pytest.approx((one.lat, one.lon))
    none = p.predict_views([bad])
    assert not none.ok and "no readable view" in none.error and none.n_views == 0
    assert not p.predict_views([]).ok
    with pytest.raises(ValueError):
        p.predict_views([str(views[0])], aggregate="max")


def test_cli_predict_views(model_dir, views, tmp_path):
    args = ["predict", "--model", str(model_dir), "--views", *map(str, views)]
    [rec] = json.loads(run(*args, "--json", "--aggregate", "product").stdout)
    assert len(rec["views"]) == 3 and rec["view_errors"] == [] and rec["error"] is None
    table = run(*args, str(tmp_path / "nope.jpg"), "--decode", "score").stdout
    assert "views=3" in table and "unreadable views" in table and "1 located" in table
    bad = run(*args, "--aggregate", "max", check=False)
    assert bad.returncode == 2 and "aggregate" in bad.stderr
    fail = run(
        "predict", "--model", str(model_dir), "--views", str(tmp_path / "x.jpg"), check=False
    )
    assert fail.returncode == 1
