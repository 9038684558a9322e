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
import io
import ipaddress
import json
import math
import shutil
import sys
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from img2loc.data.images import ImageError, peek_image
from img2loc.data.io import portable_paths
from img2loc.errors import Img2locError
from img2loc.files import dir_mode
from img2loc.inference import model_folder
from img2loc.inference.demo import EXAMPLES_DIR

#: The built web app inside the package.
STATIC_DIR = Path(__file__).resolve().parent / "static"
#: Files of a model folder that the browser may fetch.
MODEL_FILES = model_folder.BROWSER_FILES
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
#: Photo types a game can show (what browsers display in an <img>).
GAME_IMAGE_TYPES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif"})
#: Longest request line accepted (paths here are short; anything longer is an attack or a bug).
MAX_REQUEST_LINE = 4096
#: Files above this size go out uncompressed (the gzip cache lives in memory).
MAX_GZIP_BYTES = 64 * 1024 * 1024


class ServeError(Img2locError, ValueError):
    """The server cannot start as asked; the message says how to fix it."""


@dataclass(frozen=True)
class GameData:
    """Photos of a ``--game-data`` manifest: served names -> local files, plus their CSV."""

    files: Mapping[str, Path]
    csv: bytes
    #: Rows left out, as (image reference, reason).
    skipped: tuple[tuple[str, str], ...] = ()

    def report(self, stream: Any = None, limit: int = 10) -> None:
        """Tell the user which rows were left out and why (to stderr by default)."""
        stream = stream or sys.stderr
        if not self.skipped:
            return
        stream.write(f"game data: {len(self.skipped)} photo(s) left out:\n")
        for ref, why in self.skipped[:limit]:
            stream.write(f"  {ref}: {why}\n")
        if len(self.skipped) > limit:
            stream.write(f"  ... and {len(self.skipped) - limit} more\n")


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


def check_model_dir(model_dir: Path) -> Path:
    """A model folder the app can load; raises :class:`ServeError` saying what is missing."""
    if not model_dir.is_dir():
        raise ServeError(f"model folder {model_dir} not found; write one with `img2loc export`")
    missing = model_folder.missing_files(model_dir)
    if missing:
        raise ServeError(
            f"{model_dir} lacks {', '.join(missing)}; is it a model folder written by "
            "`img2loc export`?"
        )
    return model_dir.resolve()


def check_static_dir(static_dir: Path) -> Path:
    if not (static_dir / "index.html").is_file():
        raise ServeError(
            f"the web app is not built ({static_dir / 'index.html'} is missing); "
            "run `make web` (needs npm) or reinstall img2loc"
        )
    return static_dir.resolve()


def portable_export_json(path: Path) -> bytes | None:
    """A model folder's export.json without local absolute paths (older exports had them)."""
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return json.dumps(portable_paths(info), indent=2).encode()


def _game_rows(source: Path) -> tuple[list[tuple[str, Path, Any, Any]], list[tuple[str, str]]]:
    """(reference, file, latitude, longitude) rows of a manifest or of a photo folder.

    A folder's photos give their position from EXIF GPS; photos without one are skipped
    (and listed).
    """
    if source.is_dir():
        from img2loc.data.exif import gps_from_exif

        rows, skipped = [], []
        for p in sorted(source.rglob("*")):
            if not p.is_file() or p.name.startswith("."):
                continue
            if p.suffix.lower() not in GAME_IMAGE_TYPES:
                if p.suffix.lower() in (".heic", ".heif", ".tif", ".tiff"):
                    skipped.append((str(p.relative_to(source)), "browsers cannot show this type"))
                continue
            try:
                _, exif = peek_image(p)
            except ImageError as e:
                skipped.append((str(p.relative_to(source)), str(e).removeprefix(f"{p}: ")))
                continue
            g = gps_from_exif(exif)
            if g.lat is None:
                skipped.append((str(p.relative_to(source)), g.reason))
                continue
            rows.append((str(p.relative_to(source)), p, g.lat, g.lon))
        return rows, skipped

    from img2loc.data.tables import (
        IMAGE_NAMES,
        LAT_NAMES,
        LON_NAMES,
        TableError,
        find_column,
        read_table,
    )

    try:
        df = read_table(source)
        img_col = find_column(df, IMAGE_NAMES, "image path", source)
        lat_col = find_column(df, LAT_NAMES, "latitude", source)
        lon_col = find_column(df, LON_NAMES, "longitude", source)
    except TableError as e:
        raise ServeError(str(e)) from None
    root = source.resolve().parent
    rows = []
    for ref, lat, lon in zip(df[img_col], df[lat_col], df[lon_col], strict=True):
        p = Path(str(ref))
        rows.append((str(ref), p if p.is_absolute() else root / p, lat, lon))
    return rows, []


