"""Flickr source against a fake REST API that caps every query at 4000 results."""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
from pathlib import Path

import numpy as np
import pytest

from img2loc.data import http
from img2loc.data.http import MissingCredentialsError
from img2loc.data.sources import flickr
from img2loc.data.sources.base import ImportReport
from img2loc.data.sources.flickr import FlickrError
from tests.data.sources.conftest import (
    SECRET,
    Reply,
    Request,
    files_contain,
    jpeg_reply,
    json_reply,
    text_reply,
)

T0, T1 = 1_262_304_000, 1_293_840_000  # 2010-01-01 .. 2011-01-01 UTC


class FakeFlickr:
    """``flickr.photos.search`` with tag/time/licence filters, paging and a result cap."""

    def __init__(self, photos: list[dict], cap: int = 4000, honour_license: bool = True) -> None:
        self.photos, self.cap, self.honour_license = photos, cap, honour_license
        self.base = ""
        self.faults: list[Reply] = []
        self.html_ids: set[str] = set()

    def __call__(self, req: Request) -> Reply:
        if req.path.startswith("/img/"):
            ident = req.path.split("/")[-1].split("_")[0]
            if ident in self.html_ids:
                return text_reply("<html>This photo is no longer available</html>")
            return jpeg_reply(f"flickr{ident}")
        assert req.path == "/services/rest/"
        if self.faults:
            return self.faults.pop(0)
        q = req.query
        if q.get("api_key") != SECRET:
            return json_reply(
                {"stat": "fail", "code": 100, "message": "Invalid API Key (Key has invalid format)"}
            )
        assert q["method"] == "flickr.photos.search" and q["has_geo"] == "1"
        assert q["format"] == "json" and q["nojsoncallback"] == "1"
        lo, hi = int(q["min_upload_date"]), int(q["max_upload_date"])
        lic = {int(x) for x in q["license"].split(",")} if "license" in q else None
        match = [
            p
            for p in self.photos
            if q["tags"] in p["tags"]
            and lo <= p["upload"] <= hi
            and (lic is None or not self.honour_license or p["license"] in lic)
        ]
        per_page, page = int(q["per_page"]), int(q["page"])
        served = match[: self.cap]
        chunk = served[(page - 1) * per_page : page * per_page]
        photo = [
            {
                "id": p["id"],
                "owner": p["owner"],
                "secret": "abc",
                "server": "1",
                "farm": 1,
                "title": "t",
                "latitude": p["lat"],
                "longitude": p["lon"],
                "accuracy": "16",
                "license": str(p["license"]),
                "datetaken": p["taken"],
                "ownername": p["ownername"],
                **({"url_z": f"{self.base}/img/{p['id']}_z.jpg"} if p["url"] else {}),
            }
            for p in chunk
        ]
        return json_reply(
            {
                "photos": {
                    "page": page,
                    "pages": max(1, math.ceil(len(match) / per_page)),
                    "perpage": per_page,
                    "total": len(match),
                    "photo": photo,
                },
                "stat": "ok",
            }
        )


def make_photos(n: int, seed: int = 0, tags=("paris",), licenses=(4,)) -> list[dict]:
    rng = np.random.default_rng(seed)
    uploads = rng.integers(T0, T1, n)
    return [
        {
            "id": str(5_000_000 + i),
            "upload": int(uploads[i]),
            "tags": set(tags),
            "license": licenses[i % len(licenses)],
            "lat": f"{48.8 + (i % 100) / 1000:.6f}",
            "lon": f"{2.3 + (i % 77) / 1000:.6f}",
            "taken": f"2010-05-{1 + i % 28:02d} 12:34:56",
            "owner": f"{i % 5}@N00",
            "ownername": f"Owner {i % 5}",
            "url": True,
        }
        for i in range(n)
    ]


@pytest.fixture
def start(serve):
    def go(photos, **kw):
        fake = FakeFlickr(photos, **kw)
        srv = serve(fake)
        fake.base, fake.server = srv.url, srv
        return fake

    return go


