"""Web app speed in headless Chromium: page load -> first answer, and ms per image.

Serves the app with `img2loc serve`'s server, opens it with ``?example=0`` (the app
predicts the first bundled example as soon as the model is loaded) and reports, from
the page's own clock (milliseconds since navigation started):

* model ready: ONNX Runtime Web loaded, model fetched and its session created,
* first answer: the first example decoded, preprocessed, run and drawn on the map,

then ms per image over the examples: model run alone, and the whole path (decode +
preprocess + run). Threads: 2 (cross-origin isolated). Needs Chromium
(``apt-get install chromium``) and playwright (the ``dev`` extra).

    python benchmarks/bench_web.py [--model MODEL_DIR] [--runs 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from tests.web.browser import CHROMIUM_ARGS, chromium_path

    from img2loc.inference.predictor import DEFAULT_MODEL_DIR

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="model folder")
    ap.add_argument("--runs", type=int, default=30, help="timed model runs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variant", choices=["auto", "fp32"], default="auto")
    ap.add_argument("--chromium", default=str(chromium_path()))
    a = ap.parse_args()
    if not a.model.is_dir():
        print(f"no model folder at {a.model}; pass --model DIR (from `img2loc export`)")
        return 2
    if not Path(a.chromium).exists():
        print("Chromium not found: apt-get install chromium")
        return 2
    from playwright.sync_api import sync_playwright

    from img2loc.server import make_server

    srv = make_server(a.model, "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/?example=0&threads={a.threads}"
    url += f"&variant={a.variant}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=a.chromium, args=CHROMIUM_ARGS)
        page = browser.new_context().new_page()
        page.goto(url)
        page.wait_for_selector('body[data-answers="1"]', state="attached", timeout=120_000)
        t = page.evaluate("img2loc.timings")
        # The offline app installs itself after the first answer (copying ~20 MB into its
        # cache): let it finish so the per-photo figures are the steady state.
        offline = page.evaluate("img2loc.offline.then((r) => !!r)")
        info = page.evaluate(
            "({file: img2loc.model.file, cells: img2loc.model.cells.n, threads: img2loc.threads,"
            " isolated: crossOriginIsolated, size: img2loc.model.pre.input_size})"
        )
        run_ms = page.evaluate(
            """async (runs) => {
              const m = img2loc.model, S = m.pre.input_size;
              const x = new Float32Array(3 * S * S).map((_, i) => Math.sin(i));
              for (let i = 0; i < 3; i++) await m.run(x);
              const out = [];
              for (let i = 0; i < runs; i++) {
                const t = performance.now(); await m.run(x); out.push(performance.now() - t);
              }
              return out;
            }""",
            a.runs,
        )
        full_ms = page.evaluate(
            """async () => {
              const out = [];
              for (const e of await img2loc.examples) {
                const b = await (await fetch(e.url)).blob();
                const t = performance.now(); await img2loc.probabilities(b);
                out.push(performance.now() - t);
              }
              return out;
            }"""
        )
        browser.close()
    srv.shutdown()
    srv.server_close()
    print(
        f"model: {a.model} ({info['file']}, {info['cells']} cells, {info['size']} px), "
        f"{info['threads']} threads, cross-origin isolated: {info['isolated']}"
    )
    print(f"offline app installed: {offline}")
    print(f"page load -> model ready:  {t['ready'] / 1000:.2f} s")
    print(f"page load -> first answer: {t['firstAnswer'] / 1000:.2f} s")
    print(
        f"model run: {statistics.median(run_ms):.1f} ms/image median "
        f"(p90 {sorted(run_ms)[int(0.9 * len(run_ms))]:.1f}, {len(run_ms)} runs)"
    )
    print(
        f"decode + preprocess + run on the {len(full_ms)} examples (1024 px JPEGs): "
        f"{statistics.median(full_ms):.1f} ms/image median"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
