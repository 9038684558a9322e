import numpy as np
import pytest

from img2loc.geo import CellSet, decode, leaf_distribution, s2
from img2loc.geo.decode import best_constant, decode_seed, prior_constant
from img2loc.geo.distance import geoguessr_score, haversine_km


@pytest.fixture
def tree() -> CellSet:
    """Root A (level 2) with children A1, A2; A1 has children A1a, A1b; root B alone."""
    pa = s2.parent_ids(s2.leaf_ids(48.85, 2.35), 2)[0]
    a_kids = [
        int(pa) - int(s2.lsb_for_level(2)) + int(s2.lsb_for_level(3)) * (2 * k + 1)
        for k in range(4)
    ]
    a1, a2 = a_kids[0], a_kids[1]
    a1_kids = [
        a1 - int(s2.lsb_for_level(3)) + int(s2.lsb_for_level(4)) * (2 * k + 1) for k in range(4)
    ]
    pb = s2.parent_ids(s2.leaf_ids(-33.9, 151.2), 2)[0]
    ids = [int(pa), a1, a2, a1_kids[0], a1_kids[1], int(pb)]
    cells = CellSet(ids)
    assert cells.levels.tolist() == [2, 2, 3, 3, 4, 4]
    return cells


def _idx(cells, cid):
    return int(np.flatnonzero(cells.ids == np.uint64(cid))[0])


def _probs(cells, mapping):
    p = np.zeros(len(cells))
    for cid, v in mapping.items():
        p[_idx(cells, cid)] = v
    return p


def test_tree_structure(tree):
    assert tree.is_leaf.sum() == 4  # A2, A1a, A1b, B
    assert (tree.parent == -1).sum() == 2


def test_seed_rule_deepest_predicted_chain(tree):
    a, b, a1, a2, a1a, a1b = (int(tree.ids[i]) for i in range(6))
    # A, A1, A1b predicted: A1b has two predicted ancestors and wins.
    p = _probs(tree, {a: 0.9, a1: 0.8, a1b: 0.6, a1a: 0.55, b: 0.2})
    assert decode_seed(p, tree)[0] in (_idx(tree, a1a), _idx(tree, a1b))
    # A1a and A1b tie on ancestors, same level -> the more probable one.
    assert decode_seed(p, tree)[0] == _idx(tree, a1b)
    # A1b predicted without its parent A1: the coarser A1 (1 ancestor) ties with A1b (1) -> A1.
    p = _probs(tree, {a: 0.9, a1: 0.2, a1b: 0.7, a2: 0.6})
    got = decode_seed(p, tree)[0]
    assert got == _idx(tree, a2)  # A2 and A1b both have 1 predicted ancestor; A2 is coarser
    # Nothing above threshold -> argmax.
    p = _probs(tree, {b: 0.3, a: 0.1})
    assert decode_seed(p, tree)[0] == _idx(tree, b)


def test_hierarchical_uses_ancestor_products(tree):
    a, b, a1, a2, a1a, a1b = (int(tree.ids[i]) for i in range(6))
    # A2 is the most probable leaf alone, but A1a's chain is stronger overall:
    # A1a: 0.9*0.9*0.7 = 0.567 vs A2: 0.9*0.6 = 0.54 vs B: 0.5.
    p = _probs(tree, {a: 0.9, a1: 0.9, a1a: 0.7, a1b: 0.1, a2: 0.6, b: 0.5})
    idx, lat, lon = decode(p, tree, "hierarchical")
    assert idx[0] == _idx(tree, a1a)
    assert lat[0] == tree.center_lat[idx[0]] and lon[0] == tree.center_lon[idx[0]]
    leaves, dist = leaf_distribution(p, tree)
    assert dist.shape == (1, 4) and dist.sum() == pytest.approx(1)
    expected = np.array([0.9 * 0.6, 0.9 * 0.9 * 0.7, 0.9 * 0.9 * 0.1, 0.5])
    order = [_idx(tree, c) for c in (a2, a1a, a1b, b)]
    got = dist[0][[list(leaves).index(o) for o in order]]
    assert np.allclose(got, expected / expected.sum())


def test_decode_batch_and_errors(tree):
    p = np.random.default_rng(0).uniform(size=(7, len(tree)))
    for rule in ("seed", "hierarchical"):
        idx, lat, lon = decode(p, tree, rule)
        assert idx.shape == lat.shape == lon.shape == (7,)
    with pytest.raises(ValueError, match="unknown decoding rule"):
        decode(p, tree, "nope")
    with pytest.raises(ValueError, match="shape"):
        decode(p[:, :3], tree)


