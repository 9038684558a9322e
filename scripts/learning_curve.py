"""Learning curve of the default recipe: dev GeoGuessr against the number of training places.

    python scripts/learning_curve.py --feats build/default/feats -o docs/learning-curve.png

For each fraction of the training places (1/8, 1/4, 1/2, all; several seeds) the cells are
rebuilt from those places (`--min-samples 5 --max-samples 30`, as `make train-default`)
and the default head (linear, dropout 0.3, automatic pos_weight, 300 km label smoothing,
AdamW 3e-3, weight decay 0.05, 40 epochs, batch 256; configs/default-head.yaml) is
trained on the frozen Lite0 features of those places, photo and mirror image, then scored
on the whole dev split (`val`, score-optimal rule). A power law fitted to the points
projects what 10x and 100x the places would give; it is a projection, not a measurement.
Takes a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from img2loc.data.features import load_features
from img2loc.geo import CellSet
from img2loc.geo.decode import decode
from img2loc.geo.distance import geoguessr_score, haversine_km


def train_head(
    x: np.ndarray, lat: np.ndarray, lon: np.ndarray, cells: CellSet, seed: int
) -> torch.nn.Module:
    torch.manual_seed(seed)
    y = cells.multi_hot(lat, lon)
    d = haversine_km(lat[:, None], lon[:, None], cells.center_lat[None], cells.center_lon[None])
    y = np.maximum(y, np.exp(-d / 300.0).astype(np.float32))
    n = float(cells.params["n_counted"])
    c = np.maximum(cells.counts.astype(np.float64), 1.0)
    pw = torch.tensor(np.clip((n - c) / c, 1.0, 150.0), dtype=torch.float32)
    head = torch.nn.Sequential(torch.nn.Dropout(0.3), torch.nn.Linear(x.shape[1], len(cells)))
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3, weight_decay=0.05)
    xt, yt = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)
    epochs, bs = 40, 256
    steps = epochs * math.ceil(len(xt) / bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps, pct_start=0.05)
    g = torch.Generator().manual_seed(seed)
    head.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=g).split(bs):
            loss = F.binary_cross_entropy_with_logits(head(xt[idx]), yt[idx], pos_weight=pw)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return head.eval()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--feats", required=True)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("-o", "--output", required=True, help="PNG of the curve")
    a = ap.parse_args()
    torch.set_num_threads(2)
    tr, dev = load_features(a.feats, "train"), load_features(a.feats, "val")
    places = np.unique(tr["location_id"])
    xd = torch.from_numpy(dev["features"].astype(np.float32))
    rows = []
    for frac in (0.125, 0.25, 0.5, 1.0):
        for seed in range(a.seeds if frac < 1 else 1):
            rng = np.random.default_rng(seed)
            keep = rng.choice(places, max(1, round(frac * places.size)), replace=False)
            m = np.isin(tr["location_id"], keep)
            lat, lon = tr["latitude"][m], tr["longitude"][m]
            cells = CellSet.build(
                lat, lon, min_samples=5, max_samples=30, groups=tr["location_id"][m]
            )
            x = np.r_[tr["features"][m], tr["features_flip"][m]]
            head = train_head(x, np.r_[lat, lat], np.r_[lon, lon], cells, seed)
            with torch.no_grad():
                p = torch.sigmoid(head(xd)).numpy()
            _, plat, plon = decode(p, cells)
            s = geoguessr_score(haversine_km(plat, plon, dev["latitude"], dev["longitude"]))
            rows.append((int(keep.size), len(cells), float(s.mean())))
            print(f"{keep.size} places, {len(cells)} cells: dev GeoGuessr {s.mean():.0f}")
    n = np.array([r[0] for r in rows], float)
    g = np.array([r[2] for r in rows])
    # GeoGuessr's ceiling is 5000: fit the gap to it as a power law of the places.
    b, log_a = np.polyfit(np.log(n), np.log(5000.0 - g), 1)
    full = float(places.size)
    proj = {k: 5000.0 - math.exp(log_a) * (k * full) ** b for k in (10, 100)}
    print(f"fit: 5000 - GeoGuessr = {math.exp(log_a):.0f} * places^{b:.3f}")
    for k, v in proj.items():
        print(f"projected with {k}x the places ({k * full:,.0f}): {v:.0f}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(n, g, "o", color="#4477aa", label="measured (dev split, one head per point)")
    xs = np.geomspace(n.min() * 0.8, full * 120, 100)
    ax.plot(xs, 5000.0 - math.exp(log_a) * xs**b, "--", color="#999999", label="power-law fit")
    for k, v in proj.items():
        ax.plot([k * full], [v], "s", color="#cc3311")
        ax.annotate(f"{k}x: {v:,.0f}", (k * full, v), textcoords="offset points", xytext=(-30, 8))
    ax.set_xscale("log")
    ax.set_xlabel("training places (Street View, frozen Lite0 + linear head)")
    ax.set_ylabel("dev GeoGuessr score per photo")
    ax.set_title("Learning curve of the default recipe")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    Path(a.output).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.output, dpi=110)
    print(f"wrote {a.output}")


if __name__ == "__main__":
    main()