def load_game_data(source: Path) -> GameData:
    """Photos with known positions for the game mode.

    ``source``: a CSV/Parquet manifest (an image path column, ``image``/``path``/``file``,
    relative to the manifest's folder or absolute, and ``latitude``/``longitude`` or
    ``lat``/``lon``), or a folder of photos whose EXIF carries their GPS position.
    Photos are served as ``img/<n>.<ext>``: no local path and no file name (which may
    name the place) reaches the browser.
    """
    import csv

    if not source.exists():
        raise ServeError(f"{source} not found; pass a CSV/Parquet manifest or a folder of photos")
    rows, skipped = _game_rows(source)
    files: dict[str, Path] = {}
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["image", "latitude", "longitude"])
    for ref, p, lat, lon in rows:
        ext = p.suffix.lower()
        try:
            la, lo = float(lat), float(lon)
        except (TypeError, ValueError):
            la = lo = math.nan
        why = ""
        if not (-90 <= la <= 90 and -180 <= lo <= 180):  # NaN fails too
            why = f"bad coordinates ({lat!r}, {lon!r})"
        elif not p.is_file():
            why = f"file not found: {p}"
        elif ext not in GAME_IMAGE_TYPES:
            why = f"not an image type the browser shows ({ext or 'no extension'})"
        else:
            try:  # the browser would fail on it mid-game: refuse it now, with the reason
                peek_image(p)
            except ImageError as e:
                why = str(e).removeprefix(f"{p}: ")
        if why:
            skipped.append((ref, why))
            continue
        name = f"img/{len(files)}{ext}"
        files[name] = p.resolve()
        w.writerow([name, repr(la), repr(lo)])
    if not files:
        what = "photos with EXIF GPS" if source.is_dir() else "usable photos"
        raise ServeError(
            f"{source}: no {what} ({len(skipped)} skipped, e.g. "
            f"{skipped[0][0] if skipped else '-'}: {skipped[0][1] if skipped else 'empty'}); "
            + (
                "the game needs photos whose EXIF has a GPS position"
                if source.is_dir()
                else "image paths are relative to the manifest's folder"
            )
        )
    return GameData(files, out.getvalue().encode(), tuple(skipped))


def default_game(examples_dir: Path | None) -> GameData | None:
    """The bundled examples as the game's photos (None when the package has none)."""
    if examples_dir is None or not (examples_dir / "locations.csv").is_file():
        return None
    try:
        return load_game_data(examples_dir / "locations.csv")
    except ServeError:
        return None


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


def write_site(
    out: Path,
    model_dir: Path,
    *,
    static_dir: Path = STATIC_DIR,
    examples_dir: Path | None = EXAMPLES_DIR,
    game_data: Path | None = None,
) -> Path:
    """Write the app, the model, the examples and the game as a static site for any host.

    Also writes ``_headers`` (Netlify / Cloudflare Pages syntax) with the COOP/COEP and
    CSP headers. Hosts that send no such headers still work: the page then runs one
    thread on the first visit (and says so), and its service worker adds the headers
    from the second visit on.
    """
    static_dir = check_static_dir(static_dir)
    model_dir = check_model_dir(model_dir)
    if out.exists() and any(out.iterdir()):
        raise ServeError(f"{out} exists and is not empty; choose an empty or new folder")
    examples = examples_dir if examples_dir is not None and examples_dir.is_dir() else None
    game = default_game(examples) if game_data is None else load_game_data(game_data)
    if game is not None:
        game.report()
    # Built beside ``out`` and renamed into place: a failed or killed build leaves no
    # half-written site (only a hidden .NAME.tmp-* folder, never ``out`` itself).
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        tmp.chmod(dir_mode())  # mkdtemp makes it private; a site is meant to be served
        shutil.copytree(static_dir, tmp, dirs_exist_ok=True)
        (tmp / "model").mkdir()
        for name in sorted(MODEL_FILES):
            if (model_dir / name).is_file():
                if name == model_folder.EXPORT_FILE:
                    data = portable_export_json(model_dir / name)
                    if data is not None:
                        (tmp / "model" / name).write_bytes(data)
                    continue
                shutil.copy2(model_dir / name, tmp / "model" / name)
        if examples is not None:
            shutil.copytree(examples, tmp / "examples")
        if game is not None:
            (tmp / "game" / "img").mkdir(parents=True)
            (tmp / "game" / "locations.csv").write_bytes(game.csv)
            for name, src in game.files.items():
                shutil.copy2(src, tmp / "game" / name)
        lines = ["/*"] + [f"  {k}: {v}" for k, v in SECURITY_HEADERS.items()]
        lines += ["/assets/*", "  Cache-Control: max-age=31536000, immutable"]
        (tmp / "_headers").write_text("\n".join(lines) + "\n")
        if out.exists():
            out.rmdir()  # checked empty above
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
