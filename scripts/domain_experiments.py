"""Out-of-domain experiments: which per-photo score tells street views from everyday photos,
and how far a prior over where photos are taken should take over when a photo is unlike
the training photos.

    python scripts/domain_experiments.py --feats build/default/feats \\
        --ood-feats build/exp/im2gps-feats --cells build/exp/cells_prior.json \\
        --head build/exp/head/checkpoints/best-*.ckpt -o build/exp/domain.md

Everything runs on frozen features (``img2loc embed``), so one run takes minutes. The
in-domain split is the Street View dev split (``val``); the out-of-domain set is
im2gps3k-dev (evaluation and calibration only: nothing here trains network weights on
it). Reported: the separation (ROC AUC) of each candidate score, and the GeoGuessr mean
of the blended answer on Street View dev/test and im2gps3k-dev for a grid of
temperature / blend settings.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from img2loc.data.cells import read_cells
from img2loc.data.features import load_features
from img2loc.geo.decode import best_constant, leaf_distribution, score_optimal_leaves
from img2loc.geo.distance import geoguessr_score, haversine_km


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score of an in-domain photo > score of an out-of-domain one)."""
    s = np.r_[pos, neg]
    r = np.argsort(np.argsort(s)) + 1
    return float((r[: pos.size].sum() - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))


def head_logits(ckpt: str, feats: np.ndarray) -> np.ndarray:
    sd = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    w = next(k for k in sd if k.endswith("head.1.weight"))
    W, b = sd[w].numpy().astype(np.float64), sd[w.replace("weight", "bias")].numpy()
    return feats.astype(np.float64) @ W.T + b


