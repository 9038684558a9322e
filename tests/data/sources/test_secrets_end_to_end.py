"""End to end: API keys never leave the key files, whatever goes wrong.

Runs the three online importers through the CLI against the fake servers (keys from
the environment and from key files, a URL-signing secret, servers that echo the key
in errors and HTML), then writes shards from what they fetched, and scans logs,
stdout/stderr, error messages, manifests, state journals, skipped-file reports and
the shard folder (``_info.json``, ``_index.parquet``, ``errors.csv``, every tar
member) for any of the secrets, plain or URL-encoded.
"""

from __future__ import annotations

import logging
from urllib.parse import quote, quote_plus

import pandas as pd
from typer.testing import CliRunner

from img2loc.cli import app
from img2loc.data.shards import ShardConfig, write_shards
from tests.data.sources.conftest import SECRET, Reply, files_contain, text_reply
from tests.data.sources.test_flickr import T0, T1, FakeFlickr, make_photos
from tests.data.sources.test_mapillary import FakeMapillary
from tests.data.sources.test_streetview import POINTS, SIGNING_SECRET, FakeGoogle

REVOKED = SECRET + "-revoked"


def _variants(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret)}


def test_no_secret_anywhere(serve, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    keys, out = tmp_path / "keys", tmp_path / "out"
    keys.mkdir()
    runner = CliRunner()
    texts: list[str] = []

    def cli(*args: object) -> int:
        res = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
        texts.append(res.output + (res.stderr if res.stderr_bytes else ""))
        return res.exit_code

    # Street View: key from the environment, signing secret from a file; the server
    # echoes the key in a 500 body and in an HTML page served instead of a photo.
    google = FakeGoogle(secret=SIGNING_SECRET)
    google.meta_faults = [Reply(500, f"echo {SECRET}".encode())]
    google.image_faults = [text_reply(f"<html>key {SECRET} bad</html>")]
    g = serve(google)
    monkeypatch.setenv("GOOGLE_MAPS_API_KEY", SECRET)
    (keys / "signing").write_text(SIGNING_SECRET + "\n")
    points = tmp_path / "points.csv"
    pd.DataFrame(POINTS, columns=["latitude", "longitude"]).to_csv(points, index=False)
    sv = out / "sv.parquet"
    code = cli(
        "data", "import", "streetview", "-o", sv, "--images", out / "sv", "--points", points,
        "--headings", 2, "--secret-file", keys / "signing", "--rate", 1000, "--base-url", g.url,
    )  # fmt: skip
    assert code == 0, texts[-1]

    # Mapillary: token from a file; a revoked token first (an error message), then the right one.
    fake_m = FakeMapillary([], n_side=3, cap=10)
    m = serve(fake_m)
    fake_m.base.append(m.url)
    fake_m.faults = [Reply(500, f"echo {SECRET}".encode())]
    (keys / "mly_old").write_text(REVOKED)
    (keys / "mly").write_text(SECRET)
    common = ["--bbox", "0,0,1,1", "--max-images", 4, "--base-url", m.url]
    assert cli("data", "import", "mapillary", "-o", out / "bad.parquet", "--images",
               out / "mly_bad", "--token-file", keys / "mly_old", *common) == 2  # fmt: skip
    mly = out / "mly.parquet"
    code = cli("data", "import", "mapillary", "-o", mly, "--images", out / "mly",
               "--token-file", keys / "mly", *common)  # fmt: skip
    assert code == 0, texts[-1]

    # Flickr: key from the environment; one photo page is an HTML error echoing the key.
    fake_f = FakeFlickr(make_photos(3))
    f = serve(fake_f)
    fake_f.base = f.url
    fake_f.html_ids = {"5000001"}
    monkeypatch.setenv("FLICKR_API_KEY", SECRET)
    fl = out / "fl.parquet"
    code = cli(
        "data", "import", "flickr", "-o", fl, "--images", out / "fl", "--tag", "paris",
        "--since", "2010-01-01", "--until", "2011-01-01", "--base-url", f.url,
    )  # fmt: skip
    assert code == 0, texts[-1]
    assert T0 < T1  # the fake's time window covers the dates above

    # Shards of everything fetched: metadata, index, errors and tar members are scanned too.
    write_shards([sv, mly, fl], out / "shards", ShardConfig(shard_size=4), progress=False)
    n = sum(len(pd.read_parquet(p)) for p in (sv, mly, fl))
    assert n >= 5 and (out / "shards" / "_info.json").is_file()

    blob = "\n".join([*texts, caplog.text])
    for secret in (SECRET, SIGNING_SECRET, REVOKED):
        for s in _variants(secret):
            assert s not in blob, f"{s!r} leaked into logs or output"
            assert files_contain(out, s) == [], f"{s!r} leaked into files"
    # The error is still reported, naming where the token came from (not the token).
    assert "refused the access token from the file" in texts[1] and "mly_old" in texts[1]
    assert "(HTTP 401)" in texts[1]
