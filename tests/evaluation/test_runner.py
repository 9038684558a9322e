"""The streaming pass and the report on fake models whose answers are known."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from img2loc.evaluation import EvalOptions, pipeline, run_evaluation
from img2loc.evaluation.figures import compute_figures
from img2loc.evaluation.metrics import aggregate_views, multilabel_counts
from img2loc.evaluation.report import summary_lines, write_report
from img2loc.evaluation.runner import Collector
from img2loc.geo import DECODERS, CellSet, decode, haversine_km
from tests.evaluation.conftest import ColourModel, EchoModel, chain_set, grey_jpeg


def test_streamed_views_equal_aggregating_everything(place_cells, rng):
    cells = place_cells
    n = 10
    codes = np.array([0, 0, 0, 1, 2, 2, 3, 3, 3, 3])
    probs = rng.uniform(0, 1, (n, len(cells))).astype(np.float32)
    lat = cells.center_lat[cells.is_leaf][codes % 4]
    lon = cells.center_lon[cells.is_leaf][codes % 4]
    for how in ("mean", "product"):
        col = Collector(EchoModel(cells), lat, lon, "hierarchical", codes, how)
        seen = np.array([0, 1, 2, 3, 5, 6, 7, 8, 9])  # row 4 "failed to decode"
        for part in np.array_split(seen, 4):  # batch edges cut through places
            col.add(part, probs[part])
        out = col.finish()
        _, agg = aggregate_views(probs[seen], codes[seen], how)
        for rule in DECODERS:
            assert out.group_cell[rule].tolist() == decode(agg, cells, rule)[0].tolist()
            assert out.cell[rule][seen].tolist() == decode(probs[seen], cells, rule)[0].tolist()
            assert out.cell[rule][4] == -1
        assert out.group_views.tolist() == [3, 1, 1, 4]
        first = np.array([0, 3, 5, 6])
        want = multilabel_counts(agg, cells.multi_hot(lat[first], lon[first]))
        assert out.group_f1_counts.tolist() == want.tolist()
        assert (
            out.f1_counts.tolist()
            == multilabel_counts(probs[seen], cells.multi_hot(lat[seen], lon[seen])).tolist()
        )


def test_streamed_views_keep_the_largest_in_domain_weight(place_cells, rng):
    cells = place_cells
    cells.prior = np.where(cells.is_leaf, 1.0 / cells.is_leaf.sum(), 0.0)
    codes = np.array([0, 0, 0, 1, 2, 2, 3, 3, 3, 3])
    probs = rng.uniform(0, 1, (10, len(cells) + 1)).astype(np.float32)
    lat = cells.center_lat[cells.is_leaf][codes % 4]
    lon = cells.center_lon[cells.is_leaf][codes % 4]
    col = Collector(EchoModel(cells), lat, lon, "score", codes, "mean")
    for part in np.array_split(np.arange(10), 3):  # batch edges cut through places
        col.add(part, probs[part])
    out = col.finish()
    np.testing.assert_allclose(out.in_domain, probs[:, -1])
    _, agg = aggregate_views(probs[:, :-1], codes, "mean")
    best = np.array([probs[codes == g, -1].max() for g in range(4)])
    want = decode(np.c_[agg, best], cells, "score")
    assert out.group_cell["score"].tolist() == want[0].tolist()
    np.testing.assert_allclose(out.group_point["score"][0], want[1])
    # The weight moves the answer: with the mean weight instead, some place differs.
    mean_w = np.array([probs[codes == g, -1].mean() for g in range(4)])
    assert decode(np.c_[agg, mean_w], cells, "score")[1].tolist() != want[1].tolist()


@pytest.fixture
def colour_data(tmp_path, place_cells):
    """Evaluation + training CSVs whose photos are grey levels naming the leaf to guess."""
    cells = place_cells
    leaves = np.flatnonzero(cells.is_leaf)
    c = np.c_[cells.center_lat[leaves], cells.center_lon[leaves]]
    root = tmp_path / "colour"
    (root / "images").mkdir(parents=True)
    rows = []
    # place p0: two views of leaf 0, guessed right; p1: two views at leaf 3 guessed as its
    # sibling leaf 2; p2: one view at leaf 2 guessed right and one unreadable file.
    for name, at, guess in [
        ("p0a", 0, 0),
        ("p0b", 0, 0),
        ("p1a", 3, 2),
        ("p1b", 3, 2),
        ("p2a", 2, 2),
    ]:
        (root / "images" / f"{name}.jpg").write_bytes(grey_jpeg(guess))
        rows.append((f"images/{name}.jpg", *c[at], name[:2]))
    (root / "images" / "p2b.jpg").write_text("<html>not an image</html>")
    rows.append(("images/p2b.jpg", *c[2], "p2"))
    rows.append(("images/missing.jpg", *c[1], "p3"))
    cols = ["image", "latitude", "longitude", "location_id"]
    pd.DataFrame(rows, columns=cols).to_csv(root / "locations.csv", index=False)
    train = []
    for k in range(3):
        (root / "images" / f"t{k}.jpg").write_bytes(grey_jpeg(k))
        train.append((f"images/t{k}.jpg", *c[k], f"t{k}"))
    pd.DataFrame(train, columns=cols).to_csv(root / "train.csv", index=False)
    return root


def test_report_on_known_answers(colour_data, place_cells, tmp_path, monkeypatch):
    cells = place_cells
    monkeypatch.setattr(pipeline, "load_model", lambda spec: ColourModel(cells, str(spec)))
    opts = EvalOptions(
        group_by="location_id",
        batch_size=3,
        workers=2,
        sheet_size=2,
        train_data=[colour_data / "train.csv"],
        progress=False,
    )
    ev = run_evaluation("colour", [colour_data / "locations.csv"], ["other"], opts)
    rep = write_report(ev, tmp_path / "report")

    leaves = np.flatnonzero(cells.is_leaf)
    km = float(
        haversine_km(
            cells.center_lat[leaves[3]],
            cells.center_lon[leaves[3]],
            cells.center_lat[leaves[2]],
            cells.center_lon[leaves[2]],
        )
    )
    d = np.array([0, 0, km, km, 0])
    assert rep["n"] == 5 and rep["n_photos"] == 6
    assert rep["n_errors"] == 1 and rep["n_skipped_inputs"] == 1
    assert rep["acc_km"]["1"] == pytest.approx(60.0)
    assert rep["median_km"] == 0.0
    assert rep["mean_km"] == pytest.approx(2 * km / 5)
    assert rep["geoguessr_mean"] == pytest.approx(np.mean(5000 * np.exp(-d / 1492.7)))
    lo, hi = rep["geoguessr_ci95"]
    assert lo <= rep["geoguessr_mean"] <= hi
    # F1 over cell sets: right guesses hit their whole chain; wrong ones share ancestors.
    a, b = chain_set(cells, leaves[3]), chain_set(cells, leaves[2])
    assert len(a & b) == 2  # siblings: two shared ancestors
    tp = 2 * len(chain_set(cells, leaves[0])) + len(b) + 2 * len(a & b)
    fp, fn = 2 * len(b - a), 2 * len(a - b)
    assert rep["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert set(rep["decoders"]) == set(DECODERS)
    assert rep["decoders"]["seed"]["acc_km"]["1"] == pytest.approx(60.0)

    mv = rep["multiview"]
    assert mv["n_locations"] == 3 and mv["views_per_location"] == pytest.approx(5 / 3)
    assert mv["acc_km"]["1"] == pytest.approx(200 / 3)
    b = rep["baselines"]
    assert b["oracle"]["acc_km"]["1"] == 100.0
    cal = rep["calibration"]
    assert cal["n"] == rep["n"] and sum(x["n"] for x in cal["bins"]) == rep["n"]
    assert 0.0 <= cal["ece"] <= 100.0
    assert b["constant"]["reference"] == "best single guess for the training photos"
    assert "--prior" in b["constant_prior"]["skipped"]
    nn = b["nearest_neighbour"]
    assert nn["n_train"] == 3 and nn["acc_km"]["1"] == pytest.approx(60.0)
    assert rep["train_data"] == {
        "data": [str(colour_data / "train.csv")],
        "split": "train",
        "n": 3,
        "overlap": 0,
    }
    assert [c["name"].split("/")[-1] for c in rep["compare"]] == ["colour", "other"]
    assert rep["compare"][1]["acc_km"] == rep["acc_km"]
    # The same answers: a paired difference of exactly zero, resampled over the 3 places.
    paired = rep["compare"][1]["paired"]
    assert paired["single"] == {"n": 5, "units": 3, "mean": 0.0, "ci": [0.0, 0.0]}
    assert paired["per_place"]["mean"] == 0.0 and "paired" not in rep["compare"][0]
    assert rep["confused_cells"][0]["count"] == 2
    assert rep["by_source"]["colour"]["n"] == 5

    out = tmp_path / "report"
    assert json.loads((out / "report.json").read_text())["acc_km"] == rep["acc_km"]
    pred = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    assert len(pred) == 6
    bad = pred[pred["error"] != ""]
    assert bad["image"].str.endswith("p2b.jpg").all() and len(bad) == 1
    assert "HTML" in bad["error"].iat[0]
    assert pd.read_csv(out / "predictions_by_location.csv")["n_views"].tolist() == [2, 2, 1]
    errors = pd.read_csv(out / "errors.csv")
    assert errors["image"].str.contains("missing.jpg|p2b.jpg").all() and len(errors) == 2
    md = (out / "report.md").read_text()
    for title in (
        "next to the baselines",
        "Decoding rules",
        "Per place",
        "Models compared",
        "Paired GeoGuessr difference",
        "By continent",
        "Most-confused cells",
        "error_cdf.png",
    ):
        assert title in md
    for png in ("error_cdf", "map", "continents", "reliability", "worst", "best"):
        with Image.open(out / f"{png}.png") as im:
            assert im.format == "PNG" and im.width > 300
    assert any("baseline nearest_neighbour" in line for line in summary_lines(rep))


def test_without_training_data_the_constant_is_the_eval_best_guess(
    colour_data, place_cells, tmp_path, monkeypatch
):
    monkeypatch.setattr(pipeline, "load_model", lambda spec: ColourModel(place_cells))
    opts = EvalOptions(progress=False, sheet_size=0)
    ev = run_evaluation(None, [colour_data / "locations.csv"], options=opts)
    rep = write_report(ev, tmp_path / "r")
    assert "for the evaluation photos" in rep["baselines"]["constant"]["reference"]
    assert "--train-data" in rep["baselines"]["nearest_neighbour"]["skipped"]
    assert rep["multiview"] is None
    assert not (tmp_path / "r" / "worst.png").exists()


def test_places_of_different_data_never_merge(colour_data, place_cells, tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "load_model", lambda spec: ColourModel(place_cells))
    copy = tmp_path / "elsewhere" / "colour" / "locations.csv"  # same source name
    copy.parent.mkdir(parents=True)
    copy.write_text((colour_data / "locations.csv").read_text())
    (copy.parent / "images").symlink_to(colour_data / "images")
    opts = EvalOptions(progress=False, sheet_size=0, group_by="location_id")
    ev = run_evaluation(None, [colour_data / "locations.csv", copy], options=opts)
    assert set(ev.table["location_id"]) == {"colour:p0", "colour:p1", "colour:p2"}
    assert ev.groups is not None and len(ev.groups) == 6


def test_training_photos_among_the_evaluated_ones_are_flagged(
    colour_data, place_cells, tmp_path, monkeypatch
):
    monkeypatch.setattr(pipeline, "load_model", lambda spec: ColourModel(place_cells))
    data = [colour_data / "locations.csv"]
    opts = EvalOptions(progress=False, sheet_size=0, train_data=data)
    rep = write_report(run_evaluation(None, data, options=opts), tmp_path / "r")
    assert rep["train_data"]["overlap"] == 6
    assert summary_lines(rep)[-1].startswith("warning: 6 evaluated photo(s)")
    assert "**Warning:**" in (tmp_path / "r" / "report.md").read_text()


def test_report_computes_each_figure_once(colour_data, place_cells, tmp_path, monkeypatch):
    cells = place_cells
    monkeypatch.setattr(pipeline, "load_model", lambda spec: ColourModel(cells, str(spec)))
    opts = EvalOptions(group_by="location_id", batch_size=3, workers=2, progress=False)
    ev = run_evaluation("colour", [colour_data / "locations.csv"], ["other"], opts)
    calls: dict[str, int] = {"geocode": 0, "nearest_point": 0, "nearest": 0}

    def counted(name, fn):
        def wrapper(*a, **k):
            calls[name] += 1
            return fn(*a, **k)

        return wrapper

    monkeypatch.setattr(pipeline, "reverse_geocode", counted("geocode", pipeline.reverse_geocode))
    for name in ("nearest_point", "nearest"):
        monkeypatch.setattr(CellSet, name, counted(name, getattr(CellSet, name)))
    fig = compute_figures(ev)
    # One geocoding call names every place; the oracle looks up each model's photos and
    # places once; the true cells of the confused-cells table once.
    assert calls == {"geocode": 1, "nearest_point": 4, "nearest": 1}
    rep = write_report(ev, tmp_path / "report")
    assert rep["baselines"]["oracle"] == fig.models[0].baselines["oracle"]
    assert rep["confused_cells"] == fig.confused_cells
    assert [s.name for s in fig.sheets] == ["worst", "best"]
    assert len(fig.sheets[0].captions) == len(fig.sheets[0].rows) == 5
