"""Simulated GeoGuessr games: scheduling, known score gains, and `img2loc geoguessr`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from img2loc.data.tables import TableError
from img2loc.evaluation.geoguessr import (
    Guesses,
    Places,
    decode_rows,
    play_games,
    schedule_games,
    summarize_games,
)
from img2loc.geo.decode import expected_score, leaf_distribution
from tests.conftest import run
from tests.evaluation.conftest import PLACES
from tests.inference.conftest import make_model_dir, photo


def test_schedule_games():
    rng = np.random.default_rng(0)
    s = schedule_games(range(12), games=7, rounds=5, rng=rng)
    assert s.shape == (7, 5)
    assert all(len(set(g)) == 5 for g in s)  # a game never repeats a place
    first = s.ravel()[:10]
    assert len(set(first)) == 10  # no place comes back before the pool is used up
    assert np.array_equal(s, schedule_games(range(12), 7, 5, np.random.default_rng(0)))
    with pytest.raises(TableError, match="at least 5 places"):
        schedule_games(range(3), 1, 5, rng)


def leaf_probs(cells, weights: dict[int, float]) -> np.ndarray:
    """Probabilities whose leaf distribution is ``weights`` (leaf k of PLACES order):
    every parent cell 1, each leaf its weight (the chain product is then the weight)."""
    p = np.ones(len(cells))
    leaves = np.flatnonzero(cells.is_leaf)
    order = [int(cells.nearest(np.array([la]), np.array([lo]))[0]) for la, lo in PLACES]
    p[leaves] = 1e-9
    for k, w in weights.items():
        p[order[k]] = w
    return p


def test_score_optimal_beats_argmax_when_it_should(place_cells):
    """Paris 0.3, Brussels 0.3, Tokyo 0.4: argmax guesses Tokyo (expected ~2,000 points),
    a point between Paris and Brussels expects ~2,500: a known positive gain."""
    cells = place_cells
    probs = leaf_probs(cells, {0: 0.3, 1: 0.3, 2: 0.4})[None]
    guesses = decode_rows(probs, cells)
    leaves, dist = leaf_distribution(probs, cells)
    la, lo = cells.center_lat[leaves], cells.center_lon[leaves]

    def es(rule):
        g = guesses[rule]
        return float(expected_score(g[0][:, None], g[1][:, None], dist, la[None], lo[None])[0, 0])

    arg, opt = es("hierarchical"), es("score")
    assert guesses["hierarchical"][1][0] > 100  # Tokyo
    assert 0 < guesses["score"][1][0] < 10  # western Europe
    assert arg == pytest.approx(2000, abs=30) and opt > arg + 400

    # Simulated games whose truths are drawn from that very distribution show the gain.
    rng = np.random.default_rng(1)
    n_games, rounds = 300, 5
    truth = rng.choice(dist.shape[1], size=n_games * rounds, p=dist[0])
    places = Places(
        pd.DataFrame(),
        la[truth],
        lo[truth],
        [str(i) for i in range(truth.size)],
        [np.array([i]) for i in range(truth.size)],
    )
    one = {
        r: (np.repeat(g[0], truth.size), np.repeat(g[1], truth.size)) for r, g in guesses.items()
    }
    g = Guesses(
        one, one, {i: np.array([i]) for i in range(truth.size)}, np.ones(truth.size, np.int64)
    )
    schedule = np.arange(truth.size).reshape(n_games, rounds)
    res = summarize_games(play_games(schedule, places, g, rng))
    d = res["differences"]["score - hierarchical (1 view)"]
    assert d["ci95"][0] > 0 and d["mean"] == pytest.approx(5 * (opt - arg), rel=0.25)
    assert set(res["players"]) == {"hierarchical/1", "score/1"}
    tot = res["players"]["score/1"]["game_total"]
    assert 0 <= tot["ci95"][0] <= tot["mean"] <= tot["ci95"][1] <= 25_000


def test_more_views_help_when_views_agree(place_cells):
    """Each view is right with probability 0.6 and otherwise scattered: combining four
    views finds the place far more often than one view does."""
    cells = place_cells
    rng = np.random.default_rng(2)
    n_places, views = 60, 4
    truth = rng.integers(0, 4, n_places)
    rows = []
    for t in truth:
        for _ in range(views):
            k = t if rng.random() < 0.6 else int(rng.integers(0, 4))
            rows.append(leaf_probs(cells, {j: 0.9 if j == k else 0.05 for j in range(4)}))
    probs = np.asarray(rows)
    from img2loc.evaluation.geoguessr import place_guesses

    lat, lon = np.array(PLACES)[truth].T
    places = Places(
        pd.DataFrame(),
        lat,
        lon,
        [str(i) for i in range(n_places)],
        [np.arange(i * views, (i + 1) * views) for i in range(n_places)],
    )
    g = place_guesses(
        places,
        {i: probs[i : i + 1] for i in range(len(probs))},
        range(n_places),
        cells,
        views,
        "mean",
        rng,
    )
    assert (g.n_views == views).all()
    schedule = schedule_games(range(n_places), 12, 5, rng)
    res = summarize_games(play_games(schedule, places, g, rng))
    d = res["differences"]["4 views - 1 view (hierarchical)"]
    assert d["ci95"][0] > 0
    assert "score - hierarchical (4 views)" in res["differences"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    pytest.importorskip("onnx")
    return make_model_dir(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def game_csv(tmp_path_factory):
    """12 places x 3 views (location_id), plus one unreadable photo in its own place."""
    d = tmp_path_factory.mktemp("games")
    rng = np.random.default_rng(5)
    rows = []
    for k in range(12):
        lat, lon = float(rng.uniform(-40, 60)), float(rng.uniform(-120, 140))
        for h in range(3):
            name = f"p{k}_{h}.jpg"
            (d / name).write_bytes(photo(rng, size=(64, 48)))
            rows.append((name, lat, lon, h * 120, f"loc{k}"))
    (d / "bad.jpg").write_bytes(b"<html>oops</html>")
    rows.append(("bad.jpg", 10.0, 10.0, 0, "locbad"))
    pd.DataFrame(rows, columns=["image", "latitude", "longitude", "heading", "location_id"]).to_csv(
        d / "locations.csv", index=False
    )
    return d / "locations.csv"


def test_cli_geoguessr(model_dir, game_csv, tmp_path):
    out = tmp_path / "res.json"
    args = ["geoguessr", "--model", str(model_dir), "--data", str(game_csv)]
    proc = run(*args, "--games", "6", "--views", "2", "--seed", "3", "-o", str(out))
    assert "score-optimal" in proc.stdout and "2 views" in proc.stdout
    res = json.loads(out.read_text())
    assert res["games"] == 6 and res["places"] == 13
    assert set(res["players"]) == {"hierarchical/1", "hierarchical/2", "score/1", "score/2"}
    assert res["views_per_place"] == {"2": 12}  # the unreadable place was left out
    assert len(res["photos_failed"]) in (0, 1)
    for p in res["players"].values():
        lo, hi = p["game_total"]["ci95"]
        assert 0 <= lo <= p["game_total"]["mean"] <= hi <= 25_000
    assert all(len(v) == 6 for v in res["game_totals"].values())
    again = run(*args, "--games", "6", "--views", "2", "--seed", "3", "-o", str(out))
    assert again.stdout.splitlines()[3:] == proc.stdout.splitlines()[3:]  # seeded
    bad = run(*args, "--aggregate", "max", check=False)
    assert bad.returncode == 2 and "aggregate" in bad.stderr
    few = run(*args, "--rounds", "20", check=False)
    assert few.returncode == 2 and "at least 20 places" in few.stderr
