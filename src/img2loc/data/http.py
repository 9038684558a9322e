"""Shared HTTP helpers for the online photo sources.

* :class:`Client`: a ``requests.Session`` with retries (429/5xx/connection errors,
  exponential backoff, ``Retry-After`` honoured), a rate limit, and errors whose
  messages never contain a secret.
* :meth:`Client.download`: atomic, resumable file download (temp file in the
  destination directory + ``os.replace``; an existing final file is kept).
* :class:`JsonlState`: an append-only JSON-lines journal in the output directory
  so a run killed at any point (even ``kill -9``) resumes where it stopped.
* :func:`redact`: scrubs secrets (and ``key=``/``signature=``-style URL params).

API keys must never reach logs, exceptions, manifests or files; every message
built here from a URL or a response body goes through :func:`redact`, and a
filter on urllib3's logger scrubs the URLs it logs at DEBUG level.
"""

from __future__ import annotations

import email.utils
import fcntl
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import requests

from img2loc.geo.atomic import atomic_path, remove_stale_temps

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "img2loc-dataset-builder (+https://github.com/img2loc)"

# Names of URL parameters that carry credentials in the APIs we talk to.
_SECRET_PARAM = re.compile(
    r"(?i)\b(key|api_key|apikey|signature|sig|access_token|token|client_secret|secret|password)"
    r"=([^&\s#'\"<>]+)"
)
# Tokens are long; a floor of 12 characters keeps prose like "OAuth access token" readable.
_AUTH_HEADER = re.compile(r"(?i)\b(OAuth|Bearer)\s+[A-Za-z0-9._~+/=|-]{12,}")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every secret (raw or URL-quoted) and credential URL param replaced by ***."""
    text = str(text)
    for s in sorted({s for s in secrets if s}, key=len, reverse=True):
        for form in {s, quote(s, safe=""), quote_plus(s), quote(s)}:
            text = text.replace(form, "***")
    text = _SECRET_PARAM.sub(lambda m: f"{m.group(1)}=***", text)
    return _AUTH_HEADER.sub(lambda m: f"{m.group(1)} ***", text)


class _RedactingFilter(logging.Filter):
    """Scrubs secrets from records of loggers we do not own (urllib3 logs full URLs)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[int, tuple[str, ...]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = [s for group in list(self.secrets.values()) for s in group]
        record.msg = redact(record.getMessage(), secrets)
        record.args = None
        return True


_LOG_FILTER = _RedactingFilter()
for _name in ("urllib3.connectionpool", "urllib3.util.retry", "requests"):
    if _LOG_FILTER not in logging.getLogger(_name).filters:
        logging.getLogger(_name).addFilter(_LOG_FILTER)


class HTTPError(RuntimeError):
    """A request failed for good; the message names the (redacted) URL."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotAnImageError(HTTPError):
    """A download answered 200 with something that is not an image (e.g. an HTML error page)."""


class MissingCredentialsError(RuntimeError):
    """No API key/token was given; the message says how to provide one."""


def load_secret(
    value: str | None,
    file: str | os.PathLike[str] | None,
    env: str,
    *,
    what: str,
    option: str,
) -> str:
    """The secret from ``value``, else the first line of ``file``, else ``$env``; else an error."""
    if value:
        return value.strip()
    if file is not None:
        p = Path(file).expanduser()
        if not p.is_file():
            raise MissingCredentialsError(f"{what} file {str(p)!r} does not exist")
        lines = p.read_text().strip().splitlines()
        secret = lines[0].strip() if lines else ""
        if not secret:
            raise MissingCredentialsError(f"{what} file {str(p)!r} is empty")
        return secret
    secret = os.environ.get(env, "").strip()
    if secret:
        return secret
    raise MissingCredentialsError(
        f"no {what} given: set the environment variable {env} (export {env}=...) "
        f"or pass {option} with the path of a file holding it"
    )


def secret_origin(value: str | None, file: str | os.PathLike[str] | None, env: str) -> str:
    """Where :func:`load_secret` took the secret from, for error messages (never the secret)."""
    if value:
        return "the value passed in"
    if file is not None:
        return f"the file {str(Path(file).expanduser())!r}"
    return f"${env}"


class RateLimiter:
    """At most ``rate_per_s`` calls of :meth:`wait` per second (None or <= 0: unlimited)."""

    def __init__(
        self,
        rate_per_s: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate_per_s if rate_per_s and rate_per_s > 0 else 0.0
        self._clock, self._sleep = clock, sleep
        self._next = -float("inf")
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until the next call is allowed."""
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            if now < self._next:
                self._sleep(self._next - now)
                now = self._next
            self._next = now + self.interval


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")


def looks_like_image(head: bytes) -> bool:
    """Whether the first bytes are a JPEG, PNG, GIF or WebP signature."""
    if head.startswith(_IMAGE_MAGIC):
        return True
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


def sha1_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-1 of a file's bytes."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Client:
    """A requests session with retries, a rate limit and secret-free errors.

    ``secrets`` are scrubbed from every message this client produces.
    ``backoff_s`` is the first retry delay (doubled each retry, capped at
    ``max_wait_s``, which also caps ``Retry-After``).
    """

    def __init__(
        self,
        *,
        secrets: Iterable[str | None] = (),
        rate_per_s: float | None = None,
        retries: int = 5,
        backoff_s: float = 0.5,
        max_wait_s: float = 60.0,
        timeout_s: float = 30.0,
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.secrets = tuple(s for s in secrets if s)
        self.retries, self.backoff_s, self.max_wait_s = retries, backoff_s, max_wait_s
        self.timeout_s = timeout_s
        self.sleep = sleep
        self.limiter = RateLimiter(rate_per_s, sleep=sleep)
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers.update(headers or {})
        _LOG_FILTER.secrets[id(self)] = self.secrets

    def close(self) -> None:
        """Close the session and forget the secrets."""
        self.session.close()
        _LOG_FILTER.secrets.pop(id(self), None)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def redact(self, text: str) -> str:
        """``text`` without this client's secrets."""
        return redact(text, self.secrets)

    def _wait_for(self, attempt: int, response: requests.Response | None) -> float:
        ra = (
            retry_after_seconds(response.headers.get("Retry-After"))
            if response is not None
            else None
        )
        wait = ra if ra is not None else self.backoff_s * (2**attempt)
        return min(wait, self.max_wait_s)

    def get(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """GET with retries; a final status >= 400 raises :class:`HTTPError` (redacted)."""
        shown = self.redact(url)
        problem = ""
        for attempt in range(self.retries + 1):
            self.limiter.wait()
            response: requests.Response | None = None
            try:
                response = self.session.get(
                    url, headers=dict(headers or {}), timeout=self.timeout_s, stream=stream
                )
            except requests.RequestException as e:
                # str(e) of a connection error repeats the URL, secrets included.
                problem = f"{type(e).__name__}: {self.redact(str(e))}"
            if response is not None:
                if response.status_code < 400:
                    return response
                status = response.status_code
                if status not in RETRY_STATUSES or attempt == self.retries:
                    body = self.redact(_snippet(response))
                    response.close()
                    raise HTTPError(f"HTTP {status} for GET {shown}: {body}", status=status)
                problem = f"HTTP {status}"
            if attempt < self.retries:
                wait = self._wait_for(attempt, response)
                if response is not None:
                    response.close()
                log.info("GET %s: %s; retry %d in %.2fs", shown, problem, attempt + 1, wait)
                self.sleep(wait)
        raise HTTPError(f"GET {shown} failed after {self.retries + 1} attempts: {problem}")

    def get_json(self, url: str, *, headers: Mapping[str, str] | None = None) -> Any:
        """GET and parse JSON; malformed JSON raises :class:`HTTPError` naming the URL."""
        response = self.get(url, headers=headers)
        try:
            return response.json()
        except ValueError:
            body = self.redact(_snippet(response))
            raise HTTPError(
                f"malformed JSON from GET {self.redact(url)}: {body!r}", status=200
            ) from None

    def download(
        self,
        url: str,
        dest: str | os.PathLike[str],
        *,
        headers: Mapping[str, str] | None = None,
        max_bytes: int = 64 << 20,
    ) -> str:
        """Save ``url`` at ``dest`` atomically and return the bytes' SHA-1.

        An existing ``dest`` is not fetched again (its hash is returned), so an
        interrupted run resumes. A body that is not an image raises
        :class:`NotAnImageError` and nothing is saved.
        """
        dest = Path(dest)
        if dest.is_file():
            return sha1_file(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        response = self.get(url, headers=headers, stream=True)
        h, size, checked = hashlib.sha1(), 0, False
        try:
            # The temp file is removed on any error, so a failed download leaves nothing.
            with atomic_path(dest) as tmp, open(tmp, "wb") as f:
                head = b""
                for chunk in response.iter_content(1 << 16):
                    if not checked:
                        head += chunk
                        if len(head) < 12 and chunk:
                            continue
                        if not looks_like_image(head):
                            ctype = response.headers.get("Content-Type", "?")
                            raise NotAnImageError(
                                f"GET {self.redact(url)} returned {ctype}, not an image: "
                                f"{self.redact(head[:120].decode('utf-8', 'replace'))!r}",
                                status=response.status_code,
                            )
                        checked, chunk = True, head
                    size += len(chunk)
                    if size > max_bytes:
                        raise HTTPError(f"GET {self.redact(url)}: larger than {max_bytes} bytes")
                    h.update(chunk)
                    f.write(chunk)
                if not checked:
                    raise NotAnImageError(
                        f"GET {self.redact(url)} returned an empty or truncated body", status=200
                    )
        except requests.RequestException as e:
            message = f"GET {self.redact(url)} broke off: {type(e).__name__}: {self.redact(str(e))}"
        else:
            return h.hexdigest()
        finally:
            response.close()
        raise HTTPError(message)


def _snippet(response: requests.Response, n: int = 300) -> str:
    try:
        return response.text[:n].replace("\n", " ")
    except Exception:  # an undecodable or broken body must not hide the real error
        return "<unreadable body>"


class StateMismatchError(RuntimeError):
    """The output directory holds state from a run with different settings."""


class JsonlState:
    """Append-only journal of finished work: ``{"kind", "key", "value"}`` per line.

    The first line records the run's settings; resuming with other settings is
    refused rather than silently mixing two datasets. A line cut short by a
    crash is dropped on load. Values must never hold secrets.
    """

    def __init__(self, path: str | os.PathLike[str], config: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._data: dict[tuple[str, str], Any] = {}
        settings: dict[str, Any] = json.loads(json.dumps(dict(config), sort_keys=True))
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise StateMismatchError(
                f"another run is writing to {self.path.parent}; wait for it to finish "
                "or use another output directory"
            ) from None
        try:
            self._load(settings)
        except BaseException:
            self._file.close()
            raise
        # This run owns the folder now: temp files of a killed run are garbage.
        for folder in (self.path.parent, self.path.parent / "images"):
            remove_stale_temps(folder)

    def _load(self, config: dict[str, Any]) -> None:
        stored = None
        if self.path.stat().st_size:
            raw = self.path.read_bytes()
            if raw and not raw.endswith(b"\n"):
                # Killed mid-write: cut the partial line so appends stay parseable.
                raw = raw[: raw.rfind(b"\n") + 1]
                with open(self.path, "r+b") as f:
                    f.truncate(len(raw))
            for line in raw.decode("utf-8", "replace").splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("kind") == "config":
                    stored = rec["value"]
                else:
                    self._data[(rec["kind"], rec["key"])] = rec["value"]
        if stored is not None and stored != config:
            diff = sorted(k for k in set(stored) | set(config) if stored.get(k) != config.get(k))
            raise StateMismatchError(
                f"{self.path} was written by a run with other settings (differ: {diff}); "
                "use another output directory or delete that file to start over"
            )
        if stored is None:
            self._append({"kind": "config", "key": "", "value": config})

    def _append(self, rec: Mapping[str, Any]) -> None:
        # One write per line and a flush: a kill -9 loses at most the last line.
        self._file.write(json.dumps(rec, sort_keys=True) + "\n")
        self._file.flush()

    def get(self, kind: str, key: str, default: Any = None) -> Any:
        """The value stored for (kind, key), or ``default``."""
        return self._data.get((kind, key), default)

    def has(self, kind: str, key: str) -> bool:
        """Whether (kind, key) was recorded."""
        return (kind, key) in self._data

    def put(self, kind: str, key: str, value: Any) -> None:
        """Record (kind, key) = value durably."""
        self._data[(kind, key)] = value
        self._append({"kind": kind, "key": key, "value": value})

    def close(self) -> None:
        """Close the journal file."""
        self._file.close()

    def __enter__(self) -> JsonlState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
