"""The web app's pure JS (preprocessing, S2, decoding) gives Python's answers, run in Node."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from img2loc.data.cells import read_cells
from img2loc.geo import s2
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
    from img2loc.inference.images import reduce_for_preprocess

    cases, want = [], []
    for w, h in [(120, 90), (90, 120), (33, 80), (300, 200)]:
        a = _img(rng, w, h)
        cases.append({"data": b64(a.tobytes()), "w": w, "h": h, "jpeg": False})
        want.append(preprocess(reduce_for_preprocess(Image.fromarray(a), cfg.resize_size), cfg))
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


@pytest.mark.parametrize("fallback", [False, True], ids=["probs", "with-in-domain-weight"])
def test_decoding_matches_python(model_dir: Path, tmp_path: Path, fallback: bool) -> None:
    if fallback:  # a model with an in-domain weight: cells with a prior, one value more per row
        from tests.inference.conftest import make_model_dir

        model_dir = make_model_dir(tmp_path / "fb", in_domain=0.5)
    cells = read_cells(model_dir / "cells.json")
    rng = np.random.default_rng(3)
    n = len(cells)
    probs = rng.uniform(0, 1, (12, n)) ** 3
    probs[0] = 0.01  # flat: the score rule sits between regions
    probs[1, rng.integers(0, n, 3)] = 0.99  # a few confident cells far apart
    if fallback:
        probs = np.c_[probs, np.linspace(0, 1, 12)]
    got = run_node(
        {"op": "decode", "cells": str(model_dir / "cells.json"), "probs": probs.tolist()}
    )
    from img2loc.geo.decode import split_in_domain

    _, keep = split_in_domain(probs, cells)
    for r, g in enumerate(got):
        assert g["inDomain"] == (None if keep is None else pytest.approx(keep[r]))
        assert g["fallback"] == (keep is not None and bool(keep[r] < 0.5))
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


# ---------------------------------------------------------------------- panoramas
def _pano(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A synthetic equirectangular image that wraps around (no seam), with texture."""
    x = np.linspace(0, 2 * np.pi, w, endpoint=False)
    y = np.linspace(0, np.pi, h)[:, None]
    out = np.empty((h, w, 3))
    for c in range(3):
        k = rng.integers(1, 6)
        out[:, :, c] = 127 + 60 * np.sin(k * x + c) * np.cos(y * (c + 1)) + 30 * np.sin(7 * x)
    out += rng.normal(0, 6, out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def test_render_views_match_python_bit_for_bit() -> None:
    from img2loc.inference.panorama import render_views

    rng = np.random.default_rng(5)
    cases, want = [], []
    for w, h, fov, size, headings in [
        (64, 32, 100.0, 24, [0.0, 90.0, 180.0, 270.0]),
        (675, 338, 100.0, 256, [0.0, 45.5, 359.9]),
        (200, 100, 60.0, 33, [13.0, 200.0]),
        (31, 16, 150.0, 40, [-30.0, 721.0]),
    ]:
        a = _pano(rng, w, h)
        cases.append(
            {
                "data": b64(a.tobytes()),
                "w": w,
                "h": h,
                "fov": fov,
                "size": size,
                "headings": headings,
            }
        )
        want.append(render_views(a, headings, fov, size))
    got = run_node({"op": "render", "cases": cases})
    for g, w in zip(got, want, strict=True):
        views = np.stack(
            [np.frombuffer(base64.b64decode(v), np.uint8).reshape(w.shape[1:]) for v in g]
        )
        assert np.array_equal(views, w), f"{int((views != w).sum())} values differ"


def _inputs_case(a: np.ndarray, path: Path | None = None, jpeg: bool = False) -> dict[str, object]:
    return {
        "data": b64(a.tobytes()),
        "w": a.shape[1],
        "h": a.shape[0],
        "jpeg": jpeg,
        "file": str(path) if path else None,
    }


def _check_inputs(cases: list[dict[str, object]], want: list, cfg: PreprocessConfig) -> None:
    got = run_node({"op": "inputs", "cases": cases, "cfg": cfg.to_dict()})
    for g, w in zip(got, want, strict=True):
        assert g["panorama"] == w.panorama
        assert tuple(g["headings"]) == w.headings
        x = np.frombuffer(base64.b64decode(g["x"]), np.float32).reshape(w.inputs.shape)
        np.testing.assert_array_equal(x, w.inputs)


def test_panorama_inputs_match_python(tmp_path: Path) -> None:
    """Detection (XMP and seam), views, box downscale of wide panoramas, preprocessing."""
    from img2loc.inference.images import load_input

    rng = np.random.default_rng(6)
    cfg = PreprocessConfig(input_size=48, resize_size=56)
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description '
        b'GPano:ProjectionType="equirectangular"/></rdf:RDF></x:xmpmeta>'
    )
    cyl = xmp.replace(b"equirectangular", b"cylindrical")
    cases, want = [], []
    for i, (w, h, kind) in enumerate(
        [
            (400, 200, "png"),
            (1200, 600, "png"),
            (300, 150, "xmp"),
            (300, 150, "cyl"),
            (300, 200, "png"),
            (256, 128, "seamed"),
        ]
    ):
        a = _pano(rng, w, h)
        if kind == "seamed":  # an ordinary 2:1 photo: the edges do not meet
            a[:, : w // 2] = np.clip(a[:, : w // 2].astype(int) + 90, 0, 255).astype(np.uint8)
        p = tmp_path / f"p{i}.{'jpg' if kind in ('xmp', 'cyl') else 'png'}"
        if kind in ("xmp", "cyl"):
            Image.fromarray(a).save(p, quality=95, xmp=xmp if kind == "xmp" else cyl)
            # Below the draft threshold: both sides decode the JPEG at full size.
            a = np.asarray(Image.open(p).convert("RGB"))
        else:
            Image.fromarray(a).save(p)
        cases.append(_inputs_case(a, p, jpeg=kind in ("xmp", "cyl")))
        want.append(load_input(p, cfg, 4))
    assert [w.panorama for w in want] == ["seam", "seam", "xmp", None, None, None]
    _check_inputs(cases, want, cfg)


def _panoramas(folder: Path) -> list[Path]:
    import csv

    with (folder / "locations.csv").open() as f:
        rows = list(csv.DictReader(f))
    return [
        folder / r["image"] for r in rows if r.get("projection") in ("spherical", "equirectangular")
    ]


def _check_photos(paths: list[Path]) -> None:
    """Python's load_input vs the JS on Pillow's pixels (at these sizes no draft scaling)."""
    from img2loc.inference.images import load_input

    cfg = PreprocessConfig()
    cases, want = [], []
    for p in paths:
        a = np.asarray(Image.open(p).convert("RGB"))
        cases.append(_inputs_case(a, p, jpeg=True))
        want.append(load_input(p, cfg, 4))
        assert want[-1].panorama is not None, p
    _check_inputs(cases, want, cfg)


def test_bundled_panoramas_match_python() -> None:
    from img2loc.server.app import EXAMPLES_DIR

    paths = _panoramas(EXAMPLES_DIR)
    assert len(paths) >= 2
    _check_photos(paths)


@pytest.mark.shared_data
def test_shared_panoramas_match_python() -> None:
    from tests.conftest import SHARED

    folder = SHARED / "examples-cc-by-sa"
    if not folder.is_dir():
        pytest.skip(f"shared data not found at {folder}")
    paths = _panoramas(folder)
    assert len(paths) == 9
    _check_photos(paths)


# ---------------------------------------------------------------------- EXIF GPS, sniffing
def _python_gps(path: Path) -> tuple[float | None, float | None]:
    from img2loc.data.exif import gps_from_exif
    from img2loc.data.images import open_image

    g = gps_from_exif(open_image(path, draft=(64, 64)).info.get("exif_obj"))
    return g.lat, g.lon


def _gps_cases(tmp: Path) -> list[Path]:
    """Odd GPS blocks real cameras write, in JPEG, PNG, WebP and big-endian TIFF order."""
    from fractions import Fraction

    from tests.conftest import gps_exif

    rng = np.random.default_rng(7)
    a = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
    out = []

    def save(name: str, exif: Image.Exif, fmt: str = "JPEG") -> None:
        p = tmp / name
        Image.fromarray(a).save(p, fmt, exif=exif)
        out.append(p)

    save("sw.jpg", gps_exif(-33.8688, -151.2093))
    save("ne.png", gps_exif(48.1372, 11.5756), "PNG")
    save("ne.webp", gps_exif(35.6762, 139.6503), "WEBP")
    e = Image.Exif()
    e[0x8825] = {1: "N", 2: (Fraction(0), Fraction(0), Fraction(0)), 3: "E", 4: (0, 0, 0)}
    save("zero.jpg", e)  # 0,0 placeholder
    e = Image.Exif()
    e[0x8825] = {2: (Fraction(12), Fraction(30)), 4: Fraction(7, 2), 1: "S\x00", 3: " w"}
    save("short.jpg", e)  # two-part and one-value positions, padded refs
    e = Image.Exif()
    e[0x8825] = {1: "N", 2: (12.0, 30.0, 0.0), 3: "E"}  # no longitude
    save("nolon.jpg", e)
    # Big-endian TIFF block, written by hand: rationals with a zero denominator (NaN).
    import struct

    def tiff_be(lat: list[tuple[int, int]]) -> bytes:
        ifd0 = struct.pack(">H", 1) + struct.pack(">HHLL", 0x8825, 4, 1, 26) + b"\0\0\0\0"
        head = b"MM\x00*" + struct.pack(">L", 8)
        gps_at = 26
        data_at = gps_at + 2 + 4 * 12 + 4
        ents = [
            struct.pack(">HHL", 1, 2, 2) + b"N\x00\x00\x00",
            struct.pack(">HHLL", 2, 5, 3, data_at),
            struct.pack(">HHL", 3, 2, 2) + b"W\x00\x00\x00",
            struct.pack(">HHLL", 4, 5, 3, data_at + 24),
        ]
        rat = b"".join(struct.pack(">LL", n, d) for n, d in lat)
        lon = b"".join(struct.pack(">LL", n, d) for n, d in [(8, 1), (30, 1), (0, 0)])
        return head + ifd0 + struct.pack(">H", 4) + b"".join(ents) + b"\0\0\0\0" + rat + lon

    for name, lat in [
        ("be.jpg", [(51, 1), (3000, 100), (0, 0)]),
        ("nan.jpg", [(0, 0), (1, 1), (1, 1)]),
    ]:
        p = tmp / name
        Image.fromarray(a).save(p, "JPEG", exif=b"Exif\x00\x00" + tiff_be(lat))
        out.append(p)
    return out


def test_exif_gps_matches_python(tmp_path: Path) -> None:
    paths = _gps_cases(tmp_path)
    got = run_node({"op": "gps", "files": [str(p) for p in paths]})
    want = [_python_gps(p) for p in paths]
    assert [(g["lat"], g["lon"]) for g in got] == want
    assert want[0][0] is not None and want[0][0] < 0 and want[0][1] < 0  # the cases mean something
    assert sum(w[0] is None for w in want) == 3


@pytest.mark.shared_data
def test_exif_gps_matches_python_on_every_shared_photo() -> None:
    from tests.conftest import SHARED

    folder = SHARED / "photos-exif-gps"
    if not folder.is_dir():
        pytest.skip(f"shared data not found at {folder}")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".heic"))
    got = run_node({"op": "gps", "files": [str(p) for p in paths]})
    for p, g in zip(paths, got, strict=True):
        assert (g["lat"], g["lon"]) == _python_gps(p), p.name
    assert sum(g["lat"] is not None for g in got) >= 35  # most of them carry a position


