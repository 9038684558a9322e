"""The one shard reader: samples grouped as WebDataset groups them, refs that read back."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from img2loc.data.io import read_bytes
from img2loc.data.shard_reader import decode_sample, read_shard, split_urls
from tests.conftest import jpeg_bytes


def _tar(path, members: list[tuple[str, bytes]]) -> str:
    with tarfile.open(path, "w") as tar:
        for name, payload in members:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return str(path)


def test_samples_group_consecutive_members_by_key(tmp_path, rng):
    jpg = jpeg_bytes(rng)
    meta = json.dumps({"latitude": 1.0, "longitude": 2.0, "key": "a.b"}).encode()
    url = _tar(
        tmp_path / "s.tar",
        [("a.b.jpg", jpg), ("a.b.json", meta), ("c.JPG", jpg), ("d.json", b"{}")],
    )
    got = list(read_shard(url))
    assert [s.key for s in got] == ["a", "c", "d"]  # the key ends at the first dot
    assert got[0].data["b.json"] == meta and got[2].image_ext is None
    assert "jpg" in got[1].data  # extensions are lower-cased, as WebDataset does
    assert read_bytes(got[0].refs["b.jpg"]) == jpg
    assert got[2].meta == {}


def test_metadata_only_reads_no_image_and_refs_read_back(tmp_path, rng):
    jpg = jpeg_bytes(rng)
    meta = {"latitude": 1.0, "longitude": 2.0, "key": "k"}
    url = _tar(tmp_path / "s.tar", [("k.jpg", jpg), ("k.json", json.dumps(meta).encode())])
    (s,) = read_shard(url, read_data={"json"})
    assert s.meta == meta and "jpg" not in s.data
    assert s.image_ext == "jpg" and read_bytes(s.refs["jpg"]) == jpg
    (full,) = read_shard(url)
    im, m = decode_sample(full.as_webdataset())
    assert im.mode == "RGB" and m == meta


def test_same_samples_as_webdataset(tiny_data):
    wds = pytest.importorskip("webdataset")
    urls, n = split_urls(tiny_data["shards"], "train")
    ours = [s.as_webdataset() for u in urls for s in read_shard(u)]
    theirs = list(wds.DataPipeline(wds.SimpleShardList(urls), wds.tarfile_to_samples()))
    assert len(ours) == n == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a["__key__"] == b["__key__"]
        assert a["jpg"] == b["jpg"] and a["json"] == b["json"]


def test_unknown_split_names_the_ones_there(tiny_data):
    with pytest.raises(ValueError, match="has no 'nope' split"):
        split_urls(tiny_data["shards"], "nope")
