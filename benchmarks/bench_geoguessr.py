"""GeoGuessr figures of a model on the shared Street View sets (and the panorama examples).

    python benchmarks/bench_geoguessr.py [--model MODEL_DIR] [--games 100] [--out DIR]

For each set: `img2loc geoguessr`'s simulated 5-round games, argmax vs score-optimal
guesses, 1 view vs all views of a place (4 headings in streetview-world and -croatia,
3 in streetview-us-west; 4 rendered views per 360° panorama in examples-cc-by-sa).
Prints each table and a summary; writes one JSON per set into ``--out``.
The Street View sets are not held out from a model trained on them: use the figures
to compare rules and view counts, not as the model's held-out score (for that, pass
the test shards of the training data to `img2loc geoguessr`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from img2loc.evaluation.geoguessr import GameOptions, format_results, run_games
from img2loc.evaluation.models import load_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SETS = ("streetview-world", "streetview-us-west", "streetview-croatia", "examples-cc-by-sa")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model folder or checkpoint (default: bundled)")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--games", type=int, default=100)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sets", nargs="*", default=list(SETS))
    ap.add_argument("--out", type=Path, default=Path("bench_geoguessr"))
    args = ap.parse_args()
    model = load_model(args.model)
    args.out.mkdir(parents=True, exist_ok=True)
    summary = []
    for name in args.sets:
        csv = args.data / name / "locations.csv"
        if not csv.exists():
            print(f"skip {name}: {csv} not found")
            continue
        t0 = time.perf_counter()
        opts = GameOptions(games=args.games, views=args.views, seed=args.seed, progress=False)
        res = run_games(model, [csv], opts)
        secs = time.perf_counter() - t0
        print("\n".join(format_results(res)))
        print(f"({res['photos_predicted']} photos predicted in {secs:.1f} s)\n")
        (args.out / f"{name}.json").write_text(json.dumps(res, indent=1))
        p = res["players"]
        multi = max(p, key=lambda k: int(k.split("/")[1])).split("/")[1]
        summary.append(
            f"{name:<20} "
            + "  ".join(
                f"{k}: {p[k]['game_total']['mean']:7,.0f}"
                for k in ("hierarchical/1", "score/1", f"hierarchical/{multi}", f"score/{multi}")
                if k in p
            )
        )
    print("mean game totals (0-25,000):")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
