"""The web app in a real headless Chromium against `img2loc serve` with the tiny model.

Checks: the page loads cross-origin isolated (threads), uploads and camera frames give
Python's probabilities (within 1e-3, same top cell), nothing is requested outside the
origin, the game and the screen assist work. Screenshots go to build/test-artifacts/.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from img2loc.inference.predictor import Predictor
from img2loc.server.app import EXAMPLES_DIR
from tests.web.conftest import ARTIFACTS, Page

TOL = 1e-3


def _real_images(tmp: Path) -> list[Path]:
    """Real photos in forms where browser and Pillow decode identically.

    PNGs of any size (no JPEG draft scaling) and a small JPEG (short side under twice
    the model's resize size, so Pillow's draft mode leaves it alone), one of them
    with EXIF orientation 6 (rotated) to check both apply it.
    """
    photos = sorted(EXAMPLES_DIR.glob("*.jpg"))
    out = []
    for i, (src, size) in enumerate([(photos[0], (400, 300)), (photos[1], (1024, 768))]):
        p = tmp / f"real{i}.png"
        Image.open(src).convert("RGB").resize(size, Image.Resampling.LANCZOS).save(p)
        out.append(p)
    small = Image.open(photos[2]).convert("RGB").resize((90, 68), Image.Resampling.LANCZOS)
    p = tmp / "small.jpg"
    small.save(p, quality=92)
    out.append(p)
    exif = Image.Exif()
    exif[0x0112] = 6
    p = tmp / "rotated.jpg"
    small.save(p, quality=92, exif=exif)
    out.append(p)
    return out


def _probs(page: Page) -> np.ndarray:
    return np.asarray(page.page.evaluate("img2loc.last.probs"), np.float64)


@pytest.mark.parametrize("variant", ["fp32", "browser"])
def test_upload_matches_python(
    open_app: Any, model_dir: Path, tmp_path: Path, variant: str
) -> None:
    app = open_app(f"?variant={variant}")
    assert app.page.evaluate("crossOriginIsolated"), "COOP/COEP missing: no threads"
    images = _real_images(tmp_path)
    want = Predictor.load(model_dir, variant).probabilities(images)
    for i, path in enumerate(images):
        app.page.set_input_files("#file-input", str(path))
        app.wait_answers(i + 1)
        got = _probs(app)
        assert got.shape == want[i].shape
        diff = float(np.abs(got - want[i]).max())
        assert diff < TOL, f"{path.name}: max |browser - python| = {diff:.2e}"
        assert int(np.argmax(got)) == int(np.argmax(want[i]))
    assert app.page.evaluate("img2loc.threads") == 2
    assert app.outside() == [], "requests left the origin"
    assert app.errors == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    app.page.screenshot(path=str(ARTIFACTS / f"web-upload-{variant}.png"))


def test_exif_gps_shows_error_km(open_app: Any, tmp_path: Path) -> None:
    from tests.inference.conftest import photo

    rng = np.random.default_rng(0)
    exif = Image.Exif()
    # Paris: 48°51'N 2°21'E
    exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 0.0), 3: "E", 4: (2.0, 21.0, 0.0)})
    p = tmp_path / "gps.jpg"
    p.write_bytes(photo(rng, exif=exif))
    app = open_app()
    app.page.set_input_files("#file-input", str(p))
    app.wait_answers(1)
    gps = app.page.evaluate("img2loc.last.gps")
    assert gps["lat"] == pytest.approx(48.85, abs=1e-3)
    assert gps["lon"] == pytest.approx(2.35, abs=1e-3)
    assert app.page.evaluate("img2loc.last.errorKm") > 0
    assert "km from the position in its EXIF" in app.page.inner_text("#details")


def test_camera_frame_matches_python(open_app: Any, model_dir: Path) -> None:
    app = open_app(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    app.page.click("#camera-btn")
    app.page.wait_for_selector("#camera:not([hidden])")
    app.page.wait_for_selector("#video", state="visible")
    # Wait until the fake camera delivers frames.
    for _ in range(100):
        if app.page.evaluate("document.getElementById('video').videoWidth") > 0:
            break
        app.page.wait_for_timeout(100)
    app.page.evaluate(
        "window.__grab = null; (() => { const f = img2loc.infer.bind(img2loc);"
        " img2loc.infer = (img) => { window.__grab = img; return f(img); }; })()"
    )
    app.page.click("#capture-btn")
    app.wait_answers(1)
    w, h, rgb = app.page.evaluate(
        "(() => { const g = window.__grab; let s = ''; const b = g.rgb;"
        " for (let i = 0; i < b.length; i += 8192)"
        "   s += String.fromCharCode(...b.subarray(i, i + 8192));"
        " return [g.width, g.height, btoa(s)]; })()"
    )
    frame = np.frombuffer(base64.b64decode(rgb), np.uint8).reshape(h, w, 3)
    assert frame.std() > 10, "the fake camera sent a blank frame"
    variant = app.page.evaluate("img2loc.model.file")
    pred = Predictor.load(model_dir, "browser" if variant == "model.browser.onnx" else "fp32")
    want = pred.probabilities([frame])[0]
    got = _probs(app)
    assert float(np.abs(got - want).max()) < TOL
    assert app.outside() == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    app.page.screenshot(path=str(ARTIFACTS / "web-camera-phone.png"), full_page=True)


def test_game_five_rounds(open_app: Any) -> None:
    app = open_app()
    pg = app.page
    pg.click('#tabs button[data-tab="game"]')
    pg.click("#game-start")
    box = pg.locator("#map").bounding_box()
    assert box is not None
    for r in range(5):
        pg.wait_for_selector("#game-photo:not([hidden]), #game-pano:not([hidden])")
        pg.mouse.click(box["x"] + box["width"] * (0.3 + 0.1 * r), box["y"] + box["height"] * 0.4)
        pg.wait_for_selector("#game-guess:not([disabled])")
        pg.click("#game-guess")
        pg.wait_for_selector(f"#game-table tbody tr:nth-child({r + 1})")
        pg.click("#game-next")
    totals = pg.evaluate("img2loc.game.totals")
    assert 0 <= totals["you"] <= 25000 and 0 <= totals["model"] <= 25000
    rounds = pg.evaluate("img2loc.game.rounds.map(r => [r.you.km, r.you.score, r.ai.score])")
    for km, score, _ in rounds:
        assert score == round(5000 * np.exp(-km / 1492.7))
    assert sum(s for _, s, _ in rounds) == totals["you"]
    assert "Final" in pg.inner_text("#game-round")
    assert app.outside() == []
    pg.screenshot(path=str(ARTIFACTS / "web-game.png"))


def test_screen_assist_aggregates_views(open_app: Any) -> None:
    app = open_app()
    pg = app.page
    pg.click('#tabs button[data-tab="assist"]')
    # A canvas stream stands in for the shared screen: an example photo with "game UI" bars.
    pg.evaluate(
        """async () => {
          const img = new Image(); img.src = (await img2loc.examples)[0].url; await img.decode();
          const c = document.createElement('canvas'); c.width = 800; c.height = 500;
          const ctx = c.getContext('2d');
          const draw = () => { ctx.drawImage(img, 0, 40, 800, 400); ctx.fillRect(0, 0, 800, 40); };
          setInterval(draw, 50);
          draw();
          navigator.mediaDevices.getDisplayMedia = async () => c.captureStream(10);
        }"""
    )
    pg.click("#assist-share")
    pg.wait_for_selector("#assist-grab:not([disabled])")
    pg.click("#assist-grab")
    for n in (1, 2):
        if n == 2:
            pg.keyboard.press("g")
        for _ in range(100):
            last = pg.evaluate("img2loc.assist.last")
            if last and last["views"] == n:
                break
            pg.wait_for_timeout(100)
        assert last is not None and last["views"] == n
    assert 0 < last["expected"] <= 5000
    assert "expected score" in pg.inner_text("#assist-answer")
    pg.screenshot(path=str(ARTIFACTS / "web-assist.png"))
    pg.click("#assist-new")
    assert pg.evaluate("img2loc.assist.views.length") == 0
    assert app.outside() == []


def test_no_model_shows_how_to_fix(browser: Any, site: str) -> None:
    ctx = browser.new_context()
    try:
        pg = ctx.new_page()
        pg.goto(f"{site}/?model=nowhere/")
        pg.wait_for_selector("body[data-ready]", state="attached", timeout=30_000)
        assert "not found" in pg.inner_text("#status")
    finally:
        ctx.close()


def test_png_bytes_roundtrip_sanity() -> None:
    # The helper images above are real photos, not flat colour.
    buf = io.BytesIO()
    Image.open(sorted(EXAMPLES_DIR.glob("*.jpg"))[0]).save(buf, "PNG")
    assert np.asarray(Image.open(buf)).std() > 20


@pytest.fixture(scope="module")
def default_site() -> Iterator[str]:
    """`img2loc serve` with the bundled default model."""
    import threading

    from img2loc.inference.predictor import DEFAULT_MODEL_DIR
    from img2loc.server import make_server

    if not DEFAULT_MODEL_DIR.is_dir():
        pytest.skip("no bundled model")
    srv = make_server(DEFAULT_MODEL_DIR, "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _panoramas(folder: Path) -> list[Path]:
    import csv

    with (folder / "locations.csv").open() as f:
        rows = list(csv.DictReader(f))
    return [
        folder / r["image"] for r in rows if r["projection"] in ("spherical", "equirectangular")
    ]


def test_panoramas_get_the_same_answer_as_img2loc_predict(browser: Any, default_site: str) -> None:
    """360° photos: the browser renders the same 4 views and combines them as `predict`."""
    from img2loc.inference.predictor import DEFAULT_MODEL_DIR
    from tests.conftest import SHARED

    paths = _panoramas(EXAMPLES_DIR)
    shared = SHARED / "examples-cc-by-sa"
    if shared.is_dir():  # all 9 of the shared panoramas (read at run time, never copied)
        paths += [p for p in _panoramas(shared) if p.name not in {q.name for q in paths}]
    want = Predictor.load(DEFAULT_MODEL_DIR).predict(paths)
    ctx = browser.new_context(service_workers="block")
    try:
        app = Page(ctx.new_page(), default_site)
        app.page.goto(f"{default_site}/")
        app.ready()
        for i, (p, w) in enumerate(zip(paths, want, strict=True)):
            app.page.set_input_files("#file-input", str(p))
            app.wait_answers(i + 1)
            got = app.page.evaluate(
                "({place: img2loc.last.place, top: img2loc.last.top[0].token,"
                " views: img2loc.last.views, lat: img2loc.last.lat, lon: img2loc.last.lon})"
            )
            assert got["views"] == 4 == w.n_views, p.name
            assert got["place"] == w.place, p.name
            assert got["top"] == w.top[0].cell, p.name
            assert abs(got["lat"] - w.lat) < 0.05 and abs(got["lon"] - w.lon) < 0.05, p.name
        assert app.errors == [] and app.outside() == []
        assert len(paths) >= (9 if shared.is_dir() else 2)
    finally:
        ctx.close()
