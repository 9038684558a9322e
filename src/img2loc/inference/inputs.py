"""Expand command-line inputs: files, folders (recursive), globs, http(s) URLs and ``-``.

``-`` reads standard input once. Image data there (``cat photo.jpg | img2loc
predict -``) is one image; text is a list of paths, folders, globs or URLs, one
per line (``find . -name '*.jpg' | img2loc predict -``). Inputs that cannot be
used (nothing matches a glob, an empty folder) become :class:`BadInput` records,
so they are reported beside the other results instead of stopping the run.
"""

from __future__ import annotations

import glob
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

from img2loc.data.images import IMAGE_SUFFIXES
from img2loc.data.io import is_url
from img2loc.inference.images import BadInput, ImageBytes

Source = str | ImageBytes | BadInput

_GLOB_CHARS = frozenset("*?[")


def _folder(d: Path) -> list[Source]:
    files = sorted(
        p
        for p in d.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(d).parts)
    )
    if not files:
        kinds = ", ".join(sorted(IMAGE_SUFFIXES))
        return [BadInput(str(d), f"no images in this folder (looked for {kinds})")]
    return [str(p) for p in files]


def _one(arg: str) -> list[Source]:
    if is_url(arg):
        return [arg]
    p = Path(arg).expanduser()
    if p.is_dir():
        return _folder(p)
    if p.exists():
        return [str(p)]
    if _GLOB_CHARS & set(arg):
        hits = sorted(glob.glob(str(p), recursive=True))
        out: list[Source] = []
        for h in hits:
            out += _folder(Path(h)) if Path(h).is_dir() else [h]
        return out or [BadInput(arg, "no file matches this pattern")]
    return [arg]  # decoding reports "no such file" in its result


def _looks_like_image(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)):
            return True
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return False


def _stdin(stream: BinaryIO) -> list[Source]:
    data = stream.read()
    if not data:
        return [BadInput("-", "standard input is empty")]
    if _looks_like_image(data):
        return [ImageBytes("-", data)]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return [ImageBytes("-", data)]  # binary but not an image: decoding says what it is
    lines = [s.strip() for s in text.splitlines()]
    return [src for s in lines if s and s != "-" for src in _one(s)]


def expand_inputs(args: Sequence[str], stdin: BinaryIO | None = None) -> Iterator[Source]:
    """Every image named by ``args``, in order (folders sorted, recursive)."""
    for a in args:
        if a == "-":
            if stdin is None:
                yield BadInput("-", "no standard input available")
            else:
                yield from _stdin(stdin)
        else:
            yield from _one(a)
