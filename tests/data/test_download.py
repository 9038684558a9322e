"""URL records downloaded with img2dataset from a local fake server (never the internet)."""

import hashlib
import io
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from img2loc.data.download import download, find_img2dataset
from img2loc.data.manifest import make_manifest

try:
    I2D = find_img2dataset()
except FileNotFoundError:
    I2D = None
needs_i2d = pytest.mark.skipif(
    I2D is None and not os.environ.get("CI"), reason="img2dataset not installed"
)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/missing"):
            self.send_error(404)
            return
        if self.path.startswith("/html"):
            body = b"<html>rate limited</html>"
            ctype = "text/html"
        else:
            seed = int(self.path.strip("/").split(".")[0])
            arr = np.random.default_rng(seed).integers(0, 255, (300, 500, 3), dtype=np.uint8)
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, "JPEG")
            body, ctype = buf.getvalue(), "image/jpeg"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


@needs_i2d
def test_download_with_img2dataset(server, tmp_path: Path):
    recs = [
        {
            "key": f"k{i}",
            "image": f"{server}/{i}.jpg",
            "latitude": i,
            "longitude": -i,
            "location_id": f"loc{i // 2}",
        }
        for i in range(12)
    ]
    recs += [
        {"key": "gone", "image": f"{server}/missing.jpg", "latitude": 0, "longitude": 0},
        {"key": "page", "image": f"{server}/html.jpg", "latitude": 0, "longitude": 0},
        {"key": "local", "image": "/tmp/x.jpg", "latitude": 0, "longitude": 0},
    ]
    df, report = download(
        make_manifest(recs),
        tmp_path / "dl",
        image_size=128,
        processes=1,
        threads=4,
        retries=0,
        samples_per_shard=5,
    )
    assert sorted(df["key"]) == sorted(f"k{i}" for i in range(12))
    assert df.set_index("key").loc["k3", "latitude"] == 3
    assert df.set_index("key").loc["k3", "location_id"] == "loc1"
    for p in df["image"]:
        with Image.open(p) as im:
            assert max(im.size) == 128
    failed = dict(report.skipped)
    assert len(failed) == 2 and f"{server}/missing.jpg" in failed
    # Running again finds everything done and returns the same result.
    before = {p: hashlib.sha1(Path(p).read_bytes()).hexdigest() for p in df["image"]}
    df2, _ = download(
        make_manifest(recs),
        tmp_path / "dl",
        image_size=128,
        processes=1,
        threads=4,
        retries=0,
        samples_per_shard=5,
    )
    assert {p: hashlib.sha1(Path(p).read_bytes()).hexdigest() for p in df2["image"]} == before


def test_missing_img2dataset_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("IMG2LOC_IMG2DATASET", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="make setup-download"):
        find_img2dataset()


class _SlowHandler(_Handler):
    def do_GET(self):
        import time

        time.sleep(0.03)
        super().do_GET()


@needs_i2d
def test_kill_9_then_rerun_downloads_the_same(tmp_path: Path):
    import signal
    import subprocess
    import sys
    import time

    from img2loc.data.manifest import write_manifest

    srv = ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    recs = [
        {"key": f"k{i}", "image": f"{base}/{i}.jpg", "latitude": 1, "longitude": 2}
        for i in range(60)
    ]
    write_manifest(make_manifest(recs), tmp_path / "urls.parquet")
    exe = str(Path(sys.executable).with_name("img2loc"))

    def args(name):
        return [
            exe,
            "data",
            "download",
            str(tmp_path / "urls.parquet"),
            "-o",
            str(tmp_path / name),
            "--manifest-out",
            str(tmp_path / f"{name}.parquet"),
            "--processes",
            "1",
            "--threads",
            "2",
            "--image-size",
            "64",
            "--retries",
            "0",
        ]

    subprocess.run(args("ref"), check=True, capture_output=True, timeout=240)
    proc = subprocess.Popen(args("killed"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((tmp_path / "killed").rglob("*.jpg"))) < 5:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)
    assert len(list((tmp_path / "killed").rglob("*.jpg"))) < 60, "kill landed after the end"
    subprocess.run(args("killed"), check=True, capture_output=True, timeout=240)
    srv.shutdown()

    def digest(name):
        return {
            p.relative_to(tmp_path / name).as_posix(): hashlib.sha1(p.read_bytes()).digest()
            for p in (tmp_path / name).rglob("*.jpg")
        }

    assert digest("killed") == digest("ref") and len(digest("ref")) == 60