def collect(fake, out, tags=("paris",), **kw):
    args = dict(
        api_key=SECRET, base_url=fake.base, rate_per_s=None, backoff_s=0.001, progress=False
    )
    args.update(kw)
    return flickr.collect(out, list(tags), T0, T1, **args)


def test_time_block_splitting_enumerates_all(start):
    fake = start(make_photos(9000))
    summary = ImportReport()
    got = flickr.search(
        ["paris"], T0, T1, api_key=SECRET, base_url=fake.base, rate_per_s=None, summary=summary
    )
    ids = [p["id"] for p in got]
    assert len(ids) == len(set(ids)) == 9000
    assert summary["blocks_split"] >= 2 and summary["truncated_blocks"] == 0
    reqs = fake.server.paths("/services/rest/")
    assert all(int(r.query["page"]) <= 16 for r in reqs)  # never past the 4000 cap
    # Blocks tile [T0, T1] without overlap (both bounds are inclusive in Flickr).
    leaves = sorted(
        {
            (int(r.query["min_upload_date"]), int(r.query["max_upload_date"]))
            for r in reqs
            if int(r.query["page"]) > 1
        }
    )
    assert all(b[0] > a[1] for a, b in itertools.pairwise(leaves))


def test_unsplittable_block_is_reported(start):
    photos = make_photos(15)
    for p in photos:
        p["upload"] = T0 + 5
    fake = start(photos, cap=10)
    summary = ImportReport()
    got = flickr.search(
        ["paris"],
        T0,
        T0 + 5,
        api_key=SECRET,
        base_url=fake.base,
        per_page=5,
        max_per_query=10,
        rate_per_s=None,
        summary=summary,
    )
    assert len(got) == 10 and summary["truncated_blocks"] == 1
    assert any("only 10 can be listed" in m for m in summary.messages)


def test_licence_filter_dedupe_across_tags_and_no_geo(start):
    photos = make_photos(40, tags=("paris", "france"), licenses=(0, 4, 7, 9))
    photos[1]["lat"], photos[1]["lon"] = "0", "0"  # licence 4 but no real location
    fake = start(photos, honour_license=False)  # the server ignores the filter: we check too
    summary = ImportReport()
    got = flickr.search(
        ["paris", "france"],
        T0,
        T1,
        api_key=SECRET,
        base_url=fake.base,
        rate_per_s=None,
        summary=summary,
    )
    assert {p["license"] for p in got} == {4, 9} and len(got) == 19
    assert summary["duplicates"] == 19 and summary["skipped_no_geo"] == 2  # once per tag
    assert fake.server.paths("/services/rest/")[0].query["license"] == "1,2,3,4,5,6,9,10"
    only4 = flickr.search(
        ["paris"], T0, T1, api_key=SECRET, base_url=fake.base, licenses=[4], rate_per_s=None
    )
    assert {p["license"] for p in only4} == {4}
    everything = flickr.search(
        ["paris"], T0, T1, api_key=SECRET, base_url=fake.base, licenses=None, rate_per_s=None
    )
    assert len(everything) == 39


def test_collect_manifest(start, tmp_path):
    photos = make_photos(30)
    photos[3]["url"] = False
    fake = start(photos)
    fake.html_ids = {photos[4]["id"]}
    df, df_report = collect(fake, tmp_path / "out")
    assert len(df) == 28
    s = df_report
    assert s["failed"] == 2 and any("no url_z" in m for m in s.messages)
    assert any("not an image" in m for m in s.messages)
    assert not (tmp_path / "out" / "images" / f"{photos[4]['id']}.jpg").exists()
    row = df.set_index("location_id").loc[photos[0]["id"]]
    assert row["license"] == "CC BY 2.0" and row["captured"] == "2010-05-01"
    assert row["attribution"] == f"Owner 0 (https://www.flickr.com/photos/0@N00/{photos[0]['id']})"
    assert row["latitude"] == pytest.approx(48.8) and row["source"] == "flickr"
    for path, sha in zip(df["image"], df["sha1"], strict=True):
        assert Path(path).is_absolute()
        assert hashlib.sha1(Path(path).read_bytes()).hexdigest() == sha


