"""The one reader of WebDataset shard folders (no torch): training wraps it, and
evaluation, the export's dev images and ``img2loc embed`` call it.

A shard folder (written by :mod:`img2loc.data.shards`) holds ``_info.json`` (the
splits and their shard files) and uncompressed tars whose members are
``KEY.jpg`` + ``KEY.json``. Members are grouped into samples as WebDataset groups
them: consecutive members sharing the part of the name before its first dot.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from img2loc.data.io import INFO as INFO
from img2loc.data.io import read_folder_info, tar_ref

#: Member extensions that hold the photo of a sample.
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")


def read_info(folder: str | Path) -> dict[str, Any]:
    """The ``_info.json`` of a shard folder, with a fix-it message when it is missing."""
    return read_folder_info(folder, "write shards with `img2loc data shards`")


def is_shard_folder(path: str | Path) -> bool:
    return (Path(path) / INFO).is_file()


def split_urls(shards: str | Path, split: str) -> tuple[list[str], int]:
    """The shard files of one split and its photo count."""
    info = read_info(shards)
    if split not in info["splits"]:
        raise ValueError(f"{shards} has no {split!r} split (has {sorted(info['splits'])})")
    s = info["splits"][split]
    return [str(Path(shards) / name) for name in s["shards"]], int(s["n"])


@dataclass
class ShardSample:
    """One sample of a shard: its members' bytes (when read) and their ``tar:`` references."""

    key: str
    url: str
    data: dict[str, bytes] = field(default_factory=dict)  # extension -> content
    refs: dict[str, str] = field(default_factory=dict)  # extension -> tar: reference

    @property
    def meta(self) -> dict[str, Any]:
        """The sample's JSON metadata ({} when it has none)."""
        raw = self.data.get("json")
        out: dict[str, Any] = json.loads(raw) if raw is not None else {}
        return out

    @property
    def image_ext(self) -> str | None:
        return next((e for e in IMAGE_EXTS if e in self.refs), None)

    def as_webdataset(self) -> dict[str, Any]:
        """The dict WebDataset's ``tarfile_to_samples`` would give for this sample."""
        return {"__key__": self.key, "__url__": self.url, **self.data}


def read_shard(path: str | Path, read_data: bool | set[str] = True) -> Iterator[ShardSample]:
    """The samples of one tar shard in file order.

    ``read_data``: read every member (True), none (False: only ``tar:`` references,
    for random access later) or those with the given extensions.
    """
    url = str(path)
    current: ShardSample | None = None
    with tarfile.open(path, "r:") as tar:
        for member in tar:
            if not member.isfile():
                continue
            name = member.name.rsplit("/", 1)[-1]
            key, dot, ext = name.partition(".")
            ext = ext.lower()  # as WebDataset does
            if not dot:
                continue
            prefix = member.name[: len(member.name) - len(name)]
            if current is None or current.key != prefix + key:
                if current is not None:
                    yield current
                current = ShardSample(prefix + key, url)
            current.refs[ext] = tar_ref(path, member.offset_data, member.size)
            if read_data is True or (read_data and ext in read_data):
                f = tar.extractfile(member)
                current.data[ext] = f.read() if f is not None else b""
    if current is not None:
        yield current


def decode_sample(sample: dict[str, Any]) -> tuple[Image.Image, dict[str, Any]]:
    """A sample's RGB image and metadata (from :meth:`ShardSample.as_webdataset`)."""
    with Image.open(io.BytesIO(sample["jpg"])) as im:
        rgb = im.convert("RGB")
    return rgb, json.loads(sample["json"])
