"""Pictures of geolocation errors: CDF, guesses on a map, bars per group, contact sheets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from PIL import Image

from img2loc.files import atomic_path
from img2loc.geo.distance import THRESHOLDS_KM, haversine_km
from img2loc.viz.maps import fit_to_data, save_figure, world_axes

#: Distances below this are drawn at it: a log axis has no zero.
MIN_KM = 0.1


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_error_cdf(
    curves: Mapping[str, ArrayLike],
    path: str | Path,
    thresholds_km: Sequence[float] = THRESHOLDS_KM,
    title: str = "",
) -> Path:
    """Share of photos within d km against d on a log axis, one line per curve."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5.5))
    hi = MIN_KM * 10
    for name, d in curves.items():
        x = np.sort(np.clip(np.asarray(d, np.float64).ravel(), MIN_KM, None))
        if x.size == 0:
            continue
        hi = max(hi, float(x[-1]))
        y = np.arange(1, x.size + 1) / x.size * 100
        ax.step(np.r_[MIN_KM, x], np.r_[0.0, y], where="post", label=f"{name} (n={x.size})")
    for t in thresholds_km:
        ax.axvline(t, color="#999999", lw=0.8, ls="--", zorder=0)
        ax.text(t, 101, f"{t:g} km", ha="center", va="bottom", fontsize=8, color="#555555")
    ax.set_xscale("log")
    ax.set_xlim(MIN_KM, max(hi, 20000.0))
    ax.set_ylim(0, 100)
    ax.set_xlabel("error (km, log scale)")
    ax.set_ylabel("photos within the error (%)")
    ax.grid(alpha=0.3, which="both", axis="y")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title, pad=18)
    return save_figure(fig, path)


def plot_guess_map(
    true_lat: ArrayLike,
    true_lon: ArrayLike,
    pred_lat: ArrayLike,
    pred_lon: ArrayLike,
    path: str | Path,
    *,
    error_km: ArrayLike | None = None,
    title: str = "",
    max_lines: int = 3000,
    seed: int = 0,
) -> Path:
    """Truth (dots) joined to guess (crosses) by lines coloured by the error (log km)."""
    from matplotlib.collections import LineCollection
    from matplotlib.colors import LogNorm

    tla, tlo = np.asarray(true_lat, float), np.asarray(true_lon, float)
    pla, plo = np.asarray(pred_lat, float), np.asarray(pred_lon, float)
    if error_km is None:
        error_km = haversine_km(pla, plo, tla, tlo)
    d = np.clip(np.asarray(error_km, float), 1.0, None)
    if tla.size > max_lines:  # beyond a few thousand lines the map is a smear
        keep = np.sort(np.random.default_rng(seed).permutation(tla.size)[:max_lines])
        tla, tlo, pla, plo, d = tla[keep], tlo[keep], pla[keep], plo[keep], d[keep]
    # Take the short way across the antimeridian; a copy shifted by 360 degrees draws
    # the part of such a line that leaves the map on the other side.
    plo_near = plo - 360.0 * np.round((plo - tlo) / 360.0)
    segs = np.stack([np.c_[tlo, tla], np.c_[plo_near, pla]], axis=1)  # (n, 2 ends, lon/lat)
    cross = np.abs(plo_near) > 180
    shifted = segs[cross] - np.sign(plo_near[cross])[:, None, None] * np.array([360.0, 0.0])
    segs, colours = np.concatenate([segs, shifted]), np.r_[d, d[cross]]
    fig, ax = world_axes()
    norm = LogNorm(vmin=1.0, vmax=max(20000.0, float(d.max())))
    lc = LineCollection(
        list(segs), array=colours, cmap="RdYlGn_r", norm=norm, linewidths=0.6, alpha=0.7, zorder=2
    )
    ax.add_collection(lc)
    ax.scatter(tlo, tla, s=6, c="black", zorder=3, label="truth")
    ax.scatter(plo, pla, s=14, marker="x", c="#1f4e79", linewidths=0.8, zorder=4, label="guess")
    fig.colorbar(lc, ax=ax, shrink=0.6, label="error (km)")
    fit_to_data(ax, np.r_[tlo, plo_near], np.r_[tla, pla])
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(title)
    return save_figure(fig, path)