def _two_leaf_cells() -> CellSet:
    """Two far-apart level-5 leaves (Paris, Berlin) under no common parent."""
    a = s2.parent_ids(s2.leaf_ids(48.85, 2.35), 5)[0]
    b = s2.parent_ids(s2.leaf_ids(52.52, 13.40), 5)[0]
    return CellSet([int(a), int(b)])


def _brute_force_best(dist, leaf_lat, leaf_lon):
    """Expected score maximised over a fine global grid (slow, obviously right)."""
    from img2loc.geo.distance import geoguessr_score, haversine_km

    glat, glon = np.meshgrid(np.arange(-89.75, 90, 0.5), np.arange(-180, 180, 0.5), indexing="ij")
    d = haversine_km(glat.ravel()[:, None], glon.ravel()[:, None], leaf_lat, leaf_lon)
    es = (geoguessr_score(d) * dist).sum(axis=1)
    return es.max()


def test_score_rule_hedges_between_regions():
    from img2loc.geo.decode import decode_score, destination, expected_score, score_optimal

    # The model spreads its belief over six regions on a 400 km ring around Kansas:
    # the score-optimal guess is near the ring's middle, which no region's centre is.
    lat0, lon0 = np.array([38.5]), np.array([-98.0])
    ring = [destination(lat0, lon0, 60.0 * k, 400.0) for k in range(6)]
    ids = np.unique([s2.parent_ids(s2.leaf_ids(a, b), 8)[0] for a, b in ring])
    cells = CellSet(ids)
    assert len(cells) == 6
    p = np.full((1, 6), 0.9)
    lat, lon, es = score_optimal(p, cells)
    assert haversine_km_pair(lat[0], lon[0], lat0[0], lon0[0]) < 120
    dist = np.full((1, 6), 1 / 6)
    at_centres = expected_score(
        cells.center_lat[None],
        cells.center_lon[None],
        dist,
        cells.center_lat[None],
        cells.center_lon[None],
    )
    assert es[0] > at_centres.max() + 100  # worth points, not a rounding error
    idx, la, lo = decode_score(p, cells)
    assert 0 <= idx[0] < 6 and la[0] == lat[0] and lo[0] == lon[0]


def test_score_rule_picks_a_city_over_the_midpoint_of_two():
    from img2loc.geo.decode import score_optimal

    # With two far point masses the exponential is convex along the line between them:
    # guessing one of them beats the midpoint.
    cells = _two_leaf_cells()
    lat, lon, _ = score_optimal(np.array([[0.9, 0.9]]), cells)
    d = [
        haversine_km_pair(lat[0], lon[0], cells.center_lat[i], cells.center_lon[i]) for i in (0, 1)
    ]
    assert min(d) < 30


def test_score_rule_matches_brute_force_on_random_distributions():
    from img2loc.geo.decode import leaf_distribution, score_optimal

    rng = np.random.default_rng(0)
    lat = rng.uniform(-60, 70, 40)
    lon = rng.uniform(-180, 180, 40)
    cells = CellSet(np.unique(s2.parent_ids(s2.leaf_ids(lat, lon), 4)))
    for _ in range(3):
        p = rng.uniform(0, 1, (1, len(cells))) ** 6
        leaves, dist = leaf_distribution(p, cells)
        _, _, es = score_optimal(p, cells, top_leaves=len(leaves))
        best = _brute_force_best(dist[0], cells.center_lat[leaves], cells.center_lon[leaves])
        # Candidates + refinement land within 0.5% of the exhaustive 0.5-degree grid.
        assert es[0] >= best * 0.995


def test_score_rule_is_confident_guess_when_model_is_sure():
    cells = _two_leaf_cells()
    idx, lat, lon = decode(np.array([[0.999, 1e-6]]), cells, "score")
    assert idx[0] == 0
    assert haversine_km_pair(lat[0], lon[0], cells.center_lat[0], cells.center_lon[0]) < 30


def haversine_km_pair(a, b, c, d):
    from img2loc.geo.distance import haversine_km

    return float(haversine_km(a, b, c, d))


