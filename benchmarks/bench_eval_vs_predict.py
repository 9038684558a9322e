"""Evaluation speed against prediction speed on the same photos, in one process and one run.

    python benchmarks/bench_eval_vs_predict.py [--n 400] [--model MODEL_DIR] [--data ../shared/data]

Runs the code paths the CLI runs — ``img2loc predict`` (``Predictor.load`` then
``predict_iter`` written by ``write_predictions``) and ``img2loc eval``
(``evaluate``: run the model, compute the figures, write the report) — on the
same street-view photos with the bundled default model (or ``--model``), and
prints photos/s of each and the ratio eval/predict. Both are measured in the
same run, alternately, best of ``--repeat``, so load on a shared machine hits
both alike. ``stream`` is evaluation's photos/s while decoding and running the
model (``images_per_s`` of the report); ``command`` the whole command,
report included. The target (issue 16): eval >= 0.9x predict.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TARGET = 0.9


def photos_csv(data: Path, n: int, out: Path) -> tuple[Path, list[str]]:
    """A CSV of the first ``n`` streetview-world photos (absolute paths) and their paths."""
    root = data / "streetview-world"
    df = pd.read_csv(root / "locations.csv").head(n)
    df["image"] = [str(root / p) for p in df["image"]]
    df[["image", "latitude", "longitude", "location_id"]].to_csv(out, index=False)
    return out, df["image"].tolist()


def time_predict(model: Path | None, paths: list[str], batch_size: int) -> tuple[float, float]:
    """(wall, CPU) seconds of `img2loc predict --json PATHS` after loading the model."""
    from img2loc.inference.output import write_predictions
    from img2loc.inference.predictor import Predictor

    predictor = Predictor.load(model, "auto", batch_size=batch_size)
    predictor.predict(paths[:batch_size])  # warm-up: first-run allocations
    t0, c0 = time.perf_counter(), time.process_time()
    summary = write_predictions(
        predictor.predict_iter(paths, 5, "score", "mean"), io.StringIO(), "json", 5, "score"
    )
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert summary.failed == 0, summary.line()
    return dt, cpu


def time_eval(
    model: Path | None, csv: Path, out: Path, batch_size: int
) -> tuple[float, float, float]:
    """(wall seconds of the whole `img2loc eval`, of decoding and running the model, and
    CPU seconds of the stream)."""
    from img2loc.evaluation import EvalOptions, run_evaluation
    from img2loc.evaluation.report import write_report

    opts = EvalOptions(batch_size=batch_size, progress=False)
    t0, c0 = time.perf_counter(), time.process_time()
    ev = run_evaluation(model, [csv], options=opts)  # what `evaluate` runs, then the report
    cpu = time.process_time() - c0
    write_report(ev, out)
    return time.perf_counter() - t0, ev.predict_seconds, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=400, help="photos")
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: bundled)")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv, paths = photos_csv(a.data, a.n, Path(tmp) / "photos.csv")
        n = len(paths)
        # Warm-up of the evaluation path (imports, reverse geocoder, matplotlib).
        time_eval(a.model, csv, Path(tmp) / "warm", a.batch_size)
        pred, pred_cpu, ev, stream, ev_cpu = [], [], [], [], []
        for i in range(a.repeat):
            w, c = time_predict(a.model, paths, a.batch_size)
            pred.append(w)
            pred_cpu.append(c)
            e, s, c = time_eval(a.model, csv, Path(tmp) / f"report{i}", a.batch_size)
            ev.append(e)
            stream.append(s)
            ev_cpu.append(c)
    p, e, s = n / min(pred), n / min(ev), n / min(stream)
    pc, ec = n / min(pred_cpu), n / min(ev_cpu)
    print(f"photos: {n} (streetview-world), batch size {a.batch_size}, best of {a.repeat}")
    print(f"predict:          {p:7.1f} photos/s")
    print(f"eval (stream):    {s:7.1f} photos/s   ratio eval/predict {s / p:.2f}")
    print(f"eval (command):   {e:7.1f} photos/s   ratio eval/predict {e / p:.2f}")
    # Per CPU-second (all threads): steadier than wall time on a machine shared with others.
    print(f"per CPU-second:   predict {pc:.1f}, eval {ec:.1f} photos   ratio {ec / pc:.2f}")
    verdict = "meets" if s / p >= TARGET else "misses"
    print(f"target: eval stream >= {TARGET}x predict: {verdict}")


if __name__ == "__main__":
    main()
