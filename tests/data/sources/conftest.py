"""Fake HTTP servers on 127.0.0.1 that answer like the photo APIs (no real network)."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest
from PIL import Image

SECRET = "SECRET-KEY-123-do-not-leak"


@dataclass
class Request:
    """One request the fake server saw."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw: str


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Reply]


def json_reply(obj: object, status: int = 200) -> Reply:
    return Reply(status, json.dumps(obj).encode(), {"Content-Type": "application/json"})


def text_reply(text: str, status: int = 200, ctype: str = "text/html") -> Reply:
    return Reply(status, text.encode(), {"Content-Type": ctype})


_JPEGS: dict[str, bytes] = {}


def jpeg(tag: str) -> bytes:
    """A tiny JPEG whose colour (hence bytes) depends on ``tag``."""
    if tag not in _JPEGS:
        r, g, b = hashlib.sha1(tag.encode()).digest()[:3]
        buf = io.BytesIO()
        Image.new("RGB", (8, 8), (r, g, b)).save(buf, format="JPEG", quality=90)
        _JPEGS[tag] = buf.getvalue()
    return _JPEGS[tag]


def jpeg_reply(tag: str) -> Reply:
    return Reply(200, jpeg(tag), {"Content-Type": "image/jpeg"})


class FakeServer:
    """ThreadingHTTPServer on port 0 in a thread, dispatching every GET to ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                req = Request(
                    parts.path,
                    dict(parse_qsl(parts.query, keep_blank_values=True)),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.path,
                )
                with outer.lock:
                    outer.requests.append(req)
                try:
                    reply = outer.handler(req)
                except Exception as e:  # a test bug must show up, not hang the client
                    reply = text_reply(f"fake server error: {e!r}", 599, "text/plain")
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def paths(self, prefix: str = "") -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path.startswith(prefix)]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], FakeServer]]:
    """Start fake servers: ``serve(handler)``; all are shut down after the test."""
    servers: list[FakeServer] = []

    def start(handler: Handler) -> FakeServer:
        s = FakeServer(handler)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


@pytest.fixture(autouse=True)
def _no_real_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's real keys in the environment must never reach a test."""
    for name in (
        "GOOGLE_MAPS_API_KEY",
        "GOOGLE_MAPS_URL_SIGNING_SECRET",
        "MAPILLARY_ACCESS_TOKEN",
        "FLICKR_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


def files_contain(root, needle: str) -> list[str]:
    """Paths under ``root`` whose bytes contain ``needle``."""
    from pathlib import Path

    return [
        str(p) for p in Path(root).rglob("*") if p.is_file() and needle.encode() in p.read_bytes()
    ]
