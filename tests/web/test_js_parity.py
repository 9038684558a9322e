"""The web app's pure JS (preprocessing, S2, decoding) gives Python's answers, run in Node."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from PIL import Image

from img2loc.geo import CellSet, s2
from img2loc.geo.decode import decode, leaf_distribution
from img2loc.inference.preprocess import PreprocessConfig, preprocess
from tests.web.conftest import b64, run_node


def _img(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    base = np.linspace(rng.uniform(0, 255, 3), rng.uniform(0, 255, 3), h)[:, None, :]
    return np.clip(base + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)


def test_resize_and_reduce_match_pillow_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    cases, want = [], []
    shapes = [(120, 90, 36, 27), (37, 53, 80, 110), (640, 480, 341, 256), (300, 200, 300, 57)]
    for w, h, nw, nh in shapes:
        for interp, mode in [("bicubic", Image.Resampling.BICUBIC), ("bilinear", Image.BILINEAR)]:
            a = _img(rng, w, h)
            cases.append(
                {
                    "data": b64(a.tobytes()),
                    "w": w,
                    "h": h,
                    "nw": nw,
                    "nh": nh,
                    "interpolation": interp,
                }
            )
            want.append(np.asarray(Image.fromarray(a).resize((nw, nh), mode, reducing_gap=None)))
    for w, h, k in [(100, 75, 2), (101, 77, 3), (64, 50, 4), (130, 97, 5), (99, 98, 8)]:
        a = _img(rng, w, h)
        cases.append({"data": b64(a.tobytes()), "w": w, "h": h, "k": k})
        want.append(np.asarray(Image.fromarray(a).reduce(k)))
    got = run_node({"op": "resize", "cases": cases})
    for g, w in zip(got, want, strict=True):
        arr = np.frombuffer(base64.b64decode(g), np.uint8).reshape(w.shape)
        assert np.array_equal(arr, w), f"max diff {np.abs(arr.astype(int) - w).max()}"


def test_preprocess_matches_python() -> None:
    rng = np.random.default_rng(1)
    cfg = PreprocessConfig(input_size=32, resize_size=36)
    from img2loc.inference.images import _reduce

    cases, want = [], []
    for w, h in [(120, 90), (90, 120), (33, 80), (300, 200)]:
        a = _img(rng, w, h)
        cases.append({"data": b64(a.tobytes()), "w": w, "h": h, "jpeg": False})
        want.append(preprocess(_reduce(Image.fromarray(a), cfg.resize_size), cfg))
    got = run_node({"op": "preprocess", "cases": cases, "cfg": cfg.to_dict()})
    for g, w in zip(got, want, strict=True):
        x = np.frombuffer(base64.b64decode(g), np.float32).reshape(w.shape)
        np.testing.assert_array_equal(x, w)


def test_s2_tokens_match_python() -> None:
    rng = np.random.default_rng(2)
    lat, lon = rng.uniform(-90, 90, 300), rng.uniform(-180, 180, 300)
    lat[:4], lon[:4] = [0, 45, -89.9, 90], [0, 45, 179.99, 0]
    pts = [
        [float(a), float(b), int(lv)]
        for a, b, lv in zip(lat, lon, rng.integers(0, 31, 300), strict=True)
    ]
    got = run_node({"op": "s2", "points": pts})
    leaves = s2.leaf_ids(lat, lon)
    want = [
        s2.id_to_token(int(s2.parent_ids(leaves[i : i + 1], p[2])[0])) for i, p in enumerate(pts)
    ]
    assert got == want


def test_decoding_matches_python(model_dir: Path) -> None:
    cells = CellSet.load(model_dir / "cells.json")
    rng = np.random.default_rng(3)
    n = len(cells)
    probs = rng.uniform(0, 1, (12, n)) ** 3
    probs[0] = 0.01  # flat: the score rule sits between regions
    probs[1, rng.integers(0, n, 3)] = 0.99  # a few confident cells far apart
    got = run_node(
        {"op": "decode", "cells": str(model_dir / "cells.json"), "probs": probs.tolist()}
    )
    for rule in ("hierarchical", "score"):
        idx, lat, lon = decode(probs, cells, rule)
        for r, g in enumerate(got):
            assert g[rule]["cell"] == idx[r], (rule, r)
            assert abs(g[rule]["lat"] - lat[r]) < 1e-6, (rule, r)
            assert abs(g[rule]["lon"] - lon[r]) < 1e-6, (rule, r)
    leaves, dist = leaf_distribution(probs, cells)
    tokens = cells.tokens()
    for r, g in enumerate(got):
        order = np.argsort(-dist[r], kind="stable")[:5]
        assert [t for t, _ in g["top"]] == [tokens[leaves[j]] for j in order]
        np.testing.assert_allclose([p for _, p in g["top"]], dist[r, order], rtol=1e-9)
    assert json.dumps(got)  # plain JSON (no NaN)
