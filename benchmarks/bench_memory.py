"""Peak memory of `img2loc predict` and `img2loc eval` over 1,000 vs 10,000 photos.

    python benchmarks/bench_memory.py [--model MODEL_DIR] [--n 1000 10000] [--keep DIR]

Both commands stream: photos are decoded a batch at a time and results are written
or reduced as they come, so peak RSS should hardly move between 1,000 and 10,000
photos (what does grow is a few numbers per photo: paths, coordinates, guesses).
The photos are generated (160x120 JPEGs with EXIF GPS, about 8 KB each) into a
temporary folder; peak RSS is the child process's ``ru_maxrss`` from ``wait4``.
Without ``--model`` the tiny hand-made model of the tests is used (needs the dev
extra for ``onnx``): model size is a constant, the growth with N is what matters.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EXE = Path(sys.executable).with_name("img2loc")
#: Peak RSS at the largest N may exceed the smallest by this factor (plus SLACK_MB) at most.
GROWTH, SLACK_MB = 1.3, 60.0


def write_photos(folder: Path, n: int, seed: int = 0) -> Path:
    """``n`` small JPEGs with EXIF GPS, and locations.csv listing them."""
    sys.path.insert(0, str(ROOT))
    from tests.bad_inputs import gps_exif

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lat, lon = rng.uniform(-60, 70, n), rng.uniform(-180, 180, n)
    rows = ["image,latitude,longitude"]
    base = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    for i in range(n):
        arr = np.roll(base, i % 160, axis=1) ^ np.uint8(i % 251)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=85, exif=gps_exif(lat[i], lon[i]))
        name = f"{i // 1000:02d}/{i:05d}.jpg"
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes(buf.getvalue())
        rows.append(f"{name},{lat[i]:.6f},{lon[i]:.6f}")
    (folder / "locations.csv").write_text("\n".join(rows) + "\n")
    return folder


def subset(src: Path, dst: Path, n: int) -> Path:
    """The first ``n`` photos of ``src`` as symlinks (no copies), with their locations.csv."""
    lines = (src / "locations.csv").read_text().splitlines()[: n + 1]
    for line in lines[1:]:
        name = line.split(",")[0]
        (dst / name).parent.mkdir(parents=True, exist_ok=True)
        (dst / name).symlink_to(src / name)
    (dst / "locations.csv").write_text("\n".join(lines) + "\n")
    return dst


def peak_rss_mb(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd`` (output discarded) and return (peak RSS in MB, seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err.decode()[-2000:]}")
    return usage.ru_maxrss / 1024.0, time.perf_counter() - t0  # Linux: KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=ap_fmt())
    ap.add_argument("--model", type=Path, help="model folder (default: the tests' tiny model)")
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 10000], help="folder sizes")
    ap.add_argument("--no-eval", action="store_true", help="measure predict only")
    ap.add_argument("--keep", type=Path, help="generate the photos here and keep them")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp_s:
        tmp = Path(tmp_s)
        model = args.model
        if model is None:
            sys.path.insert(0, str(ROOT))
            from tests.inference.conftest import make_model_dir

            model = make_model_dir(tmp / "model")
        t0 = time.perf_counter()
        photos = write_photos(args.keep or tmp / "photos", max(args.n))
        print(f"wrote {max(args.n)} photos in {time.perf_counter() - t0:.0f} s; model {model}")
        rows = []
        for n in sorted(args.n):
            folder = photos if n == max(args.n) else subset(photos, tmp / f"n{n}", n)
            p_mb, p_s = peak_rss_mb(
                [str(EXE), "predict", "--json", "--model", str(model), str(folder)]
            )
            e_mb = e_s = float("nan")
            if not args.no_eval:
                e_mb, e_s = peak_rss_mb(
                    [
                        str(EXE), "eval", "--model", str(model), "--data",
                        str(folder / "locations.csv"), "-o", str(tmp / f"report{n}"),
                    ]
                )  # fmt: skip
            rows.append((n, p_mb, p_s, e_mb, e_s))
            print(
                f"{n:>7,} photos: predict peak RSS {p_mb:7.1f} MB ({n / p_s:5.0f} photos/s)"
                f" | eval peak RSS {e_mb:7.1f} MB ({n / e_s:5.0f} photos/s)",
                flush=True,
            )
    (n0, p0, _, e0, _), (n1, p1, _, e1, _) = rows[0], rows[-1]
    ok = True
    for what, a, b in (("predict", p0, p1), ("eval", e0, e1)):
        if a == a:  # measured (not NaN)
            bounded = b <= a * GROWTH + SLACK_MB
            ok &= bounded
            print(
                f"{what}: {b - a:+.1f} MB from {n0:,} to {n1:,} photos "
                f"({(b - a) / (n1 - n0) * 1024:.2f} KB per extra photo) -> "
                + ("bounded" if bounded else "GROWS with N")
            )
    sys.exit(0 if ok else 1)


def ap_fmt() -> type[argparse.HelpFormatter]:
    return argparse.RawDescriptionHelpFormatter


if __name__ == "__main__":
    main()
