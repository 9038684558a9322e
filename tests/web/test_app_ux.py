"""The web app as a user meets it, in real headless Chromium (issue 17's numbered items).

Phone (390x844 touch) and desktop layouts, modes that leave each other alone, every pick
answered, errors in words, the map's legend and labels, the game, keyboard use, big
photos, the real thread count and the offline app. Screenshots go to build/test-artifacts/.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from img2loc.server.app import EXAMPLES_DIR
from tests.conftest import SHARED
from tests.web.conftest import ARTIFACTS, Page

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1366, "height": 800}}
EXIF_DIR = SHARED / "photos-exif-gps"


def _photo(tmp: Path, name: str = "street.jpg", size: tuple[int, int] = (640, 480)) -> Path:
    src = sorted(EXAMPLES_DIR.glob("*.jpg"))[0]
    p = tmp / name
    Image.open(src).convert("RGB").resize(size).save(p, quality=90)
    return p


def _in_view(page: Any, selector: str) -> bool:
    """Whether an element is fully inside the viewport, with the page not scrolled."""
    return bool(
        page.evaluate(
            """(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
              return scrollY === 0 && r.height > 0 && r.top >= 0 && r.left >= 0
                && r.bottom <= innerHeight && r.right <= innerWidth; }""",
            selector,
        )
    )


def _wait(app: Page, key: str, n: int) -> None:
    app.page.wait_for_selector(f'body[data-{key}="{n}"]', state="attached", timeout=60_000)


def _camera_on(page: Any) -> None:
    page.click("#camera-btn")
    page.wait_for_selector("#camera:not([hidden])")
    page.wait_for_function("() => document.getElementById('video').videoWidth > 0", timeout=20_000)


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


# ---------------------------------------------------------------------- 1. layout
def test_phone_answer_in_view_after_upload_and_capture(open_app: Any, tmp_path: Path) -> None:
    app = open_app(**PHONE)
    pg = app.page
    pg.set_input_files("#file-input", str(_photo(tmp_path)))
    _wait(app, "answers", 1)
    for sel in ("#answer", "#details"):
        assert _in_view(pg, sel), sel
    assert "confidence" in pg.inner_text("#details") and "km" not in pg.inner_text("#answer")
    # The map sits right under the answer.
    gap = pg.evaluate(
        "document.getElementById('map').getBoundingClientRect().top"
        " - document.getElementById('card').getBoundingClientRect().bottom"
    )
    assert 0 <= gap < 40
    _shot(pg, "web-phone-upload.png")
    _camera_on(pg)
    assert _in_view(pg, "#capture-btn"), "the capture control is off-screen"
    pg.click("#capture-btn")
    _wait(app, "answers", 2)
    assert pg.inner_text("#answer")
    for sel in ("#answer", "#details", "#capture-btn"):
        assert _in_view(pg, sel), sel
    _shot(pg, "web-phone-capture.png")
    assert app.errors == [] and app.outside() == []


def test_desktop_camera_answer_in_view(open_app: Any) -> None:
    app = open_app(**DESKTOP)
    pg = app.page
    _camera_on(pg)
    pg.click("#capture-btn")
    _wait(app, "answers", 1)
    for sel in ("#answer", "#details", "#capture-btn", "#map"):
        assert _in_view(pg, sel), sel


# ---------------------------------------------------------------------- 2. modes
def test_switching_tabs_stops_the_camera_and_keeps_the_game_pin(open_app: Any) -> None:
    app = open_app(**DESKTOP)
    pg = app.page
    _camera_on(pg)
    pg.check("#live")
    pg.evaluate("window.__tracks = document.getElementById('video').srcObject.getTracks()")
    pg.click("#tab-btn-game")
    assert pg.evaluate("window.__tracks.every(t => t.readyState === 'ended')"), "camera still on"
    assert pg.evaluate("img2loc.locate.liveTimer") is None
    pg.click("#game-start")
    pg.wait_for_selector("#game-photo:not([hidden]), #game-pano:not([hidden])", timeout=30_000)
    box = pg.locator("#map").bounding_box()
    assert box is not None
    pg.mouse.click(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5)
    pg.wait_for_selector("#game-guess:not([disabled])")
    # Locate answers a photo meanwhile: it draws into its own layer only.
    pg.click("#tab-btn-locate")
    pg.evaluate("img2loc.locateExample(0)")
    _wait(app, "answers", 1)
    assert pg.locator(".pin.guess").count() == 1 and pg.locator(".pin.you").count() == 0
    pg.click("#tab-btn-game")
    assert pg.locator(".pin.you").count() == 1, "the game's pin was wiped"
    assert pg.locator(".pin.guess").count() == 0, "Locate's answer drawn on the game's map"
    assert pg.is_enabled("#game-guess")
    pg.click("#game-guess")
    pg.wait_for_selector("#game-table tbody tr")
    assert app.errors == []


def test_assist_timer_pauses_visibly_and_draws_only_its_own_map(open_app: Any) -> None:
    app = open_app(**DESKTOP)
    pg = app.page
    pg.click("#tab-btn-assist")
    pg.evaluate(
        """async () => {
          const img = new Image(); img.src = (await img2loc.examples)[0].url; await img.decode();
          const c = document.createElement('canvas'); c.width = 640; c.height = 400;
          const ctx = c.getContext('2d');
          setInterval(() => ctx.drawImage(img, 0, 0, 640, 400), 50);
          navigator.mediaDevices.getDisplayMedia = async () => c.captureStream(10);
        }"""
    )
    pg.fill("#assist-every", "1")
    pg.dispatch_event("#assist-every", "change")
    pg.click("#assist-share")
    pg.wait_for_function(
        "() => img2loc.assist.last && img2loc.assist.last.views >= 1", timeout=30_000
    )
    pg.click("#tab-btn-locate")
    assert pg.evaluate("img2loc.assist.timer") is None
    # Paused, and said so where the user is: on the Screen assist tab itself.
    assert "paused" in pg.inner_text("#tab-btn-assist")
    views = pg.evaluate("img2loc.assist.views.length")
    pg.wait_for_timeout(2500)
    assert pg.evaluate("img2loc.assist.views.length") == views, "grabbing went on in Locate"
    assert pg.locator(".pin").count() == 0, "the assist drew on the Locate map"
    assert "Grabbing paused" not in pg.inner_text("#status")
    pg.click("#tab-btn-assist")
    assert pg.evaluate("img2loc.assist.timer") is not None
    assert "paused" not in pg.inner_text("#tab-btn-assist")
    pg.fill("#assist-every", "0")
    pg.dispatch_event("#assist-every", "change")
    pg.click("#tab-btn-game")
    assert "paused" not in pg.inner_text("#tab-btn-assist")  # nothing scheduled, nothing paused
    assert app.errors == []


# ---------------------------------------------------------------------- 3. every pick answered
def test_photos_picked_back_to_back_are_all_answered(open_app: Any, tmp_path: Path) -> None:
    app = open_app(**DESKTOP)
    pg = app.page
    a = _photo(tmp_path, "first.jpg")
    b = _photo(tmp_path, "second.jpg", (480, 640))
    # The first photo takes its time (held until released), so the others arrive while busy.
    pg.evaluate(
        """() => { const f = img2loc.infer.bind(img2loc); let first = true;
          window.__release = null; const held = new Promise((ok) => (window.__release = ok));
          img2loc.infer = async (img) => {
            if (first) { first = false; await held; }
            return f(img);
          }; }"""
    )
    pg.set_input_files("#file-input", str(a))
    pg.wait_for_selector("#queue:not([hidden])")
    pg.set_input_files("#file-input", str(b))
    pg.evaluate("() => { img2loc.locateExample(2); }")  # not awaited: it waits in line
    pg.wait_for_function("() => document.getElementById('queue').textContent.includes('example 3')")
    queued = pg.inner_text("#queue")
    assert queued.startswith("Locating first.jpg"), queued
    assert "Waiting in line: second.jpg, example 3" in queued, queued
    pg.evaluate("window.__release()")
    _wait(app, "handled", 3)
    assert pg.evaluate("document.body.dataset.answers") == "3"
    assert pg.evaluate("img2loc.last.name") == "example 3"
    earlier = pg.text_content("#history-list") or ""
    assert "first.jpg" in earlier and "second.jpg" in earlier
    assert pg.is_hidden("#queue")
    # The examples list does not keep showing a pick as if it were the answer.
    pg.select_option("#examples", "1")
    _wait(app, "handled", 4)
    assert pg.eval_on_selector("#examples", "e => e.value") == ""
    assert pg.evaluate("img2loc.last.name") == "example 2"


# ---------------------------------------------------------------------- 5. the answer explained
def test_answer_explains_the_guess_and_marks_its_region(open_app: Any) -> None:
    from img2loc.inference.output import GUESS_EXPLAINED

    app = open_app(**DESKTOP)
    pg = app.page
    pg.evaluate("img2loc.locateExample(0)")
    _wait(app, "answers", 1)
    assert pg.inner_text("#explain") == GUESS_EXPLAINED
    assert pg.locator("#top li").count() == 5
    # An example's position is known (not "from EXIF").
    assert "where it was taken" in pg.inner_text("#details")
    assert "EXIF" not in pg.inner_text("#details")


@pytest.fixture(scope="module")
def bundled_site() -> Any:
    """`img2loc serve` with the bundled default model (it has an in-domain score)."""
    from img2loc.inference.model_folder import DEFAULT_MODEL_DIR
    from img2loc.server import make_server

    srv = make_server(DEFAULT_MODEL_DIR, "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_fallback_answer_says_so_in_words(browser: Any, bundled_site: str) -> None:
    from img2loc import Predictor
    from img2loc.inference.predictor import FALLBACK_NOTE
    from tests.web.conftest import opener

    photo = EXIF_DIR / "drewnoakes__jpg__Nexus_4.jpg"  # a camera photo, not a street view
    want = Predictor.load().predict(str(photo))
    assert want.fallback, "the bundled model keeps its own answer for this photo"
    pages = opener(browser, bundled_site)
    app = next(pages)(**DESKTOP)
    pg = app.page
    pg.set_input_files("#file-input", str(photo))
    _wait(app, "answers", 1)
    notes = pg.inner_text("#notes")
    assert FALLBACK_NOTE in notes, notes
    assert pg.evaluate("img2loc.last.fallback") is True
    got = pg.evaluate("[img2loc.last.lat, img2loc.last.lon]")
    assert abs(got[0] - want.lat) < 0.5 and abs(got[1] - want.lon) < 0.5
    _shot(pg, "fallback-answer.png")
    # A street view keeps the model's answer and says nothing of the kind.
    pg.evaluate("img2loc.locateExample(0)")
    _wait(app, "answers", 2)
    assert FALLBACK_NOTE not in pg.inner_text("#notes")
    assert not app.errors
    pages.close()


# ---------------------------------------------------------------------- 6. the map
def test_map_legend_labels_pins_and_osm(open_app: Any) -> None:
    app = open_app(**DESKTOP)
    pg = app.page
    pg.wait_for_selector(".place-label", state="attached", timeout=20_000)
    labels = pg.eval_on_selector_all(".place-label", "els => els.map(e => e.textContent)")
    assert "Brazil" in labels and "Russia" in labels
    assert pg.is_hidden(".legend")
    pg.evaluate("img2loc.locateExample(0)")
    _wait(app, "answers", 1)
    legend = pg.inner_text(".legend")
    for word in ("guess", "true position", "likely regions"):
        assert word in legend
    size = pg.eval_on_selector(".pin.guess .dot", "e => e.getBoundingClientRect().width")
    assert size >= 24, "pins a finger can see"
    fill = "document.querySelector('path.leaflet-interactive, .leaflet-overlay-pane path')"
    before = pg.evaluate(f"{fill}.getAttribute('fill-opacity')")
    # OSM ticked: tiles show through (no opaque fill), and a failure is said in words.
    pg.route("https://tile.openstreetmap.org/**", lambda r: r.abort())
    pg.check("#osm")
    pg.wait_for_function(
        "() => document.getElementById('osm-status').textContent.includes('could not be loaded')",
        timeout=20_000,
    )
    opacities = pg.eval_on_selector_all(
        ".leaflet-overlay-pane path", "els => els.map(e => e.getAttribute('fill-opacity'))"
    )
    assert "1" not in opacities and before is not None
    assert pg.locator(".place-label").count() == 0
    pg.uncheck("#osm")
    assert pg.inner_text("#osm-status") == ""
    assert [u for u in app.outside() if "openstreetmap" not in u] == []


def test_osm_offline_says_so(open_app: Any) -> None:
    app = open_app(**DESKTOP)
    pg = app.page
    pg.context.set_offline(True)
    pg.check("#osm")
    assert "offline" in pg.inner_text("#osm-status")


# ---------------------------------------------------------------------- 7. errors
def test_each_bad_input_gets_its_own_message(open_app: Any, tmp_path: Path) -> None:
    app = open_app(**DESKTOP)
    pg = app.page
    good = _photo(tmp_path)
    pg.set_input_files("#file-input", str(good))
    _wait(app, "answers", 1)
    data = good.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.txt").write_text("not a photo")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "fake.heic").write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 64)
    want = {
        "cut.jpg": "cut off",
        "notes.txt": "is not a photo",
        "empty.jpg": "empty",
        "fake.heic": "HEIC",
    }
    for i, (name, words) in enumerate(want.items()):
        pg.set_input_files("#file-input", str(tmp_path / name))
        _wait(app, "errors", i + 1)
        msg = pg.inner_text("#locate-error")
        assert words in msg and name in msg, msg
        assert pg.is_hidden("#card") and pg.is_hidden("#result"), "the old answer stayed"
        assert pg.locator(".pin").count() == 0
        assert "error" in pg.eval_on_selector("#status", "e => e.className")
    # The Locate error is Locate's: other modes have their own status line.
    pg.click("#tab-btn-game")
    assert "HEIC" not in pg.inner_text("#status")
    assert "error" not in pg.eval_on_selector("#status", "e => e.className")
    pg.click("#tab-btn-locate")
    assert "HEIC" in pg.inner_text("#status")
    assert app.errors == []


@pytest.mark.shared_data
def test_heic_and_exif_photos_as_the_cli_reads_them(open_app: Any) -> None:
    from img2loc.data.exif import gps_from_exif
    from img2loc.data.images import open_image

    heic = EXIF_DIR / "ianare__heic__IMG_5195.HEIC"
    nikon = EXIF_DIR / "drewnoakes__jpg__Nikon_D5000.jpg"
    if not heic.is_file() or not nikon.is_file():
        pytest.skip(f"shared EXIF photos not found at {EXIF_DIR}")
    app = open_app(**DESKTOP)
    pg = app.page
    for i, p in enumerate([heic, nikon]):
        pg.set_input_files("#file-input", str(p))
        _wait(app, "handled", i + 1)
        assert pg.evaluate("document.body.dataset.errors") is None, pg.inner_text("#locate-error")
        g = gps_from_exif(open_image(p, draft=(64, 64)).info["exif_obj"])
        got = pg.evaluate("img2loc.last.gps")
        assert got == {"lat": g.lat, "lon": g.lon}
        assert "from the position in its EXIF" in pg.inner_text("#details")
        assert pg.locator(".pin.truth").count() == 1
    assert app.errors == []


def test_camera_less_device_is_told_plainly(open_app: Any) -> None:
    app = open_app(**PHONE)
    pg = app.page
    # WebKit on a device without a camera rejects the size hints first ("Invalid constraint").
    pg.evaluate(
        """() => { navigator.mediaDevices.getUserMedia = async (c) => {
            const plain = c.video === true;
            const e = new Error(plain ? 'Requested device not found' : 'Invalid constraint');
            e.name = plain ? 'NotFoundError' : 'OverconstrainedError'; throw e; }; }"""
    )
    pg.click("#camera-btn")
    pg.wait_for_selector("#locate-error:not([hidden])")
    assert pg.inner_text("#locate-error").startswith("No camera found on this device")
    assert "constraint" not in pg.inner_text("#status")


# ---------------------------------------------------------------------- 8. game
def test_game_asks_for_no_missing_file_and_names_give_nothing_away(open_app: Any) -> None:
    app = open_app(**DESKTOP)
    pg = app.page
    statuses: list[tuple[int, str]] = []
    pg.on("response", lambda r: statuses.append((r.status, r.url)))
    pg.click("#tab-btn-game")
    pg.click("#game-start")
    pg.wait_for_selector("#game-photo:not([hidden]), #game-pano:not([hidden])", timeout=30_000)
    assert [u for s, u in statuses if s >= 400] == []
    urls = pg.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
    urls = [u for u in urls if "/game/" in u]
    assert any(u.endswith("/game/locations.csv") for u in urls)
    assert pg.evaluate(
        "performance.getEntriesByType('resource').every(e => e.responseStatus < 400)"
    )
    for u in urls:
        name = u.rsplit("/", 1)[1]
        assert name == "locations.csv" or name.split(".")[0].isdigit(), u
    names = pg.eval_on_selector_all("#examples option", "els => els.map(e => e.textContent)")
    assert all("." not in n.split("·")[0] or n == "Examples…" for n in names), names
    assert not any(
        any(ch.isdigit() for ch in n.replace("Example", "").split("·")[0][3:]) for n in names
    )


def test_game_rounds_spread_over_places_and_panoramas_turn(
    browser: Any, model_dir: Path, tmp_path: Path
) -> None:
    import csv

    from img2loc.server import make_server

    rows = list(csv.DictReader((EXAMPLES_DIR / "locations.csv").open()))
    panos = [r for r in rows if r["projection"] in ("spherical", "equirectangular")]
    assert panos
    m = tmp_path / "game.csv"
    with m.open("w") as f:
        f.write("image,latitude,longitude\n")
        for r in panos:
            f.write(f"{EXAMPLES_DIR / r['image']},{r['latitude']},{r['longitude']}\n")
    srv = make_server(model_dir, "127.0.0.1", 0, game_data=m)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    ctx = browser.new_context(**DESKTOP, service_workers="block")
    try:
        pg = ctx.new_page()
        pg.goto(f"http://127.0.0.1:{srv.server_address[1]}/")
        pg.wait_for_selector("body[data-ready='1']", state="attached", timeout=60_000)
        pg.click("#tab-btn-game")
        pg.click("#game-start")
        pg.wait_for_selector("#game-pano:not([hidden])", timeout=30_000)
        assert pg.is_hidden("#game-photo")
        before = pg.evaluate("img2loc.game.viewer.heading")
        pixels = "document.getElementById('game-pano-canvas').toDataURL()"
        img0 = pg.evaluate(pixels)
        pg.click("#pano-right")
        assert pg.evaluate("img2loc.game.viewer.heading") == (before + 30) % 360
        assert pg.evaluate(pixels) != img0
        pg.focus("#game-pano-canvas")
        pg.keyboard.press("ArrowLeft")
        assert pg.evaluate("img2loc.game.viewer.heading") == (before + 15) % 360
        box = pg.locator("#game-pano-canvas").bounding_box()
        assert box is not None
        pg.mouse.move(box["x"] + 200, box["y"] + 100)
        pg.mouse.down()
        pg.mouse.move(box["x"] + 100, box["y"] + 100, steps=4)
        pg.mouse.up()
        assert pg.evaluate("img2loc.game.viewer.heading") != (before + 15) % 360
        assert "Drag" in pg.inner_text("#pano-caption")
        _shot(pg, "web-game-panorama.png")
    finally:
        ctx.close()
        srv.shutdown()
        srv.server_close()


def test_game_rounds_spread_over_places() -> None:
    import csv

    from tests.web.conftest import run_node

    rows = list(csv.DictReader((EXAMPLES_DIR / "locations.csv").open()))
    photos = [{"lat": float(r["latitude"]), "lon": float(r["longitude"])} for r in rows]
    for seed in range(5):
        got = run_node({"op": "spread", "photos": photos, "n": 5, "seed": seed})
        cities = ["stuttgart" if p["lat"] > 20 else "singapore" for p in got]
        assert len(got) == 5 and cities.count("singapore") >= 2, cities


# ---------------------------------------------------------------------- 9. keyboard
def test_keyboard_reaches_every_input(open_app: Any, tmp_path: Path) -> None:
    app = open_app(**DESKTOP)
    pg = app.page
    seen = []
    for _ in range(12):
        pg.keyboard.press("Tab")
        seen.append(pg.evaluate("document.activeElement.id || document.activeElement.textContent"))
        if seen[-1] == "photo-btn":
            break
    assert "photo-btn" in seen, seen
    # Enter on the focused button opens the file picker (the hidden input's click).
    pg.evaluate(
        """() => { const i = document.getElementById('file-input'); window.__picked = 0;
          i.click = () => { window.__picked++; }; }"""
    )
    pg.keyboard.press("Enter")
    assert pg.evaluate("window.__picked") == 1
    pg.set_input_files("#file-input", str(_photo(tmp_path)))
    _wait(app, "answers", 1)
    # Tabs follow the WAI-ARIA pattern: arrow keys move between them.
    pg.focus("#tab-btn-locate")
    pg.keyboard.press("ArrowRight")
    assert pg.evaluate("document.activeElement.id") == "tab-btn-game"
    assert pg.is_visible("#tab-game")
    # The game's pin without a mouse: move the map with the keys, Enter places the pin.
    pg.click("#game-start")
    pg.wait_for_selector("#game-photo:not([hidden]), #game-pano:not([hidden])", timeout=30_000)
    pg.focus("#map")
    pg.keyboard.press("ArrowUp")
    pg.keyboard.press("Enter")
    assert pg.locator(".pin.you").count() == 1 and pg.is_enabled("#game-guess")
    unlabeled = pg.evaluate(
        """() => [...document.querySelectorAll('button, select, input:not([hidden])')]
          .filter(e => !e.closest('[hidden]') && !(e.labels?.length || e.getAttribute('aria-label')
            || e.textContent.trim())).map(e => e.id)"""
    )
    assert unlabeled == []


# ---------------------------------------------------------------------- 11. WebKit items
def test_map_fills_its_box_and_css_loads_before_the_script(open_app: Any, site: str) -> None:
    import urllib.request

    html = urllib.request.urlopen(f"{site}/").read().decode()
    assert html.index('rel="stylesheet"') < html.index('<script type="module"')
    app = open_app(**PHONE)
    size = app.page.evaluate(
        "[img2loc.map.map.getSize().y, document.getElementById('map').clientHeight]"
    )
    assert size[0] == size[1] and size[0] > 200


def test_status_shows_the_threads_really_used(browser: Any, site: str) -> None:
    # A host without the isolation headers: ONNX Runtime falls back to one thread.
    ctx = browser.new_context(**DESKTOP, service_workers="block")
    try:
        pg = ctx.new_page()

        def strip(route: Any) -> None:
            r = route.fetch()
            h = {k: v for k, v in r.headers.items() if not k.lower().startswith("cross-origin")}
            route.fulfill(response=r, headers=h)

        pg.route("**/*", strip)
        pg.goto(f"{site}/?threads=2")
        pg.wait_for_selector("body[data-ready='1']", state="attached", timeout=60_000)
        assert pg.evaluate("crossOriginIsolated") is False
        assert pg.evaluate("[img2loc.requestedThreads, img2loc.threads]") == [2, 1]
        assert "1 thread" in pg.inner_text("#status")
        assert "without the headers" in pg.inner_text("#status")
    finally:
        ctx.close()


def test_48_megapixel_photo_is_answered(open_app: Any, big_jpeg: Path) -> None:
    w, h = 8000, 6000
    p = big_jpeg
    app = open_app(**PHONE)
    pg = app.page
    pg.set_input_files("#file-input", str(p))
    _wait(app, "handled", 1)
    assert pg.evaluate("document.body.dataset.answers") == "1", pg.inner_text("#locate-error")
    scaled = pg.evaluate("img2loc.last.scaled")
    assert scaled["from"] == "48 MP"
    tw, th = (int(v) for v in scaled["to"].split("x"))
    assert tw * th <= 4096 * 4096 and tw / th == pytest.approx(w / h, rel=0.01)
    assert "48 MP" in pg.inner_text("#notes")


# ---------------------------------------------------------------------- 12. offline app
def test_installed_app_answers_with_the_network_cut(
    browser: Any, model_dir: Path, tmp_path: Path
) -> None:
    from img2loc.server import make_server

    srv = make_server(model_dir, "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/"
    ctx = browser.new_context(**PHONE)
    try:
        pg = ctx.new_page()
        pg.goto(url)
        pg.wait_for_selector("body[data-ready='1']", state="attached", timeout=60_000)
        assert pg.evaluate("document.querySelector('link[rel=manifest]').href").endswith(
            "manifest.webmanifest"
        )
        # The worker holds the app and the model the page loaded.
        pg.wait_for_function(
            """async () => { const keys = await caches.keys();
              if (!keys.some(k => k.startsWith('img2loc-app-'))) return false;
              const d = await caches.open('img2loc-data');
              return (await d.keys()).some(r => r.url.includes('/model/'))
                && !!navigator.serviceWorker.controller; }""",
            timeout=60_000,
        )
        srv.shutdown()
        srv.server_close()  # the network is gone: nothing answers on that port any more
        pg.reload()
        pg.wait_for_selector("body[data-ready]", state="attached", timeout=60_000)
        assert pg.evaluate("document.body.dataset.ready") == "1", pg.inner_text("#status")
        pg.set_input_files("#file-input", str(_photo(tmp_path)))
        pg.wait_for_selector("body[data-answers='1']", state="attached", timeout=60_000)
        assert pg.inner_text("#answer")
        assert pg.evaluate("crossOriginIsolated")  # the cached page keeps its headers
    finally:
        ctx.close()
        srv.server_close()
