"""360° panoramas: XMP, detection, the gnomonic projection, and the predict path."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from PIL import Image

from img2loc import Predictor
from img2loc.data.images import open_image
from img2loc.inference.images import ImageBytes, load_input
from img2loc.inference.panorama import (
    detect_panorama,
    jpeg_xmp,
    render_views,
    view_headings,
    xmp_projection,
)
from img2loc.inference.preprocess import PreprocessConfig
from tests.conftest import SHARED

EXAMPLES = SHARED / "examples-cc-by-sa"

XMP_ATTR = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
    'syntax-ns#"><rdf:Description xmlns:GPano="http://ns.google.com/photos/1.0/panorama/" '
    'GPano:ProjectionType="equirectangular" GPano:UsePanoramaViewer="True"/></rdf:RDF>'
    "</x:xmpmeta>"
)
XMP_ELEM = "<rdf:Description><GPano:ProjectionType>equirectangular</GPano:ProjectionType>"


def with_xmp(jpeg: bytes, xmp: str) -> bytes:
    """The JPEG with an XMP APP1 segment inserted after SOI (as cameras write it)."""
    body = b"http://ns.adobe.com/xap/1.0/\x00" + xmp.encode()
    seg = b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body
    return jpeg[:2] + seg + jpeg[2:]


def jpeg(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def noise_pano(rng: np.random.Generator, w: int = 512, h: int = 256) -> np.ndarray:
    """A textured random image that wraps around horizontally (like a 360° panorama):
    coarse noise upsampled with periodic interpolation in x."""
    src = rng.uniform(0, 255, (h // 4, w // 4, 3))
    xs = (np.arange(w) + 0.5) / 4 - 0.5
    x0 = np.floor(xs).astype(int)
    fx = (xs - x0)[None, :, None]
    x0 %= src.shape[1]
    x1 = (x0 + 1) % src.shape[1]
    rows = np.minimum(np.arange(h) // 4, src.shape[0] - 1)
    a = src[rows][:, x0] * (1 - fx) + src[rows][:, x1] * fx
    return np.clip(a, 0, 255).astype(np.uint8)


def test_xmp_parsing():
    base = jpeg(np.zeros((8, 16, 3), np.uint8))
    assert jpeg_xmp(base) is None
    assert xmp_projection(jpeg_xmp(with_xmp(base, XMP_ATTR))) == "equirectangular"
    assert xmp_projection(jpeg_xmp(with_xmp(base, XMP_ELEM))) == "equirectangular"
    assert xmp_projection("<x GPano:ProjectionType='cylindrical'/>") == "cylindrical"
    assert jpeg_xmp(b"\x89PNG....") is None and jpeg_xmp(b"\xff\xd8\x00garbage") is None


def test_projection_is_geometrically_right():
    """Pixels encode their heading (as cos, sin: continuous across the seam) and elevation:
    every view must sample where it looks."""
    w, h, size = 720, 360, 65  # odd size: the centre pixel looks straight ahead
    heading = np.radians((np.arange(w) + 0.5) / w * 360 - 180)
    elev = 90 - (np.arange(h) + 0.5) / h * 180
    pano = np.stack(
        [
            np.broadcast_to(np.cos(heading), (h, w)),
            np.broadcast_to(np.sin(heading), (h, w)),
            np.broadcast_to(elev[:, None], (h, w)),
        ],
        axis=-1,
    ).astype(np.float32)

    def seen(views):  # (heading, elevation) sampled by each pixel
        return np.degrees(np.arctan2(views[..., 1], views[..., 0])), views[..., 2]

    views = render_views(pano, [0, 90, -90, 45, 180], fov_deg=90, size=size)
    hd, el = seen(views)
    c = size // 2
    assert hd[:, c, c] == pytest.approx([0, 90, -90, 45, 180], abs=1e-3)
    assert el[:, c, c] == pytest.approx(0, abs=1e-3)
    # The right edge pixel looks fov/2 (less half a pixel) right of the heading.
    f = (size / 2) / np.tan(np.radians(45))
    edge = np.degrees(np.arctan((size / 2 - 0.5) / f))
    assert hd[1, c, -1] == pytest.approx(90 + edge, abs=1e-2)
    # Heading 180 looks across the seam: left half west of 180, right half east (wrapped).
    assert hd[4, c, 0] == pytest.approx(180 - edge, abs=1e-2)
    assert hd[4, c, -1] == pytest.approx(-180 + edge, abs=1e-2)
    # The centre column keeps one heading (a vertical line stays vertical); up is up.
    assert np.ptp(hd[1, :, c]) < 1e-2 and el[1, 0, c] > 40 > -40 > el[1, -1, c]
    # Pitch tilts the view up; the sampled elevation follows.
    up = render_views(pano, [0], fov_deg=90, size=size, pitch_deg=30)
    assert seen(up)[1][0, c, c] == pytest.approx(30, abs=1e-3)


def test_render_uint8_and_headings():
    v = render_views(np.full((64, 128, 3), 77, np.uint8), view_headings(3), size=16)
    assert v.shape == (3, 16, 16, 3) and v.dtype == np.uint8 and (v == 77).all()
    assert view_headings(4) == [0, 90, 180, 270]
    with pytest.raises(ValueError):
        view_headings(0)


def test_detection_synthetic(rng):
    pano = noise_pano(rng)
    # XMP decides when present; without it, a seamless 2:1 image passes the seam test.
    assert detect_panorama(Image.fromarray(pano), with_xmp(jpeg(pano), XMP_ATTR)) == "xmp"
    assert detect_panorama(Image.fromarray(pano), jpeg(pano)) == "seam"
    # The same image cut open elsewhere has a seam; 2:1 but not a panorama.
    cut = np.roll(pano, 100, axis=1)[:, : pano.shape[1] - 60]
    cut = np.asarray(Image.fromarray(cut).resize((512, 256)))
    assert detect_panorama(Image.fromarray(cut), jpeg(cut)) is None
    # XMP equirectangular on a 4:3 photo, and a 2:1 file saying "cylindrical": not panoramas.
    four3 = pano[:, :341]
    assert detect_panorama(Image.fromarray(four3), with_xmp(jpeg(four3), XMP_ATTR)) is None
    cyl = with_xmp(jpeg(pano), XMP_ATTR.replace("equirectangular", "cylindrical"))
    assert detect_panorama(Image.fromarray(pano), cyl) is None
    # A blank frame has no seam to see.
    blank = np.full((256, 512, 3), 128, np.uint8)
    assert detect_panorama(Image.fromarray(blank), jpeg(blank)) is None


def test_load_input_renders_views(rng):
    cfg = PreprocessConfig(input_size=32, resize_size=36)
    data = with_xmp(jpeg(noise_pano(rng, 1024, 512)), XMP_ATTR)
    d = load_input(ImageBytes("p.jpg", data), cfg, pano_views=6)
    assert d.panorama == "xmp" and d.inputs.shape == (6, 3, 32, 32)
    assert d.headings == (0, 60, 120, 180, 240, 300) and np.array_equal(d.x, d.inputs[0])
    plain = load_input(ImageBytes("p.jpg", data), cfg)  # panorama handling off
    assert plain.views is None and plain.inputs.shape == (1, 3, 32, 32)


def test_predict_panorama_is_one_multiview_place(model_dir, rng):
    p = Predictor.load(model_dir)
    data = with_xmp(jpeg(noise_pano(rng)), XMP_ATTR)
    r = p.predict(ImageBytes("pano.jpg", data), top_k=2)
    assert r.ok and r.n_views == 4 and r.views[1] == "pano.jpg@h90"
    # The answer is the mean of the rendered views' probabilities.
    d = load_input(ImageBytes("pano.jpg", data), p.preprocess, 4)
    probs = p.run(d.inputs).mean(axis=0)
    [(lat, lon, _, _, _)] = p.results(probs[None])
    assert (r.lat, r.lon) == pytest.approx((lat, lon))
    flat = Predictor.load(model_dir, pano_views=0).predict(ImageBytes("pano.jpg", data))
    assert flat.n_views == 1


@pytest.mark.shared_data
@pytest.mark.skipif(not EXAMPLES.exists(), reason="shared data absent")
def test_real_panoramas_detected_and_rendered():
    with open(EXAMPLES / "locations.csv") as f:
        rows = list(csv.DictReader(f))
    cfg = PreprocessConfig()
    found = {}
    for r in rows:
        path = EXAMPLES / r["image"]
        im = open_image(path)
        found[r["image"]] = detect_panorama(im, path.read_bytes()) is not None
        if r["projection"] == "spherical":
            d = load_input(str(path), cfg, pano_views=4)
            assert d.panorama is not None and d.inputs.shape == (4, 3, 224, 224)
            # Sane content: textured views, and each heading sees something different
            # along the horizon row.
            horizon = d.inputs[:, :, 112, :]
            assert (d.inputs.std(axis=(1, 2, 3)) > 0.1).all()
            diffs = [np.abs(horizon[i] - horizon[j]).mean() for i in range(4) for j in range(i)]
            assert min(diffs) > 0.05
    spherical = {r["image"] for r in rows if r["projection"] == "spherical"}
    assert len(spherical) == 9
    assert {k for k, v in found.items() if v} == spherical
