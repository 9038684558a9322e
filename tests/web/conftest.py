"""Shared helpers of the web tests: Node for the pure JS modules, the tiny model folder."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.inference.conftest import make_model_dir
from tests.web.browser import CHROMIUM_ARGS, chromium_path

HARNESS = Path(__file__).with_name("harness.mjs")


def run_node(request: dict[str, Any]) -> Any:
    """Run web/src code in Node on a JSON request (see harness.mjs)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip(
            "node is not installed (apt-get install nodejs); needed to run web/src in tests"
        )
    res = subprocess.run(
        [node, str(HARNESS)], input=json.dumps(request), capture_output=True, text=True, timeout=120
    )
    if res.returncode != 0:
        raise AssertionError(f"node failed: {res.stderr}")
    return json.loads(res.stdout)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("webmodel") / "tiny")


@pytest.fixture(scope="session")
def big_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 48 MP (8000x6000) JPEG with EXIF GPS, as recent iPhones take (made once)."""
    import numpy as np
    from PIL import Image

    from tests.conftest import gps_exif

    w, h = 8000, 6000
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    a = np.stack([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2).astype(np.uint8)
    p = tmp_path_factory.mktemp("big") / "big.jpg"
    Image.fromarray(a).save(p, quality=70, exif=gps_exif(48.78, 9.18))
    return p


# ---------------------------------------------------------------------- browser tests
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts"


@pytest.fixture(scope="session")
def site(model_dir: Path) -> Any:
    """`img2loc serve` on a free port with the tiny model, in a thread."""
    import threading

    from img2loc.server import make_server

    srv = make_server(model_dir, "127.0.0.1", 0)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def y4m_from_photo(
    src: Path, out: Path, size: tuple[int, int] = (640, 480), frames: int = 5
) -> Path:
    """A Y4M video (4:2:0, BT.601 full range) showing one real photo: Chromium's fake camera."""
    import numpy as np
    from PIL import Image

    im = Image.open(src).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    ycc = np.asarray(im.convert("YCbCr"))
    y = ycc[:, :, 0]
    # Chroma averaged over 2x2 blocks.
    cb = ycc[:, :, 1].reshape(size[1] // 2, 2, size[0] // 2, 2).mean(axis=(1, 3)).round()
    cr = ycc[:, :, 2].reshape(size[1] // 2, 2, size[0] // 2, 2).mean(axis=(1, 3)).round()
    frame = b"FRAME\n" + y.tobytes() + cb.astype("u1").tobytes() + cr.astype("u1").tobytes()
    head = f"YUV4MPEG2 W{size[0]} H{size[1]} F10:1 Ip A1:1 C420jpeg\n".encode()
    out.write_bytes(head + frame * frames)
    return out


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One headless Chromium for all web tests, with a fake camera fed from a real photo."""
    exe = chromium_path()
    if not exe.exists():
        pytest.skip(
            "Chromium is not installed: `apt-get install chromium chromium-driver` "
            "(.ci/run does this)"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")
    from img2loc.server.app import EXAMPLES_DIR

    tmp = tmp_path_factory.mktemp("chromium")
    # A flat (perspective) example, as a phone camera would see the street.
    rows = (EXAMPLES_DIR / "locations.csv").read_text().splitlines()[1:]
    flat = next(r.split(",")[0] for r in rows if r.endswith(",perspective"))
    video = y4m_from_photo(EXAMPLES_DIR / flat, tmp / "camera.y4m")
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(exe), args=args, headless=True)
        yield b
        b.close()


# ---------------------------------------------------------------------- pages
class Page:
    """A page of the app plus every URL it requested."""

    def __init__(self, page: Any, origin: str) -> None:
        self.page, self.origin, self.urls = page, origin, []
        self.errors: list[str] = []
        page.on("request", lambda r: self.urls.append(r.url))
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def ready(self) -> None:
        self.page.wait_for_selector("body[data-ready]", state="attached", timeout=60_000)
        assert self.page.evaluate("document.body.dataset.ready") == "1", self.page.inner_text(
            "#status"
        )

    def wait_answers(self, n: int) -> None:
        self.page.wait_for_selector(f'body[data-answers="{n}"]', state="attached", timeout=30_000)

    def outside(self) -> list[str]:
        return [u for u in self.urls if not u.startswith((self.origin + "/", "data:", "blob:"))]


def opener(browser: Any, site: str) -> Iterator[Any]:
    contexts = []

    def go(query: str = "", **ctx: Any) -> Page:
        # No service worker (it copies ~20 MB per context); the offline test makes its own.
        context = browser.new_context(**{"service_workers": "block", **ctx})
        contexts.append(context)
        p = Page(context.new_page(), site)
        p.page.goto(f"{site}/{query}")
        p.ready()
        return p

    yield go
    for c in contexts:
        c.close()


@pytest.fixture
def open_app(browser: Any, site: str) -> Iterator[Any]:
    """Open the app (tiny model) in a fresh browser context: open_app(query, **context)."""
    yield from opener(browser, site)
