"""Screenshots of the web app for the docs: desktop and phone after an answer, the game.

Serves the app with the bundled model, opens it in headless Chromium (desktop 1366x800
and a 390x844 touch phone) and answers bundled example photos (CC BY-SA 4.0, see
src/img2loc/assets/examples/ATTRIBUTION.md). Writes PNGs to docs/ (or --out).

    python scripts/web_screenshots.py [--out docs]
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from playwright.sync_api import sync_playwright
    from tests.web.browser import CHROMIUM_ARGS, chromium_path

    from img2loc.inference.predictor import DEFAULT_MODEL_DIR
    from img2loc.server import make_server

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs")
    ap.add_argument("--example", type=int, default=2, help="example shown on the desktop")
    ap.add_argument("--phone-example", type=int, default=11, help="example shown on the phone")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    srv = make_server(DEFAULT_MODEL_DIR, "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/?sw=0"
    phone = {
        "viewport": {"width": 390, "height": 844},
        "is_mobile": True,
        "has_touch": True,
        "device_scale_factor": 2,
    }
    desktop = {"viewport": {"width": 1366, "height": 800}}

    def ready(pg: object) -> None:
        pg.goto(url)  # type: ignore[attr-defined]
        pg.wait_for_selector("body[data-ready='1']", state="attached", timeout=60_000)  # type: ignore[attr-defined]

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(chromium_path()), args=CHROMIUM_ARGS)
        for name, ctx, ex in [
            ("web-desktop.png", desktop, a.example),
            ("web-phone.png", phone, a.phone_example),
        ]:
            c = b.new_context(**ctx)
            pg = c.new_page()
            ready(pg)
            pg.evaluate(f"img2loc.locateExample({ex})")
            pg.wait_for_selector("body[data-answers='1']", state="attached", timeout=60_000)
            pg.wait_for_timeout(500)
            pg.screenshot(path=str(a.out / name))
            print("wrote", a.out / name, "|", pg.inner_text("#status"))
            c.close()
        c = b.new_context(**desktop)
        pg = c.new_page()
        ready(pg)
        pg.click("#tab-btn-game")
        pg.evaluate(
            "Math.random = (() => { let s = 7;"
            " return () => (s = (s * 16807) % 2147483647) / 2147483647; })()"
        )
        pg.click("#game-start")
        pg.wait_for_selector("#game-photo:not([hidden]), #game-pano:not([hidden])", timeout=60_000)
        for r in range(2):
            box = pg.locator("#map").bounding_box()
            pg.mouse.click(box["x"] + box["width"] * 0.52, box["y"] + box["height"] * 0.38)
            pg.click("#game-guess")
            pg.wait_for_selector(f"#game-table tbody tr:nth-child({r + 1})")
            if r == 0:
                pg.click("#game-next")
                pg.wait_for_selector(
                    "#game-photo:not([hidden]), #game-pano:not([hidden])", timeout=60_000
                )
        pg.wait_for_timeout(500)
        pg.screenshot(path=str(a.out / "web-game.png"))
        print("wrote", a.out / "web-game.png", "|", pg.inner_text("#game-round"))
        c.close()
        b.close()
    srv.shutdown()
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