def test_sniff_formats_sizes_and_truncation(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    a = rng.integers(0, 255, (30, 50, 3), dtype=np.uint8)
    files = []
    for fmt, ext in [
        ("JPEG", "jpg"),
        ("PNG", "png"),
        ("WEBP", "webp"),
        ("GIF", "gif"),
        ("BMP", "bmp"),
    ]:
        p = tmp_path / f"a.{ext}"
        Image.fromarray(a).save(p, fmt)
        files.append(p)
    data = files[0].read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "tail.jpg").write_bytes(data + b"\0" * 100)  # trailing padding is fine
    (tmp_path / "notes.txt").write_text("not a photo")
    heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 32
    (tmp_path / "x.heic").write_bytes(heic)
    files += [tmp_path / n for n in ("cut.jpg", "tail.jpg", "notes.txt", "x.heic")]
    got = run_node({"op": "sniff", "files": [str(p) for p in files]})
    assert [g["format"] for g in got] == [
        "jpeg",
        "png",
        "webp",
        "gif",
        "bmp",
        "jpeg",
        "jpeg",
        None,
        "heic",
    ]
    assert all(g["size"] == {"width": 50, "height": 30} for g in got[:7])
    assert [g["complete"] for g in got[:1] + got[5:7]] == [True, False, True]


def test_guess_explained_is_the_same_sentence_as_the_cli() -> None:
    import re

    from img2loc.inference.output import GUESS_EXPLAINED

    src = (Path(__file__).resolve().parents[2] / "web" / "src" / "answer.js").read_text()
    m = re.search(r"export const GUESS_EXPLAINED =\s*'([^']*)'", src)
    assert m is not None
    assert m.group(1) == GUESS_EXPLAINED


def test_fallback_note_is_the_same_sentence_as_the_cli() -> None:
    import re

    from img2loc.inference.predictor import FALLBACK_NOTE

    src = (Path(__file__).resolve().parents[2] / "web" / "src" / "answer.js").read_text()
    m = re.search(r"export const FALLBACK_NOTE =\s*'([^']*)'", src)
    assert m is not None and m.group(1) == FALLBACK_NOTE


def test_place_weight_is_the_largest_of_its_views() -> None:
    from img2loc.geo.views import combine_views

    views = [[0.2, 0.4, 0.1], [0.4, 0.2, 0.9]]  # two cells, then the in-domain weight
    got = run_node({"op": "combine", "views": views, "n": 2})
    np.testing.assert_allclose(got, combine_views(np.array(views), "mean", n_cells=2), rtol=1e-6)
