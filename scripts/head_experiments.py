"""Heads on frozen features: a grid of settings, scored on the dev split in one run.

    python scripts/head_experiments.py --features build/default/feats \
        --cells build/default/cells_10.json --cells build/default/cells_5.json \
        -o build/default/experiments.md

Each experiment trains a head with the real training code (``GeoTask`` on
``FeatureDataModule``, the same path as ``img2loc train -c
configs/default-head.yaml``) and scores it on the dev split's features: single
view and views aggregated per ``location_id``, with and without flip
test-time augmentation, for the ``hierarchical`` and ``score`` decoding rules.
The table (Markdown) goes to ``-o`` and to stdout; ``docs/default-model.md``
quotes it. Features are computed once by ``img2loc embed`` (flip included), so
the whole grid takes minutes on a CPU.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch

from img2loc.data.features import load_features
from img2loc.geo import CellSet, decode, geo_metrics
from img2loc.training.datamodule import FeatureDataModule
from img2loc.training.task import GeoTask

BASE: dict[str, Any] = {
    "head": "linear",
    "dropout": 0.3,
    "pos_weight": "auto",
    "lr": 0.003,
    "weight_decay": 0.05,
    "warmup_steps": 20,
    "label_smoothing_km": 0.0,
}

# (name, changes to BASE, epochs). The first is the linear probe baseline.
GRID: list[tuple[str, dict[str, Any], int]] = [
    ("linear probe", {}, 40),
    ("linear, pos_weight 150 (seed)", {"pos_weight": 150.0}, 40),
    ("linear, pos_weight 1", {"pos_weight": 1.0}, 40),
    ("linear, smoothing 300 km", {"label_smoothing_km": 300.0}, 40),
    ("mlp 1024", {"head": "mlp", "dropout": 0.5, "lr": 0.001}, 40),
    (
        "mlp 1024, smoothing 300 km",
        {"head": "mlp", "dropout": 0.5, "lr": 0.001, "label_smoothing_km": 300.0},
        40,
    ),
    (
        "mlp 1024, smoothing 150 km",
        {"head": "mlp", "dropout": 0.5, "lr": 0.001, "label_smoothing_km": 150.0},
        40,
    ),
    ("hierarchical head", {"head": "hierarchical"}, 40),
    ("single-label CE (finest cells)", {"loss": "ce"}, 40),
]


def train_head(
    features: str, cells: str, kw: dict[str, Any], epochs: int, seed: int = 0
) -> GeoTask:
    """A head trained on frozen features with the project's own Lightning task."""
    L.seed_everything(seed, verbose=False)
    task = GeoTask(cells=cells, seed=seed, **{**BASE, **kw})
    dm = FeatureDataModule(features, batch_size=256)
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        check_val_every_n_epoch=epochs,
    )
    trainer.fit(task, datamodule=dm)
    return task


@torch.no_grad()
def head_probs(task: GeoTask, feats: np.ndarray) -> np.ndarray:
    task.eval()
    model = task._eval_model()
    out = torch.sigmoid(model.forward_head(torch.from_numpy(feats).float()))
    return out.numpy().astype(np.float64)


def score(
    probs: np.ndarray, cells: CellSet, val: dict[str, np.ndarray], rule: str
) -> dict[str, dict[str, Any]]:
    """Single-view and per-location (mean of probabilities) metrics."""
    lat, lon = val["latitude"], val["longitude"]
    _, plat, plon = decode(probs, cells, rule)
    single = geo_metrics(plat, plon, lat, lon)
    codes, first = pd.factorize(val["location_id"])[0], None
    g = codes.max() + 1
    sums = np.zeros((g, probs.shape[1]))
    np.add.at(sums, codes, probs)
    counts = np.bincount(codes, minlength=g)
    first = np.unique(codes, return_index=True)[1]
    _, glat, glon = decode(sums / counts[:, None], cells, rule)
    multi = geo_metrics(glat, glon, lat[first], lon[first])
    multi["views"] = float(counts.mean())
    return {"1 view": single, "views": multi}


def row(name: str, m: dict[str, Any]) -> str:
    a = m["acc_km"]
    return (
        f"| {name} | {a['25']:.1f} | {a['200']:.1f} | {a['750']:.1f} | {a['2500']:.1f} "
        f"| {m['median_km']:.0f} | {m['geoguessr_mean']:.0f} |"
    )


HEADER = (
    "| experiment | 25 km % | 200 km % | 750 km % | 2500 km % | median km | GeoGuessr |\n"
    "|---|---:|---:|---:|---:|---:|---:|"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--features", required=True)
    ap.add_argument("--cells", action="append", required=True, help="cell sets to compare")
    ap.add_argument("--split", default="val")
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--only", help="run only experiments whose name contains this")
    args = ap.parse_args()
    val = load_features(args.features, args.split)
    lines = [f"Dev split: {len(val['key'])} photos, {len(set(val['location_id']))} places.", ""]
    results: list[dict[str, Any]] = []
    grid = [(n, kw, e, args.cells[0]) for n, kw, e in GRID]
    grid += [
        (f"mlp 1024, smoothing 300 km, {Path(c).stem}", GRID[5][1], 40, c) for c in args.cells[1:]
    ]
    for name, kw, epochs, cells_path in grid:
        if args.only and args.only not in name:
            continue
        t = time.perf_counter()
        task = train_head(args.features, cells_path, kw, epochs)
        cells = task.cells
        p = head_probs(task, val["features"])
        p_tta = 0.5 * (p + head_probs(task, val["features_flip"]))
        res = {
            "name": name,
            "cells": Path(cells_path).name,
            "n_cells": len(cells),
            "seconds": time.perf_counter() - t,
            "plain": {r: score(p, cells, val, r) for r in ("hierarchical", "score")},
            "flip": {r: score(p_tta, cells, val, r) for r in ("hierarchical", "score", "seed")},
        }
        results.append(res)
        print(name, json.dumps(res["flip"]["score"]["1 view"]), flush=True)
    out = [*lines]
    for title, pick in [
        ("1 view, flip TTA, score-optimal decoding", lambda r: r["flip"]["score"]["1 view"]),
        (
            "4 views (mean of probabilities), flip TTA, score-optimal decoding",
            lambda r: r["flip"]["score"]["views"],
        ),
        ("1 view, no TTA, hierarchical decoding", lambda r: r["plain"]["hierarchical"]["1 view"]),
    ]:
        out += [f"### {title}", "", HEADER]
        out += [row(f"{r['name']} ({r['n_cells']} cells)", pick(r)) for r in results]
        out.append("")
    best = max(results, key=lambda r: r["flip"]["score"]["1 view"]["geoguessr_mean"])
    out += [f"### Decoding rules and TTA ({best['name']})", "", HEADER]
    for tta in ("plain", "flip"):
        for rule, m in best[tta].items():
            out.append(
                row(f"{rule}, {'flip TTA' if tta == 'flip' else 'no TTA'}, 1 view", m["1 view"])
            )
            out.append(
                row(f"{rule}, {'flip TTA' if tta == 'flip' else 'no TTA'}, views", m["views"])
            )
    text = "\n".join(out) + "\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    args.output.with_suffix(".json").write_text(json.dumps(results, indent=1, default=float))
    print(text)


if __name__ == "__main__":
    main()