def test_retries_and_flickr_error_codes(start, tmp_path):
    fake = start(make_photos(20))
    ref, _ref_report = collect(fake, tmp_path / "ref")
    fake.faults = [
        Reply(429, b"", {"Retry-After": "0"}),
        Reply(500, b"oops"),
        json_reply({"stat": "fail", "code": 105, "message": "Service currently unavailable"}),
    ]
    df, _df_report = collect(fake, tmp_path / "out")
    assert df.drop(columns="image").equals(ref.drop(columns="image"))
    with pytest.raises(FlickrError, match="Invalid API Key") as err:
        collect(fake, tmp_path / "bad", api_key="not-the-key-42")
    assert "not-the-key-42" not in str(err.value)
    assert "key from the value passed in" in str(err.value)
    bad = tmp_path / "old-flickr-key"
    bad.write_text("not-the-key-42\n")
    with pytest.raises(FlickrError, match="old-flickr-key") as err:  # names the file, not $ENV
        collect(fake, tmp_path / "bad2", api_key=None, key_file=bad)
    assert "FLICKR_API_KEY" not in str(err.value)
    with pytest.raises(MissingCredentialsError, match="FLICKR_API_KEY"):
        collect(fake, tmp_path / "none", api_key=None)


def test_key_from_env_and_file(start, tmp_path, monkeypatch):
    fake = start(make_photos(5))
    f = tmp_path / "flickr.key"
    f.write_text(f"{SECRET}\n")
    assert len(collect(fake, tmp_path / "a", api_key=None, key_file=f)[0]) == 5
    monkeypatch.setenv("FLICKR_API_KEY", SECRET)
    assert len(collect(fake, tmp_path / "b", api_key=None)[0]) == 5


def test_malformed_page_skipped_then_resumed(start, tmp_path):
    fake = start(make_photos(60))
    ref, _ref_report = collect(fake, tmp_path / "ref", per_page=25)
    fake.faults = [text_reply("{oops", ctype="application/json")]
    out = tmp_path / "out"
    first, first_report = collect(fake, out, per_page=25)
    assert first.empty and any("malformed JSON" in m for m in first_report.messages)
    again, _again_report = collect(fake, out, per_page=25)
    assert again.drop(columns="image").equals(ref.drop(columns="image"))


def test_resume_after_interruption(start, tmp_path, monkeypatch):
    fake = start(make_photos(30))
    ref, _ref_report = collect(fake, tmp_path / "ref")
    real = http.Client.download
    calls = {"n": 0}

    def flaky(self, url, dest, **kw):
        calls["n"] += 1
        if calls["n"] > 12:
            raise KeyboardInterrupt  # as if killed mid-run
        return real(self, url, dest, **kw)

    monkeypatch.setattr(http.Client, "download", flaky)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        collect(fake, out)
    monkeypatch.setattr(http.Client, "download", real)
    n_search = len(fake.server.paths("/services/rest/"))
    df, df_report = collect(fake, out)
    assert len(fake.server.paths("/services/rest/")) == n_search
    assert df_report["already_done"] == 12
    assert df.drop(columns="image").equals(ref.drop(columns="image"))
    for a, b in zip(df["image"], ref["image"], strict=True):
        assert Path(a).read_bytes() == Path(b).read_bytes()


def test_key_never_leaks(start, tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    fake = start(make_photos(10))
    fake.html_ids = {"5000002"}
    fake.faults = [Reply(500, f"echo {SECRET}".encode()), text_reply(f"{{ {SECRET}")]
    out = tmp_path / "out"
    _failed, failed_report = collect(fake, out, retries=0)  # 500 echoing the key
    collect(fake, out, retries=0)  # malformed JSON echoing the key
    df, df_report = collect(fake, out)
    with pytest.raises(FlickrError) as err:
        collect(fake, tmp_path / "x", api_key=SECRET + "-old")
    captured = capsys.readouterr()
    blob = "\n".join(
        [
            captured.out,
            captured.err,
            caplog.text,
            df.to_csv(),
            repr(df_report),
            repr(failed_report),
            str(err.value),
        ]
    )
    assert len(df) == 9 and failed_report.messages
    assert SECRET not in blob and "api_key=***" in caplog.text
    assert files_contain(tmp_path, SECRET) == []
