"""Read image bytes from a manifest's ``image`` reference (and the ``_info.json`` of a
folder img2loc wrote).

A reference is a local path (absolute, or relative to the manifest's folder),
an http(s) URL, ``zip:ARCHIVE!/MEMBER`` for images inside zip archives
(OSV-5M ships its images that way; they are read without unpacking), or
``tar:SHARD@OFFSET+SIZE`` for a sample stored uncompressed inside a shard tar.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import zipfile
from pathlib import Path
from typing import Any

from img2loc.errors import MissingFileError

INFO = "_info.json"

_ZIP = re.compile(r"^zip:(?P<archive>.+?)!/(?P<member>.+)$")
_TAR = re.compile(r"^tar:(?P<path>.+)@(?P<offset>\d+)\+(?P<size>\d+)$")
_zips = threading.local()


def zip_ref(archive: str | Path, member: str) -> str:
    """The reference of ``member`` inside ``archive``."""
    return f"zip:{Path(archive).resolve()}!/{member}"


def tar_ref(shard: str | Path, offset: int, size: int) -> str:
    """The reference of ``size`` bytes at ``offset`` of an uncompressed tar (a shard member)."""
    return f"tar:{Path(shard).resolve()}@{offset}+{size}"


def is_url(ref: str) -> bool:
    return ref.startswith(("http://", "https://"))


def resolve(ref: str, base_dir: str | Path | None = None) -> str:
    """Make a relative local path absolute against ``base_dir``; other refs unchanged."""
    if is_url(ref) or ref.startswith(("zip:", "tar:")) or base_dir is None:
        return ref
    p = Path(ref)
    return str(p if p.is_absolute() else (Path(base_dir) / p).resolve())


def _open_zip(archive: str) -> zipfile.ZipFile:
    cache: dict[str, zipfile.ZipFile] = getattr(_zips, "cache", None) or {}
    _zips.cache = cache
    if archive not in cache:
        cache[archive] = zipfile.ZipFile(archive)
    return cache[archive]


def _read_span(path: str, offset: int, size: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.pread(fd, size, offset)
    finally:
        os.close(fd)
    if len(data) != size:
        raise OSError(f"{path}: truncated shard (wanted {size} bytes at {offset})")
    return data


def read_bytes(ref: str, timeout: float = 30.0) -> bytes:
    """Bytes of the image at ``ref``; raises OSError/ValueError with a clear message."""
    t = _TAR.match(ref)
    if t:
        return _read_span(t["path"], int(t["offset"]), int(t["size"]))
    m = _ZIP.match(ref)
    if m:
        try:
            return _open_zip(m["archive"]).read(m["member"])
        except KeyError:
            raise FileNotFoundError(f"{m['member']} not found in {m['archive']}") from None
        except zipfile.BadZipFile as e:
            raise OSError(f"{m['archive']}: bad zip archive ({e})") from None
    if is_url(ref):
        import requests

        r = requests.get(ref, timeout=timeout)
        if r.status_code != 200:
            raise OSError(f"{ref}: HTTP {r.status_code}")
        return r.content
    return Path(ref).read_bytes()


def sha1_bytes(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def make_key(source: str, name: str) -> str:
    """A unique, WebDataset-safe key (no dots, no slashes) from a source and a name."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")[-48:]
    return f"{source}-{stem}-{hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:8]}"


# A local absolute path inside a string: /a/b/... (not part of a URL, a ratio or a word),
# or C:\a\...; the last component is kept.
_POSIX_PATH = re.compile(r"(?<![\w.:/~-])/(?:[^\s'\"`,;()\[\]{}<>|/]+/)+([^\s'\"`,;()\[\]{}<>|/]+)")
_WINDOWS_PATH = re.compile(r"(?<![\w])[A-Za-z]:\\(?:[^\\\s'\"`,;]+\\)+([^\\\s'\"`,;]+)")


def portable_paths(obj: object) -> object:
    """``obj`` (JSON-like) with local absolute paths replaced by their file names.

    A model folder travels between machines and is served to browsers: it should not
    carry (or reveal) the folders of the machine that made it.
    """
    if isinstance(obj, str):
        return _WINDOWS_PATH.sub(r"\1", _POSIX_PATH.sub(r"\1", obj))
    if isinstance(obj, dict):
        return {k: portable_paths(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [portable_paths(v) for v in obj]
    return obj


def read_folder_info(folder: str | Path, make_it: str) -> dict[str, Any]:
    """The ``_info.json`` of a shard or feature folder; missing: say how to ``make_it``."""
    p = Path(folder) / INFO
    if not p.exists():
        raise MissingFileError(f"{p} not found: {make_it} first")
    info: dict[str, Any] = json.loads(p.read_text())
    return info