def plot_accuracy_bars(
    groups: Mapping[str, Mapping[str, Any]],
    path: str | Path,
    thresholds: Sequence[str] = ("25", "200", "750", "2500"),
    title: str = "",
) -> Path:
    """Grouped bars: accuracy at each threshold per group (e.g. continent), n under the name.

    ``groups`` maps a name to figures with ``acc_km`` and ``n`` (see
    :func:`img2loc.geo.distance.metrics_from_distances`).
    """
    plt = _pyplot()
    names = list(groups)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(names) + 2), 4.5))
    x = np.arange(len(names))
    w = 0.8 / max(1, len(thresholds))
    for k, t in enumerate(thresholds):
        vals = [float(groups[g]["acc_km"].get(t, np.nan)) for g in names]
        ax.bar(x + (k - (len(thresholds) - 1) / 2) * w, vals, w, label=f"{t} km")
    ax.set_xticks(x, [f"{g}\n(n={groups[g]['n']})" for g in names], fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("photos within (%)")
    ax.legend(fontsize=8, ncol=len(thresholds))
    ax.grid(alpha=0.3, axis="y")
    ax.set_title(title)
    return save_figure(fig, path)


def plot_reliability(
    figures: Mapping[str, Any], path: str | Path, title: str = "Reliability of the confidence"
) -> Path:
    """Reliability diagram: how often the named cell held the photo, per confidence bin.

    ``figures`` is :func:`img2loc.evaluation.metrics.reliability`'s result. A calibrated
    model's bars follow the diagonal; bars below it are over-confident.
    """
    plt = _pyplot()
    fig, (ax, axn) = plt.subplots(
        2, 1, figsize=(6, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    bins = [b for b in figures["bins"] if b["n"]]
    mid = [100 * (b["lo"] + b["hi"]) / 2 for b in bins]
    width = 100 * (figures["bins"][0]["hi"] - figures["bins"][0]["lo"]) * 0.9
    ax.bar(mid, [b["accuracy"] for b in bins], width, color="#4477aa", label="photos in the cell")
    ax.plot([0, 100], [0, 100], color="#999999", ls="--", lw=1, label="calibrated")
    ax.plot(mid, [b["confidence"] for b in bins], "o", color="#cc3311", ms=4, label="confidence")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_ylabel("photos in the named cell (%)")
    ece = figures["ece"]
    ax.set_title(f"{title}\nexpected calibration error {ece:.1f} points (n={figures['n']})")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    axn.bar(mid, [b["n"] for b in bins], width, color="#888888")
    axn.set_yscale("log")
    axn.set_xlabel("confidence shown (%)")
    axn.set_ylabel("photos")
    return save_figure(fig, path)


def contact_sheet(
    images: Sequence[Image.Image | None],
    captions: Sequence[str],
    path: str | Path,
    *,
    title: str = "",
    cols: int = 6,
    thumb: int = 256,
) -> Path:
    """A grid of photos with a caption under each (``None``: the photo could not be read).

    Drawn with Pillow rather than matplotlib: a sheet of photos is mostly pixels, and
    pasting them is some 30 times faster than plotting them.
    """
    from PIL import ImageDraw, ImageFont

    font, big = ImageFont.load_default(size=13), ImageFont.load_default(size=18)
    n_lines = max((c.count("\n") + 1 for c in captions), default=1)
    pad, line = 8, 17
    cell_w, cell_h = thumb + pad, thumb + pad + n_lines * line
    cols = max(1, min(cols, len(images)))
    rows = max(1, -(-len(images) // cols))
    sheet = Image.new("RGB", (pad + cols * cell_w, 40 + rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((pad, pad), title, fill="black", font=big)
    max_chars = thumb // 7  # about the width of a 13 px character
    for i, (im, cap) in enumerate(zip(images, captions, strict=True)):
        x, y = pad + (i % cols) * cell_w, 40 + (i // cols) * cell_h
        if im is None:
            draw.rectangle((x, y, x + thumb, y + thumb), fill="#dddddd")
            draw.text((x + pad, y + thumb // 2), "(unreadable)", fill="black", font=font)
        else:
            t = im.convert("RGB")
            t.thumbnail((thumb, thumb))
            sheet.paste(t, (x + (thumb - t.width) // 2, y + (thumb - t.height) // 2))
        text = "\n".join(
            ln if len(ln) <= max_chars else ln[: max_chars - 1] + "…" for ln in cap.split("\n")
        )
        draw.multiline_text((x, y + thumb + 4), text, fill="black", font=font, spacing=4)
    return save_image(sheet, path)


def save_image(im: Image.Image, path: str | Path) -> Path:
    """Write a PIL image as PNG atomically (temp file + rename)."""
    out = Path(path)
    with atomic_path(out, suffix=".tmp.png") as tmp:
        im.save(tmp, format="PNG", optimize=False)
    return out
