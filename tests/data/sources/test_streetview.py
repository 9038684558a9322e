"""Street View source against a fake Google server; also the shared HTTP helpers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import pytest

from img2loc.data import http
from img2loc.data.http import (
    Client,
    HTTPError,
    JsonlState,
    MissingCredentialsError,
    RateLimiter,
    StateMismatchError,
    redact,
)
from img2loc.data.sources import streetview
from img2loc.data.sources.streetview import StreetViewError, choose_headings, sample_points
from tests.data.sources.conftest import (
    SECRET,
    Reply,
    Request,
    files_contain,
    jpeg_reply,
    json_reply,
    text_reply,
)

SIGNING_SECRET = base64.urlsafe_b64encode(b"signing-secret-bytes-0123").decode()

# Points and what the fake server answers for them (by rounded latitude).
POINTS = [
    (10.1, 20.1),  # pano_10_20
    (10.2, 20.2),  # pano_10_20 again: a duplicate
    (0.1, 5.0),  # ZERO_RESULTS
    (-1.1, 5.0),  # NOT_FOUND
    (77.0, 1.0),  # malformed JSON
    (30.0, 40.0),  # pano_30_40
]


class FakeGoogle:
    """Answers metadata and image requests like the Street View Static API."""

    def __init__(self, key: str = SECRET, secret: str | None = None) -> None:
        self.key, self.secret = key, secret
        self.meta_faults: list[Reply] = []
        self.image_faults: list[Reply] = []
        self.block_after: int | None = None
        self.release = threading.Event()
        self.images_served = 0

    def __call__(self, req: Request) -> Reply:
        if req.path == "/maps/api/streetview/metadata":
            return self.meta(req)
        if req.path == "/maps/api/streetview":
            return self.image(req)
        return text_reply("not found", 404)

    def meta(self, req: Request) -> Reply:
        if self.meta_faults:
            return self.meta_faults.pop(0)
        if req.query.get("key") != self.key:
            return json_reply(
                {"error_message": "The provided API key is invalid.", "status": "REQUEST_DENIED"}
            )
        lat, lon = (float(v) for v in req.query["location"].split(","))
        r, c = round(lat), round(lon)
        if r == 0:
            return json_reply({"status": "ZERO_RESULTS"})
        if r == -1:
            return json_reply({"status": "NOT_FOUND"})
        if r == 77:
            return text_reply('{"status": "OK", "pano_id": ', ctype="application/json")
        return json_reply(
            {
                "copyright": "© Google",
                "date": "2019-05",
                "location": {"lat": r + 0.001, "lng": c + 0.002},
                "pano_id": f"pano_{r}_{c}",
                "status": "OK",
            }
        )

    def image(self, req: Request) -> Reply:
        if self.block_after is not None and self.images_served >= self.block_after:
            self.release.wait(20)
        if self.image_faults:
            return self.image_faults.pop(0)
        if req.query.get("key") != self.key:
            return text_reply("The Google Maps Platform server rejected your request.", 403)
        if self.secret is not None:
            unsigned, _, sig = req.raw.rpartition("&signature=")
            raw = base64.urlsafe_b64decode(self.secret)
            want = base64.urlsafe_b64encode(
                hmac.new(raw, unsigned.encode(), hashlib.sha1).digest()
            ).decode()
            if sig != want:
                return text_reply("Unable to authenticate the request.", 403)
        pano = req.query["pano"]
        if pano == "pano_66_0":
            return text_reply("<html><body>Sorry, no imagery</body></html>")
        self.images_served += 1
        return jpeg_reply(f"{pano}|{req.query['heading']}")


def run(base: str, out: Path, **kw):
    args = dict(
        points=POINTS,
        headings=2,
        key=SECRET,
        base_url=base,
        rate_per_s=None,
        backoff_s=0.001,
        progress=False,
    )
    args.update(kw)
    return streetview.collect(out, **args)


def test_collect_end_to_end(serve, tmp_path):
    fake = FakeGoogle()
    srv = serve(fake)
    df, df_report = run(srv.url, tmp_path / "out")
    assert len(df) == 4
    assert set(df["source"]) == {"streetview"}
    assert sorted(set(df["location_id"])) == ["pano_10_20", "pano_30_40"]
    for pano, g in df.groupby("location_id"):
        h = sorted(g["heading"])
        assert h[1] - h[0] == pytest.approx(180.0, abs=0.02)
        assert h == sorted(choose_headings(pano, 2, seed=0))
    row = df[df["location_id"] == "pano_30_40"].iloc[0]
    assert (row["latitude"], row["longitude"]) == pytest.approx((30.001, 40.002))
    assert row["captured"] == "2019-05" and row["attribution"] == "© Google"
    for path, sha in zip(df["image"], df["sha1"], strict=True):
        assert Path(path).is_absolute()
        assert hashlib.sha1(Path(path).read_bytes()).hexdigest() == sha
    s = df_report
    assert (s["ok"], s["zero_results"], s["not_found"], s["errors"]) == (3, 1, 1, 1)
    assert s["duplicate_panoramas"] == 1 and s["downloaded"] == 4
    assert any("malformed JSON" in m for m in s.messages)
    meta = srv.paths("/maps/api/streetview/metadata")
    assert all(r.query["source"] == "outdoor" and r.query["radius"] == "50" for r in meta)
    img = srv.paths("/maps/api/streetview")
    img = [r for r in img if r.path == "/maps/api/streetview"]
    assert {r.query["size"] for r in img} == {"640x640"} and {r.query["fov"] for r in img} == {"90"}


def test_retries_429_and_500_then_ok(serve, tmp_path):
    fake = FakeGoogle()
    fake.meta_faults = [
        Reply(429, b"slow down", {"Retry-After": "0"}),
        Reply(500, b"oops"),
        Reply(502, b"bad gateway"),
    ]
    fake.image_faults = [Reply(503, b"unavailable"), Reply(429, b"", {"Retry-After": "0"})]
    srv = serve(fake)
    df, _df_report = run(srv.url, tmp_path / "a")
    ref, _ref_report = run(serve(FakeGoogle()).url, tmp_path / "b")
    assert df.drop(columns="image").equals(ref.drop(columns="image"))
    assert len(srv.paths("/maps/api/streetview/metadata")) == len(POINTS) + 3


def test_client_honours_retry_after_and_gives_up(serve):
    answers = [Reply(429, b"", {"Retry-After": "7"}), json_reply({"ok": 1})]
    srv = serve(lambda req: answers.pop(0) if answers else Reply(500, b"down"))
    waits: list[float] = []
    with Client(backoff_s=0.25, retries=2, sleep=waits.append) as c:
        assert c.get_json(srv.url + "/x?key=" + SECRET) == {"ok": 1}
        assert waits == [7.0]
        with pytest.raises(HTTPError) as err:
            c.get(srv.url + "/x?key=" + SECRET)
    assert waits[1:] == [0.25, 0.5]  # exponential backoff without Retry-After
    assert err.value.status == 500 and SECRET not in str(err.value)
    assert http.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0


def test_rate_limiter_spaces_calls():
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    lim = RateLimiter(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        lim.wait()
    assert slept == pytest.approx([0.25] * 4)
    RateLimiter(None, sleep=lambda s: pytest.fail("unlimited must not sleep")).wait()


def test_redact_scrubs_secrets_and_credential_params():
    text = (
        f"GET https://x/api?location=1,2&key={SECRET}&signature=abc123= failed; "
        "api_key=zzz&access_token=MLY|1|2 Authorization: OAuth MLY|4412|a1b2c3d4e5 "
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30 (Invalid OAuth access token) "
        f"quoted={SECRET.replace('-', '%2D')}"
    )
    out = redact(text, [SECRET, None, ""])
    assert SECRET not in out and "abc123" not in out and "zzz" not in out
    assert "MLY|1|2" not in out and "a1b2c3d4e5" not in out and "eyJhbGci" not in out
    assert "Invalid OAuth access token" in out  # prose stays readable
    assert "location=1,2" in out and "key=***" in out


def test_zero_results_not_found_counted_and_over_query_limit(serve, tmp_path):
    fake = FakeGoogle()
    fake.meta_faults = [json_reply({"status": "OVER_QUERY_LIMIT"})]
    srv = serve(fake)
    _df, df_report = run(srv.url, tmp_path / "a")
    assert df_report["ok"] == 3  # the quota answer was retried
    fake2 = FakeGoogle()
    fake2.meta_faults = [json_reply({"status": "OVER_QUERY_LIMIT"})] * 10
    with pytest.raises(StreetViewError, match="OVER_QUERY_LIMIT"):
        run(serve(fake2).url, tmp_path / "b", retries=2)


def test_invalid_key_and_missing_key(serve, tmp_path, monkeypatch):
    srv = serve(FakeGoogle(key="the-right-key"))
    with pytest.raises(StreetViewError, match="REQUEST_DENIED") as err:
        run(srv.url, tmp_path / "a")
    assert SECRET not in str(err.value) and "key is invalid" in str(err.value)
    assert "key from the value passed in" in str(err.value)
    with pytest.raises(MissingCredentialsError, match="GOOGLE_MAPS_API_KEY"):
        run(srv.url, tmp_path / "b", key=None)
    keyfile = tmp_path / "key.txt"
    keyfile.write_text("the-right-key\n")
    assert len(run(srv.url, tmp_path / "c", key=None, key_file=keyfile)[0]) == 4
    monkeypatch.setenv("GOOGLE_MAPS_API_KEY", "the-right-key")
    assert len(run(srv.url, tmp_path / "d", key=None)[0]) == 4


def test_budget_stop_and_cost_estimate(serve, tmp_path, capsys):
    fake = FakeGoogle()
    srv = serve(fake)
    df, _df_report = run(srv.url, tmp_path / "a", budget_usd=0.02, price_per_1000=7.0)
    out = capsys.readouterr().out
    assert "4 images planned" in out and "estimated cost $0.03 at $7.00 per 1000" in out
    assert "covers 2 of 4 images" in out and "2 to download now" in out
    assert len(df) == 2 and fake.images_served == 2
    # Rerunning with the same budget downloads nothing more: the cap is per output dir.
    again, _again_report = run(srv.url, tmp_path / "a", budget_usd=0.02)
    assert "0 to download now" in capsys.readouterr().out
    assert again.equals(df) and fake.images_served == 2
    # A zero budget is an estimate only.
    assert run(srv.url, tmp_path / "b", budget_usd=0)[0].empty and fake.images_served == 2
    # More money later continues where the cheaper run stopped.
    full, _full_report = run(srv.url, tmp_path / "a", budget_usd=1.0)
    assert len(full) == 4 and fake.images_served == 4


def test_signing_known_answer():
    # The example from Google's "Digital signature" documentation.
    url = "https://maps.googleapis.com/maps/api/geocode/json?address=New+York&client=clientID"
    signed = streetview.sign_url(url, "vNIXE0xscrmjlyV-12Nj_BvUPaw=")
    assert signed == url + "&signature=chaRF2hTJKOScPr-RQCEhZbSzIE="
    # And one computed here from the documented algorithm.
    key = b"\x00\x01binary\xffsecret"
    secret = base64.urlsafe_b64encode(key).decode()
    url = "http://127.0.0.1:9/maps/api/streetview?" + urlencode(
        {"size": "640x640", "pano": "a-b_c", "heading": "12.50", "key": "k"}
    )
    msg = b"/maps/api/streetview?size=640x640&pano=a-b_c&heading=12.50&key=k"
    want = base64.urlsafe_b64encode(hmac.new(key, msg, hashlib.sha1).digest()).decode()
    assert streetview.sign_url(url, secret) == f"{url}&signature={want}"
    assert streetview.sign_url(url, secret.rstrip("=")) == f"{url}&signature={want}"


def test_signed_requests_accepted_and_wrong_secret_refused(serve, tmp_path):
    srv = serve(FakeGoogle(secret=SIGNING_SECRET))
    df, _df_report = run(srv.url, tmp_path / "a", secret=SIGNING_SECRET)
    assert len(df) == 4
    assert all(
        "signature" in r.query for r in srv.paths("/maps/api/streetview") if r.path[-1] == "w"
    )
    wrong = base64.urlsafe_b64encode(b"another-secret").decode()
    with pytest.raises(StreetViewError, match="HTTP 403") as err:
        run(srv.url, tmp_path / "b", secret=wrong)
    assert SECRET not in str(err.value) and wrong not in str(err.value)


def test_non_image_response_reported_not_saved(serve, tmp_path):
    srv = serve(FakeGoogle())
    df, df_report = run(srv.url, tmp_path / "out", points=[(66.0, 0.0), (30.0, 40.0)])
    assert sorted(set(df["location_id"])) == ["pano_30_40"]
    s = df_report
    assert s["failed"] == 2 and any("not an image" in m for m in s.messages)
    assert not list((tmp_path / "out" / "images").glob("pano_66*"))
    assert not list((tmp_path / "out" / "images").glob(".*"))  # no temp files left


def test_resume_after_kill_9(serve, tmp_path):
    points = [(10.0 + i, 20.0) for i in range(5)]  # 5 panoramas x 2 headings = 10 images
    ref, _ref_report = run(serve(FakeGoogle()).url, tmp_path / "ref", points=points)
    fake = FakeGoogle()
    fake.block_after = 4
    srv = serve(fake)
    out = tmp_path / "killed"
    code = (
        "import sys, json; from img2loc.data.sources import streetview as s; "
        "s.collect(sys.argv[1], points=json.loads(sys.argv[2]), headings=2, base_url=sys.argv[3],"
        " rate_per_s=None, backoff_s=0.001, progress=False)"
    )
    env = {**os.environ, "GOOGLE_MAPS_API_KEY": SECRET}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(out), json.dumps(points), srv.url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = out / streetview.STATE_FILE
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        lines = state.read_text().count('"kind": "img"') if state.exists() else 0
        if lines >= 4:
            break
        time.sleep(0.02)
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    fake.release.set()
    assert state.read_text().count('"kind": "img"') == 4
    meta_before = len(srv.paths("/maps/api/streetview/metadata"))
    df, df_report = run(srv.url, out, points=points, key=SECRET)
    assert len(srv.paths("/maps/api/streetview/metadata")) == meta_before  # all journaled
    assert df_report["already_done"] == 4
    assert df_report["downloaded"] == 6
    assert df.drop(columns="image").equals(ref.drop(columns="image"))
    for a, b in zip(df["image"], ref["image"], strict=True):
        assert Path(a).read_bytes() == Path(b).read_bytes()
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(
        p.name for p in (tmp_path / "ref" / "images").iterdir()
    )


def test_state_survives_torn_line_and_refuses_other_settings(tmp_path):
    path = tmp_path / "s.jsonl"
    with JsonlState(path, {"a": 1}) as st:
        st.put("img", "x", "sha")
    with open(path, "a") as f:
        f.write('{"kind": "img", "key": "y", "val')  # a write cut by kill -9
    with JsonlState(path, {"a": 1}) as st:
        assert st.get("img", "x") == "sha" and not st.has("img", "y")
        st.put("img", "z", "sha2")
    assert all(json.loads(line) for line in path.read_text().splitlines())
    with pytest.raises(StateMismatchError, match="other settings"):
        JsonlState(path, {"a": 2})


def test_sample_points_seeded_in_bbox_and_weighted():
    bbox = (10.0, 40.0, 20.0, 60.0)
    a = sample_points(2000, bbox, seed=1)
    assert np.array_equal(a, sample_points(2000, bbox, seed=1))
    assert (a[:, 0] >= 40).all() and (a[:, 0] <= 60).all()
    assert (a[:, 1] >= 10).all() and (a[:, 1] <= 20).all()
    # Equal-area: sin(lat) is uniform, so fewer points near 60 than in degree-uniform sampling.
    s = np.sin(np.radians(a[:, 0]))
    lo, hi = np.sin(np.radians(40)), np.sin(np.radians(60))
    assert abs(s.mean() - (lo + hi) / 2) < 0.01
    flat = sample_points(2000, bbox, seed=1, equal_area=False)
    assert abs(flat[:, 0].mean() - 50) < 0.6 and a[:, 0].mean() < flat[:, 0].mean()
    east = sample_points(500, bbox, seed=2, weights=[[0.0, 1.0], [0.0, 3.0]])
    assert (east[:, 1] >= 15).all() and (east[:, 0] > 50).mean() > 0.65
    dateline = sample_points(500, (170.0, -10.0, -170.0, 10.0), seed=3)
    assert ((dateline[:, 1] >= 170) | (dateline[:, 1] < -170)).all()
    with pytest.raises(ValueError):
        sample_points(5, (0, 10, 1, 5))


def test_collect_from_bbox_is_deterministic(serve, tmp_path):
    srv = serve(FakeGoogle())
    kw = dict(points=None, bbox=(20.0, 29.0, 23.0, 33.0), n_points=6, headings=1, seed=5)
    a, _a_report = run(srv.url, tmp_path / "a", **kw)
    b, _b_report = run(srv.url, tmp_path / "b", **kw)
    assert len(a) > 0 and a.drop(columns="image").equals(b.drop(columns="image"))


def test_choose_headings_modes():
    h = choose_headings("p1", 4, seed=3)
    assert h == choose_headings("p1", 4, seed=3) and h != choose_headings("p2", 4, seed=3)
    d = np.diff(sorted(h))
    assert np.allclose(d, 90.0, atol=0.02)
    r = choose_headings("p1", 4, seed=3, mode="random")
    assert len(r) == 4 and all(0 <= x < 360 for x in r)


def test_secret_never_leaks(serve, tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)  # urllib3 logs every URL at DEBUG
    fake = FakeGoogle(secret=SIGNING_SECRET)
    fake.meta_faults = [
        Reply(500, f"echo {SECRET}".encode()),
        Reply(429, b"", {"Retry-After": "0"}),
    ]
    fake.image_faults = [text_reply(f"<html>key {SECRET} bad</html>")]
    srv = serve(fake)
    out = tmp_path / "out"
    df, df_report = run(
        srv.url, out, points=[*POINTS, (66.0, 0.0)], secret=SIGNING_SECRET, retries=1
    )
    with pytest.raises(StreetViewError) as err:  # 403 for a wrong signature: raised
        run(srv.url, out / "x", secret=base64.urlsafe_b64encode(b"wrong").decode())
    errors = [f"{err.value} {err.value.__cause__} {err.value.__context__}"]
    _refused, refused_report = streetview.collect(
        out / "y",
        points=[(1.0, 1.0)],
        key=SECRET,
        base_url="http://127.0.0.1:9",
        retries=0,
        backoff_s=0,
        progress=False,
    )
    captured = capsys.readouterr()
    blob = "\n".join(
        [
            captured.out,
            captured.err,
            caplog.text,
            df.to_csv(),
            repr(df_report),
            *errors,
            repr(refused_report),
        ]
    )
    assert len(df) > 0 and any("127.0.0.1" in m for m in refused_report.messages)
    assert any(  # urllib3 logs every request line at DEBUG: scrubbed by our filter
        r.name == "urllib3.connectionpool" and "key=***" in r.getMessage() for r in caplog.records
    )
    for secret in (SECRET, SIGNING_SECRET):
        assert secret not in blob
        assert files_contain(tmp_path, secret) == []
