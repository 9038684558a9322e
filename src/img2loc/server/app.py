"""A small, strict static file server for the web app, the model and example photos.

URL space (nothing else is reachable):

* ``/model/<file>`` — the model folder's files the browser needs (an allow-list),
* ``/examples/<file>`` — the bundled CC BY-SA example photos,
* ``/game/locations.csv`` and ``/game/img/<n>.<ext>`` — the game's photos (a ``--game``
  manifest or folder, else the bundled examples), renamed so no local path (and no
  name that could give the place away) shows,
* ``/img2loc-ca.crt`` — with ``--https``, the local certificate authority to install on
  a phone (see :mod:`img2loc.server.tls`),
* everything else — the built app (``static/``), including its service worker.

Every answer carries COOP/COEP (so onnxruntime-web may use threads), a strict
Content-Security-Policy and ``nosniff``. Paths are resolved and must stay inside
their folder (``..``, encoded dots, absolute paths and symlinks pointing out all
fail); only GET and HEAD are answered. Compressible files go out gzipped when the
browser accepts it (the 14 MB WebAssembly runtime becomes 3.7 MB). Every file carries an
ETag: a second visit revalidates (304, no body) instead of downloading the ~9 MB again;
the hashed ``assets/`` are cached for good.
"""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import shutil
import sys
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from img2loc.inference import model_folder
from img2loc.inference.demo import EXAMPLES_DIR
from img2loc.server.checks import (
    MODEL_FILES,
    STATIC_DIR,
    ServeError,
    check_model_dir,
    check_static_dir,
    portable_export_json,
)
from img2loc.server.game import GameData, default_game, load_game_data

#: Kept in step with CSP in web/vite.config.js (a test checks they agree). OSM tiles are
#: allowed as images only for the optional online layer the user switches on.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "style-src 'self'",
        "img-src 'self' data: blob: https://tile.openstreetmap.org",
        "connect-src 'self'",
        "worker-src 'self'",
        "media-src 'self' blob: mediastream:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS: dict[str, str] = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), display-capture=(self), microphone=(), geolocation=()",
}
CONTENT_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".csv": "text/csv; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".webmanifest": "application/manifest+json",
    ".crt": "application/x-x509-ca-cert",
}
COMPRESSIBLE = frozenset(
    {".html", ".js", ".mjs", ".css", ".json", ".wasm", ".csv", ".md", ".svg", ".webmanifest"}
)
#: Longest request line accepted (paths here are short; anything longer is an attack or a bug).
MAX_REQUEST_LINE = 4096
#: Files above this size go out uncompressed (the gzip cache lives in memory).
MAX_GZIP_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class SiteConfig:
    """What the server exposes."""

    static_dir: Path
    model_dir: Path | None
    examples_dir: Path | None = EXAMPLES_DIR
    game: GameData | None = None
    quiet: bool = True
    #: The local certificate authority offered at /img2loc-ca.crt (``--https`` only).
    ca_cert: Path | None = None
    _gzip_cache: dict[tuple[str, int, int], bytes] = field(default_factory=dict, compare=False)
    _gzip_lock: threading.Lock = field(default_factory=threading.Lock, compare=False)

    def gzipped(self, path: Path, size: int, mtime_ns: int) -> bytes:
        """gzip of a file, computed once per (path, size, mtime)."""
        key = (str(path), size, mtime_ns)
        with self._gzip_lock:
            hit = self._gzip_cache.get(key)
        if hit is None:
            hit = gzip.compress(path.read_bytes(), compresslevel=6, mtime=0)
            with self._gzip_lock:
                self._gzip_cache[key] = hit
        return hit


