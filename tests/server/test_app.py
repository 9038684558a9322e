"""`img2loc serve`: headers, content types, path traversal, methods, limits, binding."""

from __future__ import annotations

import gzip
import html
import http.client
import io
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from img2loc.server import CSP, ServeError, load_game_data, make_server, write_site
from img2loc.server.app import STATIC_DIR, safe_join
from tests.inference.conftest import make_model_dir


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("srv") / "tiny")


@pytest.fixture(scope="module")
def static(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in app folder, plus a secret beside it and a symlink pointing at it."""
    root = tmp_path_factory.mktemp("site")
    s = root / "static"
    (s / "assets").mkdir(parents=True)
    (s / "ort").mkdir()
    (s / "index.html").write_text("<!doctype html><title>app</title>" + "x" * 2000)
    (s / "assets" / "app-1234.js").write_text("console.log(1);" * 200)
    (s / "ort" / "ort-wasm-simd-threaded.wasm").write_bytes(b"\0asm" + b"\1" * 5000)
    (s / "ort" / "ort-wasm-simd-threaded.mjs").write_text("export default 1;")
    (root / "secret.txt").write_text("top secret")
    (s / "link.txt").symlink_to(root / "secret.txt")
    return s


@pytest.fixture(scope="module")
def server(static: Path, model_dir: Path) -> Iterator[tuple[str, int]]:
    srv = make_server(model_dir, "127.0.0.1", 0, static_dir=static)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield "127.0.0.1", srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def request(
    server: tuple[str, int], path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    c = http.client.HTTPConnection(*server, timeout=10)
    headers = headers or {}
    c.putrequest(method, path, skip_host="Host" in headers, skip_accept_encoding=True)
    for k, v in headers.items():
        c.putheader(k, v)
    c.endheaders()
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def test_index_has_isolation_and_csp_headers(server: tuple[str, int]) -> None:
    status, h, body = request(server, "/")
    assert status == 200 and b"<title>app</title>" in body
    assert h["cross-origin-opener-policy"] == "same-origin"
    assert h["cross-origin-embedder-policy"] == "require-corp"
    assert h["content-security-policy"] == CSP
    assert "'wasm-unsafe-eval'" in CSP and "'unsafe-eval'" not in CSP.replace("wasm-unsafe", "")
    assert h["x-content-type-options"] == "nosniff"
    assert h["content-type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize(
    ("path", "ctype"),
    [
        ("/ort/ort-wasm-simd-threaded.wasm", "application/wasm"),
        ("/ort/ort-wasm-simd-threaded.mjs", "text/javascript; charset=utf-8"),
        ("/assets/app-1234.js", "text/javascript; charset=utf-8"),
        ("/model/cells.json", "application/json"),
        ("/model/preprocess.json", "application/json"),
        ("/model/model.onnx", "application/octet-stream"),
        ("/model/model.browser.onnx", "application/octet-stream"),
        ("/examples/locations.csv", "text/csv; charset=utf-8"),
    ],
)
def test_content_types(server: tuple[str, int], path: str, ctype: str) -> None:
    status, h, _ = request(server, path)
    assert status == 200, path
    assert h["content-type"] == ctype
    assert h["cross-origin-embedder-policy"] == "require-corp"


def test_model_files_match_the_folder(server: tuple[str, int], model_dir: Path) -> None:
    _, _, body = request(server, "/model/model.onnx")
    assert body == (model_dir / "model.onnx").read_bytes()


def test_gzip_when_accepted(server: tuple[str, int], static: Path) -> None:
    _, h, body = request(
        server, "/ort/ort-wasm-simd-threaded.wasm", headers={"Accept-Encoding": "gzip"}
    )
    assert h["content-encoding"] == "gzip" and h["vary"] == "Accept-Encoding"
    assert gzip.decompress(body) == (static / "ort" / "ort-wasm-simd-threaded.wasm").read_bytes()
    _, h, body = request(server, "/ort/ort-wasm-simd-threaded.wasm")
    assert "content-encoding" not in h and body.startswith(b"\0asm")


def test_hashed_assets_are_cached_index_is_not(server: tuple[str, int]) -> None:
    assert "immutable" in request(server, "/assets/app-1234.js")[1]["cache-control"]
    assert request(server, "/")[1]["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    "path", ["/", "/ort/ort-wasm-simd-threaded.wasm", "/model/model.onnx", "/game/locations.csv"]
)
def test_second_visit_revalidates_without_a_body(server: tuple[str, int], path: str) -> None:
    for enc in ({}, {"Accept-Encoding": "gzip"}):
        status, h, body = request(server, path, headers=enc)
        assert status == 200 and h["etag"] and body
        status, h2, body = request(server, path, headers={**enc, "If-None-Match": h["etag"]})
        assert status == 304 and body == b"" and h2["etag"] == h["etag"]
        assert h2["cache-control"] == h["cache-control"]
    # Another representation (gzip or not) has another tag: no wrong body from a cache.
    plain = request(server, path)[1]["etag"]
    assert request(server, path, headers={"If-None-Match": '"other"'})[0] == 200
    if path.endswith((".wasm", "/")):
        assert request(server, path, headers={"Accept-Encoding": "gzip"})[1]["etag"] != plain


def test_export_json_has_no_local_paths(tmp_path: Path, static: Path, model_dir: Path) -> None:
    import json
    import shutil

    m = tmp_path / "model"
    shutil.copytree(model_dir, m)
    info = {
        "checkpoint": "/home/someone/runs/x/checkpoints/best.ckpt",
        "data": "Training config: data `shards`='/data/secret/shards', `n`=3",
        "parity": {"images": "C:\\Users\\me\\dev.csv", "n": 3},
        "note": "see https://example.org/a/b and 1/25/200 km",
    }
    (m / "export.json").write_text(json.dumps(info))
    srv = make_server(m, port=0, static_dir=static)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        _, _, body = request(("127.0.0.1", srv.server_address[1]), "/model/export.json")
    finally:
        srv.shutdown()
        srv.server_close()
    got = json.loads(body)
    assert got["checkpoint"] == "best.ckpt"
    assert got["data"] == "Training config: data `shards`='shards', `n`=3"
    assert got["parity"] == {"images": "dev.csv", "n": 3}
    assert got["note"] == info["note"]
    out = write_site(tmp_path / "site", m, static_dir=static)
    assert "/home/someone" not in (out / "model" / "export.json").read_text()


def test_bundled_model_has_no_local_paths() -> None:
    from img2loc.inference.predictor import DEFAULT_MODEL_DIR

    for name in ("export.json", "README.md"):
        text = (DEFAULT_MODEL_DIR / name).read_text()
        assert not re.search(r"(?<![\w.:/])/(home|work|root|tmp|Users|data)/", text), name


def test_game_defaults_to_the_examples_under_neutral_names(server: tuple[str, int]) -> None:
    from img2loc.server.app import EXAMPLES_DIR

    status, h, body = request(server, "/game/locations.csv")
    assert status == 200 and h["content-type"].startswith("text/csv")
    rows = body.decode().splitlines()
    assert rows[0] == "image,latitude,longitude"
    names = [r.split(",")[0] for r in rows[1:]]
    n = len((EXAMPLES_DIR / "locations.csv").read_text().splitlines()) - 1
    assert names == [f"img/{i}.jpg" for i in range(n)]
    first = (
        EXAMPLES_DIR / (EXAMPLES_DIR / "locations.csv").read_text().splitlines()[1].split(",")[0]
    )
    assert request(server, "/game/img/0.jpg")[2] == first.read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/assets/..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "//etc/passwd",
        "/%2fetc%2fpasswd",
        "/link.txt",  # symlink out of the folder
        "/model/../../secret.txt",
        "/model/export.py",  # not on the model allow-list
        "/model/",
        "/examples/../../../cli.py",
        "/game/img/99.jpg",  # not in the game's set
        "/game/../examples/locations.csv",
        "/img2loc-ca.crt",  # only with --https
        "/nope.html",
        "/index.html%00.png",
        "/%ff%fe",
    ],
)
def test_no_path_traversal(server: tuple[str, int], path: str) -> None:
    status, _, body = request(server, path)
    assert status == 404, path
    assert b"secret" not in body


def test_safe_join_rejects_escapes(static: Path) -> None:
    assert safe_join(static, "index.html") == (static / "index.html").resolve()
    for bad in ["../secret.txt", "/etc/passwd", "a/../../secret.txt", "link.txt", "", "assets"]:
        assert safe_join(static, bad) is None, bad


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"])
def test_only_get_and_head(server: tuple[str, int], method: str) -> None:
    status, h, _ = request(server, "/", method)
    assert status == 405 and h["allow"] == "GET, HEAD"


def test_head_has_no_body(server: tuple[str, int]) -> None:
    status, h, body = request(server, "/", "HEAD")
    assert status == 200 and body == b"" and int(h["content-length"]) > 0


def test_oversized_requests_refused(server: tuple[str, int]) -> None:
    assert request(server, "/" + "a" * 5000)[0] == 414
    assert request(server, "/", headers={"Content-Length": "10"})[0] == 413


def test_foreign_host_header_refused(server: tuple[str, int]) -> None:
    # DNS rebinding: a page on evil.example resolving to 127.0.0.1 must not read the app.
    assert request(server, "/", headers={"Host": "evil.example"})[0] == 421
    assert request(server, "/", headers={"Host": f"localhost:{server[1]}"})[0] == 200


def test_binds_loopback_by_default(static: Path, model_dir: Path) -> None:
    srv = make_server(model_dir, port=0, static_dir=static)
    try:
        assert srv.server_address[0] == "127.0.0.1"
    finally:
        srv.server_close()


def test_port_in_use_says_what_to_do(static: Path, model_dir: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(ServeError, match="--port"):
            make_server(model_dir, port=s.getsockname()[1], static_dir=static)


def test_bad_folders_say_how_to_fix(tmp_path: Path, static: Path, model_dir: Path) -> None:
    with pytest.raises(ServeError, match="img2loc export"):
        make_server(tmp_path, port=0, static_dir=static)
    with pytest.raises(ServeError, match="make web"):
        make_server(model_dir, port=0, static_dir=tmp_path)


def test_game_data_serves_only_listed_photos(tmp_path: Path, static: Path, model_dir: Path) -> None:
    (tmp_path / "pics").mkdir()
    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(jpeg, "JPEG")
    (tmp_path / "pics" / "a.jpg").write_bytes(jpeg.getvalue())
    (tmp_path / "other.jpg").write_bytes(b"\xff\xd8\xffnot listed")
    m = tmp_path / "game.csv"
    m.write_text("path,lat,lon\npics/a.jpg,48.1,11.5\nmissing.jpg,1,2\npics/a.jpg,95,0\n")
    game = load_game_data(m)
    assert list(game.files) == ["img/0.jpg"]
    assert game.csv.decode().splitlines() == ["image,latitude,longitude", "img/0.jpg,48.1,11.5"]
    srv = make_server(model_dir, port=0, static_dir=static, game_data=m)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        addr = ("127.0.0.1", srv.server_address[1])
        assert request(addr, "/game/img/0.jpg")[2] == jpeg.getvalue()
        assert request(addr, "/game/locations.csv")[0] == 200
        assert request(addr, "/game/other.jpg")[0] == 404
        assert request(addr, "/game/pics/a.jpg")[0] == 404
    finally:
        srv.shutdown()
        srv.server_close()
    (tmp_path / "empty.csv").write_text("image,latitude,longitude\nnone.jpg,1,2\n")
    with pytest.raises(ServeError, match="no usable photos"):
        load_game_data(tmp_path / "empty.csv")
    with pytest.raises(ServeError, match="not found"):
        load_game_data(tmp_path / "nowhere.csv")


def test_game_from_a_folder_of_geotagged_photos(tmp_path: Path) -> None:
    from tests.conftest import gps_exif, jpeg_bytes

    rng = np.random.default_rng(0)
    (tmp_path / "trip" / "day2").mkdir(parents=True)
    (tmp_path / "trip" / "Eiffel Tower.jpg").write_bytes(
        jpeg_bytes(rng, exif=gps_exif(48.858, 2.294))
    )
    (tmp_path / "trip" / "day2" / "b.jpg").write_bytes(
        jpeg_bytes(rng, exif=gps_exif(-33.86, 151.2))
    )
    (tmp_path / "trip" / "no-gps.jpg").write_bytes(jpeg_bytes(rng))
    (tmp_path / "trip" / "notes.txt").write_text("not a photo")
    game = load_game_data(tmp_path / "trip")
    assert sorted(game.files) == ["img/0.jpg", "img/1.jpg"]
    rows = game.csv.decode().splitlines()[1:]
    assert "Eiffel" not in game.csv.decode()
    lats = sorted(round(float(r.split(",")[1]), 2) for r in rows)
    assert lats == [-33.86, 48.86]
    assert [ref for ref, _ in game.skipped] == ["no-gps.jpg"]
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "a.jpg").write_bytes(jpeg_bytes(rng))
    with pytest.raises(ServeError, match="EXIF has a GPS position"):
        load_game_data(tmp_path / "none")


def test_write_site(tmp_path: Path, static: Path, model_dir: Path) -> None:
    out = write_site(tmp_path / "site", model_dir, static_dir=static)
    assert (out / "index.html").is_file() and (out / "model" / "cells.json").is_file()
    assert (out / "examples" / "locations.csv").is_file()
    assert (out / "game" / "locations.csv").is_file() and (out / "game" / "img" / "0.jpg").is_file()
    assert "Cross-Origin-Embedder-Policy: require-corp" in (out / "_headers").read_text()
    with pytest.raises(ServeError, match="not empty"):
        write_site(out, model_dir, static_dir=static)


def test_csp_matches_the_web_build() -> None:
    cfg = (Path(__file__).resolve().parents[2] / "web" / "vite.config.js").read_text()
    block = cfg[cfg.index("export const CSP") :]
    block = block[: block.index("].join")]
    assert "; ".join(re.findall(r'"([^"]+)"', block)) == CSP
    index = STATIC_DIR / "index.html"
    if index.is_file():  # the committed build carries the same policy as a meta tag
        assert CSP.split("; frame-ancestors")[0] in html.unescape(index.read_text())


def test_serve_cli_imports_no_torch(model_dir: Path) -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from img2loc.cli import app; "
        f"r = CliRunner().invoke(app, ['serve', '--model', {str(model_dir)!r}, '--port', '1', "
        "'--host', '203.0.113.1']); print(r.output); "
        "assert 'torch' not in sys.modules, 'torch imported'; assert r.exit_code == 2"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "pick another --port" in res.stdout + res.stderr
