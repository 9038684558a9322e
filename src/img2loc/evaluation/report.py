"""An evaluation's report: report.json, report.md, predictions CSVs and pictures.

``report.json``'s top-level figures are the first model's, single view, with
:data:`~img2loc.evaluation.pipeline.DEFAULT_RULE`; every other view of the
numbers (rules, places, baselines, breakdowns, other models) sits under its
own key. Errors are in km; accuracies in percent; F1 is micro-averaged over
all cells (parents included) at probability 0.5.

The figures are computed once (:func:`img2loc.evaluation.figures.compute_figures`);
this module only renders them (report.md: :mod:`img2loc.evaluation.markdown`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from img2loc.data.images import ImageError, open_image
from img2loc.data.io import read_bytes
from img2loc.evaluation.figures import Figures, Sheet, compute_figures, finite
from img2loc.evaluation.markdown import markdown, overlap_warning, summary_lines
from img2loc.evaluation.pipeline import DEFAULT_RULE, Evaluation, ModelResult
from img2loc.files import atomic_write_text
from img2loc.geo.distance import geoguessr_score

FORMAT = "img2loc-eval"
THUMB = 256
HEADLINE = ("acc_km", "median_km", "mean_km", "geoguessr_mean", "geoguessr_ci95", "f1", "n")

__all__ = ["build_report", "overlap_warning", "summary_lines", "write_report"]


def build_report(ev: Evaluation, fig: Figures) -> dict[str, Any]:
    """The report.json content (NaN written as null)."""
    first = fig.models[0]
    compare = [
        {
            **m.info,
            **m.single,
            "multiview": _headline(m.multiview),
            "nearest_neighbour": _headline(m.baselines["nearest_neighbour"]),
        }
        for m in fig.models
    ]
    rep: dict[str, Any] = {
        "format": FORMAT,
        "version": 1,
        "model": first.info,
        "data": ev.data,
        "splits": ev.splits,
        "decode_rule": DEFAULT_RULE,
        **first.single,
        "n_photos": len(ev.table),
        "n_errors": int(ev.failed.sum()),
        "n_skipped_inputs": len(ev.errors) - int(ev.failed.sum()),
        "multiview": first.multiview,
        "baselines": first.baselines,
        "calibration": fig.calibration,
        "train_data": None
        if ev.train.source != "train"
        else {
            "data": [str(p) for p in ev.options.train_data],
            "split": ev.options.train_split,
            "n": ev.train.n,
            "overlap": ev.train.overlap,
        },
        "by_source": fig.by_source,
        "by_continent": fig.by_continent,
        "by_country": fig.by_country,
        "confused_cells": fig.confused_cells,
        "confused_countries": fig.confused_countries,
        "compare": compare,
        "errors": [{"image": i, "reason": r} for i, r in ev.errors[:100]],
        "seconds": ev.seconds,
        "images_per_s": len(ev.table) / ev.predict_seconds if ev.predict_seconds else None,
    }
    out: dict[str, Any] = _clean(rep)
    return out


def _headline(m: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if m is None else {k: m[k] for k in (*HEADLINE, "skipped") if k in m}


def _clean(x: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/inf to None."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# ---------------------------------------------------------------------- tables
def predictions_table(ev: Evaluation, res: ModelResult) -> pd.DataFrame:
    """One row per photo (unreadable ones too, with the reason in ``error``)."""
    cols = [
        "key",
        "source",
        "dataset",
        "image",
        "location_id",
        "latitude",
        "longitude",
        "country",
        "continent",
    ]
    gcol = ev.options.group_by
    if gcol and gcol not in cols:
        cols.append(gcol)
    out = ev.table[cols].copy()
    reasons = dict(ev.errors)
    out["error"] = [
        reasons.get(i, "") if f else "" for i, f in zip(out["image"], ev.failed, strict=True)
    ]
    _add_guesses(out, res.model.cells.tokens(), res.preds.cell, res.guesses)
    out["confidence"] = res.preds.confidence
    out["geoguessr"] = geoguessr_score(res.guesses[DEFAULT_RULE][2])
    if res.nn is not None:
        out["nn_lat"], out["nn_lon"], out["nn_km"] = res.nn
    return out


def groups_table(ev: Evaluation, res: ModelResult) -> pd.DataFrame:
    """One row per place: views used and the guesses from their aggregated probabilities."""
    assert ev.groups is not None
    out = ev.groups.copy()
    out.insert(1, "n_views", res.preds.group_views)
    _add_guesses(out, res.model.cells.tokens(), res.preds.group_cell, res.group_guesses)
    out["geoguessr"] = geoguessr_score(res.group_guesses[DEFAULT_RULE][2])
    return out


def _add_guesses(
    out: pd.DataFrame, tokens: list[str], cell: dict[str, np.ndarray], guesses: dict[str, Any]
) -> None:
    tok = np.array([*tokens, ""], dtype=object)  # index -1 -> ""
    for rule, (la, lo, km) in guesses.items():
        out[f"{rule}_cell"] = tok[cell[rule]]
        out[f"{rule}_lat"], out[f"{rule}_lon"], out[f"{rule}_km"] = la, lo, km


# ---------------------------------------------------------------------- pictures
def _thumb(ref: str) -> Any:
    try:
        im = open_image(read_bytes(ref), draft=(THUMB, THUMB))
    except (ImageError, OSError, ValueError):
        return None
    im.thumbnail((THUMB, THUMB))
    return im


def contact_sheets(ev: Evaluation, sheets: list[Sheet], out_dir: Path) -> list[Path]:
    """worst.png and best.png: the photos with the largest and smallest errors."""
    from img2loc.viz.errors import contact_sheet

    images = ev.table["image"]
    return [
        contact_sheet(
            [_thumb(images.iat[r]) for r in sh.rows],
            sh.captions,
            out_dir / f"{sh.name}.png",
            title=sh.title,
        )
        for sh in sheets
    ]


def pictures(ev: Evaluation, fig: Figures, out_dir: Path) -> list[Path]:
    """Error CDF, map of guesses, per-continent bars and the contact sheets."""
    from img2loc.viz.errors import (
        plot_accuracy_bars,
        plot_error_cdf,
        plot_guess_map,
        plot_reliability,
    )

    res = ev.results[0]
    ok = ~ev.failed
    curves = {f"{res.model.name} ({r})": finite(g[2]) for r, g in res.guesses.items()}
    for other in ev.results[1:]:
        curves[f"{other.model.name} ({DEFAULT_RULE})"] = finite(other.guesses[DEFAULT_RULE][2])
    if ev.groups is not None:
        curves[f"{res.model.name} per {ev.options.group_by}"] = finite(
            res.group_guesses[DEFAULT_RULE][2]
        )
    for name, dist in fig.models[0].baseline_km.items():
        curves[f"baseline: {name}"] = dist
    la, lo, km = (a[ok] for a in res.guesses[DEFAULT_RULE])
    t = ev.table[ok]
    return [
        plot_error_cdf(
            curves, out_dir / "error_cdf.png", title=f"Error distribution ({int(ok.sum())} photos)"
        ),
        plot_guess_map(
            t["latitude"],
            t["longitude"],
            la,
            lo,
            out_dir / "map.png",
            error_km=km,
            seed=ev.options.seed,
            title=f"{res.model.name}: truth (dots) to guess (x), {DEFAULT_RULE}",
        ),
        plot_accuracy_bars(
            fig.by_continent,
            out_dir / "continents.png",
            title=f"{res.model.name}: accuracy per continent ({DEFAULT_RULE})",
        ),
        plot_reliability(
            fig.calibration,
            out_dir / "reliability.png",
            title=f"{res.model.name}: is the photo in the named cell?",
        ),
        *contact_sheets(ev, fig.sheets, out_dir),
    ]


def write_report(ev: Evaluation, out_dir: Path) -> dict[str, Any]:
    """Write every output file into ``out_dir``; return the report (as in report.json)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fig = compute_figures(ev)
    rep = build_report(ev, fig)
    res = ev.results[0]
    atomic_write_text(out_dir / "predictions.csv", predictions_table(ev, res).to_csv(index=False))
    written = ["predictions.csv"]
    if ev.groups is not None:
        atomic_write_text(
            out_dir / "predictions_by_location.csv", groups_table(ev, res).to_csv(index=False)
        )
        written.append("predictions_by_location.csv")
    if ev.errors:
        errs = pd.DataFrame(ev.errors, columns=["image", "reason"])
        atomic_write_text(out_dir / "errors.csv", errs.to_csv(index=False))
        written.append("errors.csv")
    pngs = [p.name for p in pictures(ev, fig, out_dir)] if (~ev.failed).any() else []
    rep["files"] = ["report.json", "report.md", *written, *pngs]
    atomic_write_text(out_dir / "report.md", markdown(rep, pngs))
    atomic_write_text(out_dir / "report.json", json.dumps(rep, indent=2, allow_nan=False))
    return rep
