"""Evaluation figures on hand-made numbers with known answers."""

import numpy as np
import pytest

from img2loc.evaluation.metrics import (
    aggregate_views,
    bootstrap_ci,
    breakdown,
    confused_pairs,
    f1_from_counts,
    multilabel_counts,
    nearest_rows,
    normalize_rows,
    reliability,
    summarize,
)
from img2loc.geo.distance import geoguessr_score


def test_summarize_known_distances():
    d = [0.0, 10.0, 100.0, 1000.0, 5000.0]
    m = summarize(d)
    assert m["acc_km"] == {"1": 20.0, "25": 40.0, "200": 60.0, "750": 60.0, "2500": 80.0}
    assert m["median_km"] == 100.0
    assert m["mean_km"] == pytest.approx(1222.0)
    assert m["geoguessr_mean"] == pytest.approx(np.mean(5000 * np.exp(-np.array(d) / 1492.7)))
    assert m["n"] == 5
    lo, hi = m["geoguessr_ci95"]
    assert lo <= m["geoguessr_mean"] <= hi


def test_bootstrap_ci_contains_mean_and_shrinks_with_n(rng):
    small, big = rng.exponential(1000, 50), rng.exponential(1000, 5000)
    for x in (small, big):
        lo, hi = bootstrap_ci(x)
        assert lo < x.mean() < hi
    assert np.diff(bootstrap_ci(big)) < np.diff(bootstrap_ci(small))
    assert bootstrap_ci([7.0] * 10) == (7.0, 7.0)
    assert bootstrap_ci(small, seed=3) == bootstrap_ci(small, seed=3)
    assert all(np.isnan(bootstrap_ci([])))


def test_multilabel_f1_known_counts():
    probs = np.array([[0.9, 0.6, 0.1, 0.2], [0.8, 0.4, 0.7, 0.5]])
    targets = np.array([[1, 1, 0, 0], [1, 0, 0, 1]])
    # Row 0: tp 2. Row 1: tp 2 (cells 0, 3), fp 1 (cell 2). 0.5 counts as predicted.
    counts = multilabel_counts(probs, targets)
    assert counts.tolist() == [4, 1, 0]
    assert f1_from_counts(counts) == pytest.approx(2 * 4 / (2 * 4 + 1))
    assert np.isnan(f1_from_counts([0, 0, 0]))


def test_aggregate_views_mean_and_product():
    probs = np.array([[0.2, 0.8], [0.9, 0.9], [0.6, 0.4], [0.5, 0.1]])
    groups = np.array(["a", "b", "a", "b"])  # views of a place need not be adjacent
    names, mean = aggregate_views(probs, groups, "mean")
    assert names.tolist() == ["a", "b"]
    np.testing.assert_allclose(mean, [[0.4, 0.6], [0.7, 0.5]])
    _, prod = aggregate_views(probs, groups, "product")
    np.testing.assert_allclose(prod, np.sqrt([[0.2 * 0.6, 0.8 * 0.4], [0.9 * 0.5, 0.9 * 0.1]]))
    with pytest.raises(ValueError, match="aggregate"):
        aggregate_views(probs, groups, "max")


def test_nearest_rows_uses_cosine_similarity():
    index = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    queries = np.array([[10.0, 0.5], [0.1, 3.0], [2.0, 2.1]])
    assert nearest_rows(queries, normalize_rows(index)).tolist() == [0, 1, 2]


def test_confused_pairs_commonest_first():
    true = [0, 0, 0, 1, 1, 2, 2, 2]
    pred = [1, 1, 0, 0, 2, 0, 0, 2]
    # (0->1) x2 of 3 photos in cell 0, (2->0) x2 of 3, (1->0) x1, (1->2) x1.
    assert confused_pairs(true, pred, top=3) == [(0, 1, 2, 3), (2, 0, 2, 3), (1, 0, 1, 2)]
    assert confused_pairs([1, 2], [1, 2]) == []


def test_breakdown_per_label_most_photos_first():
    d = np.array([0.0, 3000.0, 10.0, 20.0])
    out = breakdown(d, ["EU", "AS", "EU", "EU"])
    assert list(out) == ["EU", "AS"]
    assert out["EU"]["n"] == 3 and out["EU"]["acc_km"]["25"] == 100.0
    assert out["AS"]["geoguessr_mean"] == pytest.approx(float(geoguessr_score(3000.0)))


def test_reliability_bins_and_calibration_error():
    # 100 photos shown 90% confidence, 60 of them right; 100 shown 15%, 15 right.
    conf = np.r_[np.full(100, 0.9), np.full(100, 0.15)]
    right = np.r_[np.arange(100) < 60, np.arange(100) < 15]
    r = reliability(conf, right)
    assert r["n"] == 200
    assert r["ece"] == pytest.approx((100 * 30 + 100 * 0) / 200)
    assert r["mean_confidence"] == pytest.approx(52.5)
    assert r["accuracy"] == pytest.approx(37.5)
    full = [b for b in r["bins"] if b["n"]]
    assert [(b["lo"], b["n"]) for b in full] == [(0.1, 100), (0.9, 100)]
    assert full[1]["accuracy"] == pytest.approx(60.0)
    # A calibrated set has no error; confidence 1.0 falls in the last bin.
    cal = reliability(
        np.r_[np.full(10, 1.0), np.full(10, 0.5)], np.r_[[True] * 10, [True] * 5, [False] * 5]
    )
    assert cal["ece"] == pytest.approx(0.0)
    assert cal["bins"][-1]["n"] == 10
    assert reliability([], [])["ece"] is None


def test_paired_bootstrap_resamples_places():
    from img2loc.evaluation.metrics import paired_bootstrap

    rng = np.random.default_rng(0)
    # 40 places of 4 views: within a place the differences agree (one place, one effect).
    effect = np.repeat(rng.normal(10, 30, 40), 4)
    diff = effect + rng.normal(0, 1, effect.size)
    places = np.repeat(np.arange(40), 4)
    by_place = paired_bootstrap(diff, places)
    by_photo = paired_bootstrap(diff)
    assert by_place["units"] == 40 and by_photo["units"] == 160 and by_place["n"] == 160
    assert by_place["mean"] == pytest.approx(diff.mean())
    lo, hi = by_place["ci"]
    assert lo < diff.mean() < hi
    # Views of one place are not independent: the honest interval is about twice as wide.
    assert (hi - lo) > 1.6 * (by_photo["ci"][1] - by_photo["ci"][0])
    nan = paired_bootstrap(np.r_[diff, np.nan], np.r_[places, 99])
    assert nan["n"] == 160 and nan["units"] == 40
    assert paired_bootstrap([])["n"] == 0
