"""The web app in WebKitGTK (the engine of iPhone Safari) against `img2loc serve`.

Fresh MiniBrowser sessions through WebKitWebDriver on a virtual display: the map fills
its box on a first visit, the status names the threads really in use, answers equal
`img2loc predict` (flat photos and 360° panoramas), a 48 MP photo is answered and a
device without a camera is told so in words. Skipped where WebKitGTK is not installed.
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from img2loc.inference.predictor import DEFAULT_MODEL_DIR, Predictor
from img2loc.server.app import EXAMPLES_DIR
from tests.web.webkit import missing, webkit_driver

READY = "return document.body.dataset.ready"


@pytest.fixture(scope="module")
def webkit() -> Iterator[Any]:
    why = missing()
    if why:
        pytest.skip(why)
    with webkit_driver() as new_session:
        yield new_session


@pytest.fixture(scope="module")
def wk_site(big_jpeg: Path) -> Iterator[str]:
    """The bundled model; the game's photos: one 48 MP JPEG (iPhones take 24-48 MP)."""
    from img2loc.server import make_server

    if not DEFAULT_MODEL_DIR.is_dir():
        pytest.skip("no bundled model")
    srv = make_server(DEFAULT_MODEL_DIR, "127.0.0.1", 0, game_data=big_jpeg.parent)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()
    srv.server_close()


def _open(webkit: Any, url: str) -> Any:
    s = webkit()
    s.get(url)
    s.wait(READY, 120)
    assert s.js(READY) == "1", s.js("return document.getElementById('status').textContent")
    return s


def test_map_fills_its_box_on_first_load(webkit: Any, wk_site: str) -> None:
    for _ in range(3):  # fresh sessions: nothing cached, the stylesheet arrives as on a first visit
        s = _open(webkit, wk_site)
        leaflet, box = s.js(
            "return [img2loc.map.map.getSize().y, document.getElementById('map').clientHeight]"
        )
        assert leaflet == box and box > 200, (leaflet, box)
        s.close()


def test_status_names_the_threads_really_used(webkit: Any, wk_site: str) -> None:
    s = _open(webkit, wk_site)
    threads, asked, text = s.js(
        "return [img2loc.threads, img2loc.requestedThreads,"
        " document.getElementById('status').textContent]"
    )
    assert threads >= 1 and f"{threads} thread" in text
    if threads < asked:  # ONNX Runtime fell back (WebKitGTK: no shared wasm memory here)
        assert "does not allow more" in text or "without the headers" in text
    s.close()


def test_answers_equal_img2loc_predict(webkit: Any, wk_site: str) -> None:
    rows = list(csv.DictReader((EXAMPLES_DIR / "locations.csv").open()))
    want = Predictor.load(DEFAULT_MODEL_DIR).predict([EXAMPLES_DIR / r["image"] for r in rows])
    s = _open(webkit, wk_site)
    places = []
    for i, w in enumerate(want):
        got = s.js_async(
            f"const r = await img2loc.locateExample({i});"
            " return r && {place: r.place, top: r.top[0].token, views: r.views};"
        )
        assert got, s.js("return document.getElementById('locate-error').textContent")
        assert got["views"] == w.n_views, rows[i]["image"]
        assert got["top"] == w.top[0].cell, rows[i]["image"]  # the most likely region
        if w.n_views > 1:  # panoramas: decoded at full size on both sides, the same views
            assert got["place"] == w.place, rows[i]["image"]
        places.append(got["place"] == w.place)
    assert any(w.n_views == 4 for w in want)  # panoramas were among them
    # Flat 1024 px JPEGs: Python decodes them at half size (libjpeg's DCT scaling), the
    # browser at full size then box-reduces: the score-optimal point (a midpoint of
    # near-equal regions) may move for one of them; the same holds in Chromium.
    assert sum(places) >= len(places) - 1, places


def test_48_megapixel_photo_is_answered(webkit: Any, wk_site: str) -> None:
    s = _open(webkit, wk_site)
    got = s.js_async(
        "const b = await (await fetch('game/img/0.jpg')).blob();"
        " const r = await img2loc.locate.files([new File([b], 'big.jpg', {type: 'image/jpeg'})]);"
        " return r ? {scaled: r.scaled, gps: r.gps, place: r.place}"
        "  : {error: document.getElementById('locate-error').textContent};"
    )
    assert "error" not in got, got
    assert got["scaled"]["from"] == "48 MP" and got["place"]
    assert got["gps"]["lat"] == pytest.approx(48.78, abs=1e-3)
    s.close()


def test_device_without_a_camera_is_told_so(webkit: Any, wk_site: str) -> None:
    s = _open(webkit, wk_site)
    s.js("document.getElementById('camera-btn').click()")
    msg = s.wait("return document.getElementById('locate-error').textContent", 30)
    assert "constraint" not in msg.lower(), msg
    assert msg.startswith(("No camera", "The camera was not allowed")), msg
    s.close()
