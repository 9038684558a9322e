"""Mapillary source against a fake Graph API v4 server."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from urllib.parse import urlencode

import pytest

from img2loc.data import http
from img2loc.data.http import MissingCredentialsError
from img2loc.data.sources import mapillary
from img2loc.data.sources.mapillary import MapillaryError
from tests.data.sources.conftest import (
    SECRET,
    Reply,
    Request,
    files_contain,
    jpeg_reply,
    json_reply,
    text_reply,
)


class FakeMapillary:
    """``/images`` with bbox filter, a result cap and cursor paging; thumbnails on ``/thumb``."""

    def __init__(self, base: list[str], n_side: int = 7, cap: int = 10) -> None:
        self.base, self.cap = base, cap  # base[0] is set once the server runs
        self.images = []
        for i in range(n_side * n_side):
            lon, lat = (
                0.05 + 0.9 * (i % n_side) / (n_side - 1),
                0.05 + 0.9 * (i // n_side) / (n_side - 1),
            )
            self.images.append(
                {
                    "id": str(1000 + i),
                    "geometry": {"type": "Point", "coordinates": [lon, lat]},
                    "captured_at": 1_600_000_000_000 + i * 86_400_000,
                    "compass_angle": float(i * 7 % 360),
                    "creator": {"username": f"user{i % 3}", "id": str(i % 3)},
                }
            )
        self.faults: list[Reply] = []
        self.expired: set[str] = set()
        self.html_thumbs: set[str] = set()

    def __call__(self, req: Request) -> Reply:
        if req.path.startswith("/thumb/"):
            assert "authorization" not in req.headers, "token leaked to the CDN"
            ident, version = req.path.split("/")[2].split(".")[0].split("-")
            if ident in self.html_thumbs:
                return text_reply("<html>Access denied</html>")
            if ident in self.expired and version == "old":
                return text_reply("URL signature expired", 403)
            return jpeg_reply(f"mly{ident}")
        if req.headers.get("authorization") != f"OAuth {SECRET}":
            return json_reply(
                {
                    "error": {
                        "message": "Invalid OAuth access token.",
                        "type": "OAuthException",
                        "code": 190,
                    }
                },
                401,
            )
        if self.faults:
            return self.faults.pop(0)
        if req.path == "/images":
            return self.search(req)
        ident = req.path.strip("/")
        return json_reply({"id": ident, "thumb_1024_url": f"{self.base[0]}/thumb/{ident}-new.jpg"})

    def search(self, req: Request) -> Reply:
        q = req.query
        assert set(q["fields"].split(",")) >= {"id", "geometry", "thumb_1024_url", "creator"}
        w, s, e, n = (float(v) for v in q["bbox"].split(","))
        inside = [
            im
            for im in self.images
            if w <= im["geometry"]["coordinates"][0] <= e
            and s <= im["geometry"]["coordinates"][1] <= n
        ][: self.cap]
        after, limit = int(q.get("after", 0)), int(q["limit"])
        data = [
            {**im, "thumb_1024_url": f"{self.base[0]}/thumb/{im['id']}-old.jpg"}
            for im in inside[after : after + limit]
        ]
        body: dict = {"data": data}
        if after + limit < len(inside):
            nq = {k: v for k, v in q.items() if k != "after"}
            nq.update(after=after + limit, access_token=SECRET)  # the real API echoes it
            body["paging"] = {"next": f"{self.base[0]}/images?{urlencode(nq)}"}
        return json_reply(body)


@pytest.fixture
def fake(serve):
    base: list[str] = []
    f = FakeMapillary(base)
    srv = serve(f)
    base.append(srv.url)
    f.server = srv
    return f


def collect(fake, out, **kw):
    args = dict(
        token=SECRET,
        base_url=fake.base[0],
        page_size=3,
        max_per_query=10,
        rate_per_s=None,
        backoff_s=0.001,
        progress=False,
    )
    args.update(kw)
    return mapillary.collect(out, (0.0, 0.0, 1.0, 1.0), **args)


def test_paging_and_tiling_find_everything(fake, tmp_path):
    df, df_report = collect(fake, tmp_path / "out")
    assert len(df) == 49 and df["location_id"].is_unique
    assert set(df["location_id"]) == {im["id"] for im in fake.images}
    s = df_report
    assert s["tiles_split"] >= 1 and s["downloaded"] == 49
    searches = fake.server.paths("/images")
    assert any("after" in r.query for r in searches)  # paging.next was followed
    assert all(r.headers["authorization"] == f"OAuth {SECRET}" for r in searches)
    row = df.set_index("location_id").loc["1008"]
    assert row["latitude"] == pytest.approx(0.05 + 0.9 / 6)
    assert row["longitude"] == pytest.approx(0.05 + 0.9 / 6)
    assert row["heading"] == 56.0 and row["captured"] == "2020-09-21T12:26:40Z"
    assert row["license"] == "CC BY-SA 4.0" and row["attribution"] == "user2, Mapillary"
    assert row["key"] == "mapillary/1008" and row["source"] == "mapillary"
    for path, sha in zip(df["image"], df["sha1"], strict=True):
        assert hashlib.sha1(Path(path).read_bytes()).hexdigest() == sha


def test_search_without_tiling_is_truncated_by_the_cap(fake):
    got = mapillary.search(
        (0.0, 0.0, 1.0, 1.0),
        token=SECRET,
        base_url=fake.base[0],
        page_size=4,
        max_per_query=10,
        min_tile_deg=5.0,
        rate_per_s=None,
    )
    assert len(got) == 10  # the tile is too small to split: the cap shows through
    assert (
        len(
            mapillary.search(
                (0.0, 0.0, 1.0, 1.0),
                token=SECRET,
                base_url=fake.base[0],
                max_per_query=10,
                page_size=10,
                max_images=12,
                rate_per_s=None,
            )
        )
        == 12
    )


def test_retries_then_ok_and_malformed_page_skipped_then_resumed(fake, tmp_path):
    fake.faults = [Reply(429, b"", {"Retry-After": "0"}), Reply(500, b"boom"), Reply(503)]
    ref, _ref_report = collect(fake, tmp_path / "ref")
    assert len(ref) == 49
    fake.faults = [text_reply("{not json", ctype="application/json")]
    out = tmp_path / "out"
    first, first_report = collect(fake, out)
    assert len(first) < 49
    assert any("malformed JSON" in m for m in first_report.messages)
    again, _again_report = collect(fake, out)
    assert again.drop(columns="image").equals(ref.drop(columns="image"))


def test_invalid_and_missing_token(fake, tmp_path):
    with pytest.raises(MapillaryError, match="HTTP 401") as err:
        collect(fake, tmp_path / "a", token="wrong-token-xyz")
    assert "wrong-token-xyz" not in str(err.value) and "Invalid OAuth" in str(err.value)
    assert "token from the value passed in" in str(err.value)
    bad = tmp_path / "old-token"
    bad.write_text("wrong-token-xyz\n")
    with pytest.raises(MapillaryError, match="old-token") as err:  # names the file, not $ENV
        collect(fake, tmp_path / "c", token=None, token_file=bad)
    assert "MAPILLARY_ACCESS_TOKEN" not in str(err.value)
    with pytest.raises(MissingCredentialsError, match="MAPILLARY_ACCESS_TOKEN"):
        collect(fake, tmp_path / "b", token=None)


def test_token_from_env_and_file(fake, tmp_path, monkeypatch):
    f = tmp_path / "token"
    f.write_text(SECRET + "\n")
    assert len(collect(fake, tmp_path / "a", token=None, token_file=f, max_images=3)[0]) == 3
    monkeypatch.setenv("MAPILLARY_ACCESS_TOKEN", SECRET)
    assert len(collect(fake, tmp_path / "b", token=None, max_images=3)[0]) == 3


def test_expired_thumbnail_refreshed_and_html_reported(fake, tmp_path):
    fake.expired = {"1003"}
    fake.html_thumbs = {"1004"}
    df, df_report = collect(fake, tmp_path / "out")
    assert "1003" in set(df["location_id"]) and "1004" not in set(df["location_id"])
    assert any(r.path == "/1003" for r in fake.server.requests)
    s = df_report
    assert s["failed"] == 1 and any("1004" in m and "not an image" in m for m in s.messages)
    assert not (tmp_path / "out" / "images" / "1004.jpg").exists()


def test_resume_after_interruption(fake, tmp_path, monkeypatch):
    ref, _ref_report = collect(fake, tmp_path / "ref")
    real = http.Client.download
    calls = {"n": 0}

    def flaky(self, url, dest, **kw):
        calls["n"] += 1
        if calls["n"] > 20:
            raise KeyboardInterrupt  # as if the process was killed here
        return real(self, url, dest, **kw)

    monkeypatch.setattr(http.Client, "download", flaky)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        collect(fake, out)
    monkeypatch.setattr(http.Client, "download", real)
    n_search = len(fake.server.paths("/images"))
    df, df_report = collect(fake, out)
    assert len(fake.server.paths("/images")) == n_search  # pages came from the journal
    assert df_report["already_done"] == 20
    assert df.drop(columns="image").equals(ref.drop(columns="image"))
    for a, b in zip(df["image"], ref["image"], strict=True):
        assert Path(a).read_bytes() == Path(b).read_bytes()


def test_antimeridian_bbox_is_queried_as_two_boxes(fake):
    mapillary.search(
        (179.5, 0.0, -179.5, 1.0), token=SECRET, base_url=fake.base[0], rate_per_s=None
    )
    boxes = {r.query["bbox"] for r in fake.server.paths("/images")}
    assert boxes == {"179.5,0,180,1", "-180,0,-179.5,1"}


def test_token_never_leaks(fake, tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    fake.faults = [Reply(500, f"echo {SECRET}".encode()), text_reply(f"bad {SECRET}")]
    fake.html_thumbs = {"1001"}
    out = tmp_path / "out"
    # 500 echoing the token: tile skipped, reported
    failed, failed_report = collect(fake, out, retries=0)
    assert failed.empty and failed_report.messages
    fake.faults = [text_reply(f"bad {SECRET}")]
    collect(fake, out, retries=0)  # malformed JSON echoing the token
    df, df_report = collect(fake, out)
    with pytest.raises(MapillaryError) as err:
        collect(fake, tmp_path / "x", token=SECRET + "-revoked")
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
            repr(err.value.__context__),
        ]
    )
    assert len(df) > 0 and SECRET not in blob
    assert files_contain(tmp_path, SECRET) == []