def safe_join(root: Path, rel: str) -> Path | None:
    """``root/rel`` if it is a file inside ``root`` after resolving symlinks, else None."""
    if not rel or "\\" in rel or "\x00" in rel:
        return None
    parts = PurePosixPath(rel).parts
    if PurePosixPath(rel).is_absolute() or any(p in ("..", ".") for p in parts):
        return None
    try:
        base = root.resolve(strict=True)
        path = (base / Path(*parts)).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    if not path.is_relative_to(base) or not path.is_file():
        return None
    return path


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Handler(BaseHTTPRequestHandler):
    """Serves :class:`SiteConfig`'s files; set ``site`` on a subclass."""

    site: SiteConfig
    server_version = "img2loc"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    # ------------------------------------------------------------------ plumbing
    def log_message(self, format: str, *args: Any) -> None:
        if not self.site.quiet:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    def end_headers(self) -> None:
        for k, v in SECURITY_HEADERS.items():
            self.send_header(k, v)
        super().end_headers()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        body = f"{code} {message or HTTPStatus(code).phrase}\n".encode()
        self.send_response(code, message)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if code == HTTPStatus.METHOD_NOT_ALLOWED:
            self.send_header("Allow", "GET, HEAD")
        if code >= 400 and code != HTTPStatus.NOT_FOUND:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def parse_request(self) -> bool:
        raw: bytes = getattr(self, "raw_requestline", b"")
        if len(raw) > MAX_REQUEST_LINE:
            self.requestline = ""
            self.request_version = "HTTP/1.1"
            self.command = ""
            self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
            return False
        if not super().parse_request():
            return False
        length = self.headers.get("Content-Length", "0").strip() or "0"
        if not length.isdigit() or int(length) > 0 or "Transfer-Encoding" in self.headers:
            self.send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request bodies are not accepted")
            return False
        return True

    def _refuse(self) -> None:
        self.send_error(HTTPStatus.METHOD_NOT_ALLOWED)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse

    # ------------------------------------------------------------------ routing
    def resolve(self, raw_path: str) -> Path | bytes | None:
        """The file (or generated bytes) a URL path names, or None."""
        path = unquote(urlsplit(raw_path).path, errors="strict")
        if not path.startswith("/") or "//" in path:
            return None
        rel = path[1:]
        site = self.site
        if rel == "" or rel.endswith("/"):
            rel += "index.html"
        head, _, rest = rel.partition("/")
        if rel == "img2loc-ca.crt":
            return site.ca_cert
        if head == "model":
            if site.model_dir is None or rest not in MODEL_FILES:
                return None
            found = safe_join(site.model_dir, rest)
            if found is not None and rest == model_folder.EXPORT_FILE:
                return portable_export_json(found)
            return found
        if head == "examples":
            return None if site.examples_dir is None else safe_join(site.examples_dir, rest)
        if head == "game":
            if site.game is None:
                return None
            if rest == "locations.csv":
                return site.game.csv
            return site.game.files.get(rest)
        return safe_join(site.static_dir, rel)

    def _host_ok(self) -> bool:
        """When bound to loopback, only loopback Host names (blocks DNS rebinding)."""
        bound = str(self.server.server_address[0])  # type: ignore[index]
        if not _is_loopback(bound):
            return True
        host = (self.headers.get("Host") or "").strip()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.strip("[]")
        return _is_loopback(name)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        if not self._host_ok():
            self.send_error(HTTPStatus.MISDIRECTED_REQUEST, "unexpected Host header")
            return
        try:
            target = self.resolve(self.path)
        except UnicodeDecodeError:
            target = None
        if target is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        name = self.path.split("?", 1)[0] if isinstance(target, bytes) else target.name
        suffix = PurePosixPath(name).suffix.lower()
        ctype = CONTENT_TYPES.get(suffix, "application/octet-stream")
        encoding = None
        if isinstance(target, bytes):
            body: bytes | Path = target
            size = len(target)
            tag = hashlib.sha256(target).hexdigest()[:20]
        else:
            st = target.stat()
            body, size = target, st.st_size
            tag = f"{st.st_size:x}-{st.st_mtime_ns:x}"
            accepts = "gzip" in self.headers.get("Accept-Encoding", "")
            if accepts and suffix in COMPRESSIBLE and 1024 < size <= MAX_GZIP_BYTES:
                body = self.site.gzipped(target, size, st.st_mtime_ns)
                size, encoding = len(body), "gzip"
        etag = f'"{tag}{"-gz" if encoding else ""}"'
        # Vite's assets/ names carry content hashes; everything else may change under a name
        # and is revalidated (a 304 without a body when unchanged).
        immutable = self.path.startswith("/assets/")
        cache = "max-age=31536000, immutable" if immutable else "no-cache"
        if etag in [t.strip() for t in self.headers.get("If-None-Match", "").split(",")]:
            self.send_response(HTTPStatus.NOT_MODIFIED)
            self.send_header("ETag", etag)
            self.send_header("Cache-Control", cache)
            if suffix in COMPRESSIBLE:
                self.send_header("Vary", "Accept-Encoding")
            self.end_headers()
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(size))
        if encoding:
            self.send_header("Content-Encoding", encoding)
        if suffix in COMPRESSIBLE:
            self.send_header("Vary", "Accept-Encoding")
        self.send_header("ETag", etag)
        self.send_header("Cache-Control", cache)
        self.end_headers()
        if head:
            return
        try:
            if isinstance(body, bytes):
                self.wfile.write(body)
            else:
                with body.open("rb") as f:
                    shutil.copyfileobj(f, self.wfile, 1024 * 1024)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer whose worker threads never keep the process alive."""

    daemon_threads = True
    block_on_close = False


def make_server(
    model_dir: Path | None,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    game_data: Path | None = None,
    static_dir: Path = STATIC_DIR,
    examples_dir: Path | None = EXAMPLES_DIR,
    quiet: bool = True,
    tls: Any = None,
) -> Server:
    """A ready (bound, not yet serving) server; ``port=0`` picks a free port.

    ``tls``: a :class:`img2loc.server.tls.Certificate` to serve HTTPS with.
    """
    examples = examples_dir if examples_dir is not None and examples_dir.is_dir() else None
    game = default_game(examples) if game_data is None else load_game_data(game_data)
    if game is not None:
        game.report()
    site = SiteConfig(
        static_dir=check_static_dir(static_dir),
        model_dir=None if model_dir is None else check_model_dir(model_dir),
        examples_dir=examples,
        game=game,
        quiet=quiet,
        ca_cert=None if tls is None else tls.ca_cert,
    )
    handler = type("SiteHandler", (Handler,), {"site": site})
    try:
        srv = Server((host, port), handler)
    except OSError as e:
        raise ServeError(
            f"cannot listen on {host}:{port} ({e.strerror or e}); pick another --port"
        ) from None
    if tls is not None:
        srv.socket = tls.context().wrap_socket(srv.socket, server_side=True)
    return srv
