"""`img2loc predict` end to end, input expansion, and the no-torch guarantee."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from img2loc import Predictor
from img2loc.inference.images import BadInput, ImageBytes
from img2loc.inference.inputs import expand_inputs
from tests.conftest import SHARED, gps_exif, run
from tests.inference.conftest import FIELDS, TOP_FIELDS, bad_corpus, photo

PKG = Path(__file__).resolve().parents[2] / "src" / "img2loc"
EXIF_DIR = SHARED / "photos-exif-gps"


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(7)
    (d / "sub" / ".hidden").mkdir(parents=True)
    (d / "a.jpg").write_bytes(photo(rng, exif=gps_exif(-33.8568, 151.2153)))
    (d / "sub" / "b.PNG").write_bytes(photo(rng, fmt="PNG"))
    (d / "sub" / ".hidden" / "c.jpg").write_bytes(photo(rng))
    (d / "notes.txt").write_text("not a photo")
    return d


def test_expand_inputs(photos):
    a, b = str(photos / "a.jpg"), str(photos / "sub" / "b.PNG")
    assert list(expand_inputs([str(photos)])) == [a, b]  # recursive, sorted, hidden skipped
    assert list(expand_inputs([str(photos / "**" / "*.PNG")])) == [b]
    assert list(expand_inputs(["https://example.org/x.jpg", a])) == ["https://example.org/x.jpg", a]
    [miss] = expand_inputs([str(photos / "*.heic")])
    assert isinstance(miss, BadInput) and "no file matches" in miss.error
    # stdin: image bytes, or a list of paths
    data = (photos / "a.jpg").read_bytes()
    assert list(expand_inputs(["-"], io.BytesIO(data))) == [ImageBytes("-", data)]
    listing = f"{a}\n\n{photos / 'sub'}\n".encode()
    assert list(expand_inputs(["-"], io.BytesIO(listing))) == [a, b]
    [nothing] = expand_inputs(["-"], io.BytesIO(b""))
    assert isinstance(nothing, BadInput) and "empty" in nothing.error


def test_cli_json_schema(model_dir, photos, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"<html>404</html>")
    out = run("predict", "--model", str(model_dir), str(photos), str(bad), "--json", "--top-k", "2")
    recs = json.loads(out.stdout)
    assert [Path(r["image"]).name for r in recs] == ["a.jpg", "b.PNG", "bad.jpg"]
    for r in recs:
        assert set(r) == FIELDS
        assert all(set(t) == TOP_FIELDS for t in r["top"])
    a, b, err = recs
    assert isinstance(a["lat"], float) and isinstance(a["place"], str) and len(a["top"]) == 2
    assert 0 < a["confidence"] <= 1 and isinstance(a["top"][0]["cell"], str)
    assert a["exif"] == pytest.approx({"lat": -33.8568, "lon": 151.2153}, abs=1e-4)
    assert a["error_km"] >= 0 and b["exif"] is None and b["error_km"] is None
    assert err["lat"] is None and err["top"] == [] and "HTML" in err["error"]
    assert "1 failed" in out.stderr  # the summary goes to stderr, stdout stays pure JSON


def test_cli_table_csv_stdin_and_exit_codes(model_dir, photos, tmp_path):
    table = run("predict", "--model", str(model_dir), str(photos / "a.jpg")).stdout
    assert "a.jpg" in table and "km" in table and "top:" in table
    assert "1 image(s): 1 located, 0 failed; 1 with EXIF GPS" in table
    rows = list(
        csv.DictReader(
            io.StringIO(
                run(
                    "predict",
                    "--model",
                    str(model_dir),
                    str(photos),
                    "--csv",
                    "--variant",
                    "browser",
                ).stdout
            )
        )
    )
    assert [Path(r["image"]).name for r in rows] == ["a.jpg", "b.PNG"] and rows[0]["error_km"]
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("img2loc")),
            "predict",
            "--model",
            str(model_dir),
            "-",
            "--json",
        ],
        input=(photos / "a.jpg").read_bytes(),
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0 and json.loads(proc.stdout)[0]["image"] == "-"
    # only failures: exit 1; one success is enough for exit 0
    bad = run("predict", "--model", str(model_dir), str(tmp_path / "nope.jpg"), check=False)
    assert bad.returncode == 1 and "no such file" in bad.stdout
    ok = run("predict", "--model", str(model_dir), str(tmp_path / "nope.jpg"), str(photos))
    assert ok.returncode == 0
    usage = run("predict", "--model", str(tmp_path / "none"), str(photos), check=False)
    assert usage.returncode == 2 and "img2loc export" in usage.stderr
    both = run("predict", "--model", str(model_dir), str(photos), "--json", "--csv", check=False)
    assert both.returncode == 2


def test_cli_bad_corpus(model_dir, tmp_path):
    expected = bad_corpus(tmp_path / "bad", np.random.default_rng(8))
    recs = json.loads(
        run("predict", "--model", str(model_dir), str(tmp_path / "bad"), "--json").stdout
    )
    assert len(recs) == len(expected)
    for r in recs:
        why = expected[Path(r["image"]).name]
        assert (r["error"] is None) if why is None else (why in r["error"]), r


NO_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch imported on the inference path")
sys.meta_path.insert(0, Block())
{body}
assert "torch" not in sys.modules
print("ok")
"""