def scores(ev, logits, cells, leaves, prior_leaf, T, w):
    p = 1 / (1 + np.exp(-logits))
    _, dist = leaf_distribution(p, cells)
    if T != 1:
        lg = np.log(np.clip(dist, 1e-300, None)) / T
        dist = np.exp(lg - lg.max(1, keepdims=True))
        dist /= dist.sum(1, keepdims=True)
    mix = w[:, None] * dist + (1 - w[:, None]) * prior_leaf[None]
    lat, lon, _ = score_optimal_leaves(leaves, mix, cells)
    return geoguessr_score(haversine_km(lat, lon, ev["latitude"], ev["longitude"]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--feats", required=True)
    ap.add_argument("--ood-feats", required=True)
    ap.add_argument("--ood-split", default="train")
    ap.add_argument("--cells", required=True)
    ap.add_argument("--head", required=True)
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()

    cells = read_cells(a.cells)
    assert cells.prior is not None, "cells need a prior: img2loc cells build --prior"
    leaves = np.flatnonzero(cells.is_leaf)
    prior_leaf = cells.prior[leaves] / cells.prior[leaves].sum()
    tr = load_features(a.feats, "train")
    sets = {
        "sv-dev": load_features(a.feats, "val"),
        "sv-test": load_features(a.feats, "test"),
        "im2gps3k-dev": load_features(a.ood_feats, a.ood_split),
    }
    ftr = np.r_[tr["features"], tr["features_flip"]].astype(np.float64)
    mu = ftr.mean(0)
    cov = np.cov((ftr - mu).T)
    lam, vec = np.linalg.eigh(cov)
    lam, vec = lam[::-1], vec[:, ::-1]
    trn = ftr / np.linalg.norm(ftr, axis=1, keepdims=True)
    # The same statistics in the space of the model's own cell logits, which an exported
    # model gives without any change to its graph.
    ltr = head_logits(a.head, ftr)
    lmu = ltr.mean(0)
    llam, lvec = np.linalg.eigh(np.cov((ltr - lmu).T))
    llam, lvec = np.clip(llam[::-1], 1e-9, None), lvec[:, ::-1]
    ltrn = (ltr - lmu) / np.linalg.norm(ltr - lmu, axis=1, keepdims=True)

    cand: dict[str, dict[str, np.ndarray]] = {}
    logits = {}
    for name, ev in sets.items():
        f = ev["features"].astype(np.float64)
        lg = head_logits(a.head, f)
        logits[name] = lg
        _, dist = leaf_distribution(1 / (1 + np.exp(-lg)), cells)
        c = {}
        for k in (8, 16, 32, 64, 128, 256):
            z = (f - mu) @ vec[:, :k] / np.sqrt(lam[:k])
            c[f"-mahalanobis{k}"] = -np.mean(z**2, axis=1)
        fn = f / np.linalg.norm(f, axis=1, keepdims=True)
        sim = fn @ trn.T
        c["knn1 cosine"] = sim.max(1)
        c["knn10 cosine"] = np.sort(sim, axis=1)[:, -10:].mean(1)
        c["max leaf prob"] = dist.max(1)
        c["-leaf entropy"] = (dist * np.log(np.clip(dist, 1e-300, None))).sum(1)
        c["max cell prob"] = (1 / (1 + np.exp(-lg))).max(1)
        c["feature norm"] = np.linalg.norm(f, axis=1)
        for k in (8, 16, 32, 64):
            z = (lg - lmu) @ lvec[:, :k] / np.sqrt(llam[:k])
            c[f"-logit mahalanobis{k}"] = -np.mean(z**2, axis=1)
        ln = (lg - lmu) / np.linalg.norm(lg - lmu, axis=1, keepdims=True)
        c["logit knn10 cosine"] = np.sort(ln @ ltrn.T, axis=1)[:, -10:].mean(1)
        cand[name] = c
    lines = [
        "# Out-of-domain experiments",
        "",
        "## Separation: Street View dev vs im2gps3k-dev",
        "",
    ]
    lines += ["| score | ROC AUC |", "|---|---:|"]
    aucs = {}
    for k in cand["sv-dev"]:
        aucs[k] = auc(cand["sv-dev"][k], cand["im2gps3k-dev"][k])
        lines.append(f"| {k} | {aucs[k]:.3f} |")
    best = max(aucs, key=lambda k: aucs[k])
    lines += ["", f"Best: {best}", ""]

    # Constant baselines on each set.
    lines += ["## Constant guesses (GeoGuessr mean)", "", "| constant | " + " | ".join(sets) + " |"]
    lines.append("|---|" + "---:|" * len(sets))
    const = {
        "best under the photo prior (cells)": best_constant(
            cells.center_lat[leaves], cells.center_lon[leaves], prior_leaf
        ),
        "best under the training places": best_constant(tr["latitude"], tr["longitude"]),
    }
    for cname, (clat, clon) in const.items():
        vals = [
            geoguessr_score(haversine_km(clat, clon, ev["latitude"], ev["longitude"])).mean()
            for ev in sets.values()
        ]
        lines.append(
            f"| {cname} ({clat:.2f}, {clon:.2f}) | " + " | ".join(f"{v:.0f}" for v in vals)
        )

    # Blend grid on the best score.
    lines += ["", f"## Blend with the prior by {best}", ""]
    head = "| T | centre (quantile of sv-dev) | scale | " + " | ".join(sets) + " | mean dev |"
    lines += [head, "|" + "---:|" * (4 + len(sets))]
    s_dev = cand["sv-dev"][best]
    rows = []
    for T in (1.0, 1.5, 2.0, 3.0):
        base = {
            n: scores(
                sets[n], logits[n], cells, leaves, prior_leaf, T, np.ones(len(sets[n]["latitude"]))
            )
            for n in sets
        }
        rows.append((T, "none", "-", {n: base[n].mean() for n in sets}))
        for q in (0.01, 0.05, 0.1, 0.2, 0.3):
            b = float(np.quantile(s_dev, q))
            for sc in (0.25, 0.5, 1.0):
                spread = float(np.std(s_dev)) * sc
                res = {}
                for n, ev in sets.items():
                    w = 1 / (1 + np.exp(-(cand[n][best] - b) / spread))
                    res[n] = scores(ev, logits[n], cells, leaves, prior_leaf, T, w).mean()
                rows.append((T, f"{q:.2f}", f"{sc}", res))
    for T, q, sc, res in rows:
        md = (res["sv-dev"] + res["im2gps3k-dev"]) / 2
        lines.append(
            f"| {T} | {q} | {sc} | " + " | ".join(f"{res[n]:.0f}" for n in sets) + f" | {md:.0f} |"
        )
    Path(a.output).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    json.dumps(aucs)


if __name__ == "__main__":
    main()