def test_best_constant_maximises_the_mean_score(rng):
    # Most photos in Europe, a few in Australia: the best single guess is in Europe, and no
    # point of a coarse grid scores better (the medoid would be pulled towards the middle).
    lat = np.r_[rng.normal(48, 3, 300), rng.normal(-33, 1, 60)]
    lon = np.r_[rng.normal(5, 4, 300), rng.normal(151, 1, 60)]
    blat, blon = best_constant(lat, lon)
    best = geoguessr_score(haversine_km(blat, blon, lat, lon)).mean()
    glat, glon = np.meshgrid(np.arange(-80, 81, 2.0), np.arange(-180, 180, 2.0))
    grid = geoguessr_score(haversine_km(glat.ravel()[:, None], glon.ravel()[:, None], lat, lon))
    assert best >= grid.mean(axis=1).max() - 1.0
    assert haversine_km(blat, blon, 48, 5) < 500
    # Weights move it: the same points with Australia weighted 10x.
    w = np.r_[np.ones(300), np.full(60, 10.0)]
    wlat, _ = best_constant(lat, lon, w)
    assert wlat < 0
    with pytest.raises(ValueError, match="at least one"):
        best_constant([], [])


def test_prior_constant_uses_the_cells_prior(rng):
    lat = np.r_[rng.normal(48, 1, 200), rng.normal(40.7, 0.5, 200)]
    lon = np.r_[rng.normal(2, 1, 200), rng.normal(-74, 0.5, 200)]
    cells = CellSet.build(lat, lon, min_samples=20, max_samples=100)
    assert prior_constant(cells) is None
    # Photos are mostly taken in Asia (not where the training photos are).
    plat = np.r_[rng.normal(35, 1, 3000), rng.normal(48, 1, 500)]
    plon = np.r_[rng.normal(139, 1, 3000), rng.normal(2, 1, 500)]
    with_prior = cells.with_prior(plat, plon, min_samples=100, max_samples=1000)
    c = prior_constant(with_prior)
    assert c is not None and haversine_km(c[0], c[1], 35, 139) < 300


# ---------------------------------------------------------------- the fallback to the prior
def _with_prior(cells: CellSet, leaf_mass: dict[int, float]) -> CellSet:
    """``cells`` with a prior: the given leaf masses, each cell holding its leaves' sum."""
    prior = np.zeros(len(cells))
    for leaf, m in leaf_mass.items():
        for j in cells.chain[_idx(cells, leaf)]:
            if j >= 0:
                prior[j] += m
    cells.prior = prior
    return cells


def test_in_domain_weight_blends_the_leaf_distribution_with_the_prior(tree):
    leaves = tree.ids[tree.is_leaf]
    b = int(leaves[np.argmin(tree.center_lat[tree.is_leaf])])  # root B, near Sydney
    others = [int(x) for x in leaves if int(x) != b]
    cells = _with_prior(tree, {b: 0.7, **{o: 0.1 for o in others}})
    p = np.full(len(cells), 0.5)
    p[_idx(cells, b)] = 0.01  # the model rules out the prior's favourite
    rows = np.c_[np.tile(p, (3, 1)), [1.0, 0.5, 0.0]]
    lv, plain = leaf_distribution(p, cells)
    _, dist = leaf_distribution(rows, cells)
    q = cells.prior[lv] / cells.prior[lv].sum()
    np.testing.assert_allclose(dist[0], plain[0])  # keeps everything: the model's own answer
    np.testing.assert_allclose(dist[1], 0.5 * plain[0] + 0.5 * q)
    np.testing.assert_allclose(dist[2], q)  # keeps nothing: the prior
    # Every rule that reads the leaf distribution follows the weight.
    hi = decode(rows, cells, "hierarchical")[0]
    assert hi[0] != _idx(cells, b) and hi[2] == _idx(cells, b)
    _, la, lo = decode(rows, cells, "score")
    ib = _idx(cells, b)
    assert haversine_km(la[2], lo[2], cells.center_lat[ib], cells.center_lon[ib]) < 2000
    assert haversine_km(la[0], lo[0], la[2], lo[2]) > 5000
    # Rows without the weight decode as before; the weight without a prior is ignored.
    np.testing.assert_array_equal(decode(p[None], cells, "score")[0], decode(rows[:1], cells)[0])
    cells.prior = None
    np.testing.assert_allclose(leaf_distribution(rows, cells)[1][2], plain[0])


def test_rows_must_have_the_cells_or_one_more_value(tree):
    with pytest.raises(ValueError, match=r"\(N, 6\) or \(N, 7\)"):
        leaf_distribution(np.zeros((2, 8)), tree)


def test_a_place_keeps_its_views_largest_in_domain_weight():
    from img2loc.geo.views import combine_views

    views = np.array([[0.2, 0.4, 0.1], [0.4, 0.2, 0.9]])  # two cells, then the weight
    np.testing.assert_allclose(combine_views(views, "mean", n_cells=2), [0.3, 0.3, 0.9])
    np.testing.assert_allclose(combine_views(views, "mean"), [0.3, 0.3, 0.5])  # all columns