@pytest.mark.parametrize(
    "body",
    [
        "from img2loc import Predictor\n"
        "r = Predictor.load(sys.argv[1]).predict(sys.argv[2])\n"
        "assert r.ok, r.error",
        "from img2loc.cli import main\n"
        "sys.argv = ['img2loc', 'predict', '--model', sys.argv[1], sys.argv[2], '--json']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code",
    ],
    ids=["api", "cli"],
)
def test_predict_imports_no_torch(model_dir, photos, body):
    code = NO_TORCH.format(body=body)
    proc = subprocess.run(
        [sys.executable, "-c", code, str(model_dir), str(photos / "a.jpg")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]


@pytest.mark.shared_data
@pytest.mark.skipif(not EXIF_DIR.exists(), reason="shared data absent")
def test_real_phone_photos(model_dir):
    files = sorted(p for p in EXIF_DIR.iterdir() if p.suffix.lower() in (".jpg", ".heic"))
    assert any(p.suffix.lower() == ".heic" for p in files)
    res = Predictor.load(model_dir).predict(files)
    assert all(r.ok for r in res), [r.error for r in res if not r.ok]
    by_name = {Path(r.image).name: r for r in res}
    heic = by_name["drewnoakes__heic__IMG_1034.heic"]
    assert heic.exif == pytest.approx((23.1779, 113.3943), abs=1e-3) and heic.error_km is not None
    big = by_name["drewnoakes__jpg__Apple_iPhone_6.jpg"]  # 8 MP JPEG
    assert big.exif is not None and big.error_km is not None
    assert sum(r.exif is not None for r in res) >= 30


def test_urls_are_fetched(model_dir, photos):
    import http.server
    import threading

    data = (photos / "a.jpg").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            ok = self.path == "/a.jpg"
            self.send_response(200 if ok else 404)
            self.end_headers()
            self.wfile.write(data if ok else b"gone")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        good, bad = Predictor.load(model_dir).predict([f"{base}/a.jpg", f"{base}/b.jpg"])
    finally:
        server.shutdown()
    assert good.ok and good.image == f"{base}/a.jpg" and good.exif is not None
    assert not bad.ok and "HTTP 404" in (bad.error or "")


@pytest.mark.parametrize("cmd", ["predict", "export"])
def test_help(cmd):
    out = run(cmd, "--help").stdout
    assert "Usage" in out and ("stdin" in out if cmd == "predict" else "atomically" in out)


def test_table_says_why_the_guess_is_not_the_top_region(model_dir, photos):
    """Score-optimal guesses beside a `top:` list get the one-sentence explanation."""
    from img2loc.inference.output import GUESS_EXPLAINED

    a = str(photos / "a.jpg")
    table = run("predict", "--model", str(model_dir), a).stdout
    assert "top:" in table and table.rstrip().endswith(GUESS_EXPLAINED)
    assert table.count(GUESS_EXPLAINED) == 1
    # Not where it does not apply: argmax guesses, no list, machine-readable output.
    for extra in (["--decode", "hierarchical"], ["--top-k", "1"], ["--json"], ["--csv"]):
        assert GUESS_EXPLAINED not in run("predict", "--model", str(model_dir), a, *extra).stdout


def test_checkpoint_as_model_says_to_export(photos, tmp_path):
    ckpt = tmp_path / "run.ckpt"
    ckpt.write_bytes(b"not read")
    proc = run("predict", "--model", str(ckpt), str(photos), check=False)
    assert proc.returncode == 2 and "not found" not in proc.stderr
    assert "training checkpoint" in proc.stderr
    assert f"img2loc export {ckpt} -o model_dir/" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
