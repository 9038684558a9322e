"""Every figure of an evaluation's report, computed once into :class:`Figures`.

The report (:mod:`img2loc.evaluation.report`: JSON, markdown, CSVs, pictures)
only renders these: the oracle's nearest cell points are looked up once per
model and the guesses' places are named in one reverse-geocoding call.
Errors are in km; accuracies in percent; F1 is micro-averaged over all cells
(parents included) at probability 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from img2loc.evaluation.metrics import (
    breakdown,
    confused_pairs,
    f1_from_counts,
    paired_bootstrap,
    reliability,
    summarize,
)
from img2loc.evaluation.pipeline import (
    DEFAULT_RULE,
    Evaluation,
    ModelResult,
    place_labels,
    reverse_places,
)
from img2loc.geo.cells import CellSet, oracle_metrics
from img2loc.geo.coords import validate_coords
from img2loc.geo.decode import FALLBACK_BELOW
from img2loc.geo.distance import geo_metrics, geoguessr_score, haversine_km


@dataclass
class ModelFigures:
    """One model's figures: single view (every rule), per place, and its baselines."""

    info: dict[str, Any]  # name, path, kind, cells, input size
    single: dict[str, Any]  # the default rule's figures, F1, and ``decoders``: every rule's
    multiview: dict[str, Any] | None  # per place (None without --group-by)
    baselines: dict[str, Any]  # oracle, constant, constant_prior, nearest_neighbour
    baseline_km: dict[str, NDArray[np.float64]]  # per-photo errors of the baselines


@dataclass
class Sheet:
    """A contact sheet: which photos, their captions, and its title."""

    name: str  # "worst" or "best"
    rows: NDArray[np.int64]
    captions: list[str]
    title: str


@dataclass
class Figures:
    """Everything a report shows (the first model's figures lead; ``models[1:]`` compared)."""

    models: list[ModelFigures]
    calibration: dict[str, Any]
    by_source: dict[str, Any]
    by_continent: dict[str, Any]
    by_country: dict[str, Any]
    confused_cells: list[dict[str, Any]]
    confused_countries: list[dict[str, Any]]
    sheets: list[Sheet]


def finite(d: NDArray[Any]) -> NDArray[np.float64]:
    """The finite values of ``d`` (NaN: photo not predicted)."""
    return np.asarray(d[np.isfinite(d)], np.float64)


def _model_info(res: ModelResult) -> dict[str, Any]:
    m = res.model
    return {
        "name": m.name,
        "path": str(m.path),
        "kind": m.kind,
        "n_cells": len(m.cells),
        "input_size": m.preprocess.input_size,
    }


def _fallback(res: ModelResult) -> dict[str, Any] | None:
    """How often the answer fell back to the photo prior, and how each kind of answer scored."""
    w = res.preds.in_domain
    km = res.guesses[DEFAULT_RULE][2]
    ok = np.isfinite(w) & np.isfinite(km) if w.size == km.size else np.zeros(0, bool)
    if not ok.any():
        return None  # a model without an in-domain score
    fb = ok & (w < FALLBACK_BELOW)
    kept = ok & ~fb

    def mean_score(m: NDArray[np.bool_]) -> float | None:
        return float(geoguessr_score(km[m]).mean()) if m.any() else None

    return {
        "n": int(ok.sum()),
        "n_fallback": int(fb.sum()),
        "share": float(fb.sum() / ok.sum()),
        "mean_in_domain": float(w[ok].mean()),
        "geoguessr_fallback": mean_score(fb),
        "geoguessr_model": mean_score(kept),
    }


def _single(ev: Evaluation, res: ModelResult) -> dict[str, Any]:
    seed = ev.options.seed
    decoders = {r: summarize(finite(g[2]), seed) for r, g in res.guesses.items()}
    out = {
        **decoders[DEFAULT_RULE],
        "f1": f1_from_counts(res.preds.f1_counts),
        "decoders": decoders,
    }
    if (fb := _fallback(res)) is not None:
        out["fallback"] = fb
    return out


def _multiview(ev: Evaluation, res: ModelResult) -> dict[str, Any] | None:
    if ev.groups is None:
        return None
    seed = ev.options.seed
    decoders = {r: summarize(finite(g[2]), seed) for r, g in res.group_guesses.items()}
    seen = res.preds.group_views > 0
    g = ev.groups[seen]
    return {
        "group_by": ev.options.group_by,
        "aggregate": ev.options.aggregate,
        "n_locations": int(seen.sum()),
        "views_per_location": float(res.preds.group_views[seen].mean()) if seen.any() else 0.0,
        **decoders[DEFAULT_RULE],
        "f1": f1_from_counts(res.preds.group_f1_counts),
        "decoders": decoders,
        "oracle": oracle_metrics(res.model.cells, g["latitude"], g["longitude"])
        if len(g)
        else None,
    }


def _baselines(
    ev: Evaluation, res: ModelResult
) -> tuple[dict[str, Any], dict[str, NDArray[np.float64]]]:
    """Oracle, constant guesses and nearest neighbour (figures, per-photo errors)."""
    seed = ev.options.seed
    ok = ~ev.failed
    lat, lon = ev.table["latitude"].to_numpy()[ok], ev.table["longitude"].to_numpy()[ok]
    cells = res.model.cells
    best = cells.nearest_point(lat, lon)  # the oracle: once per model
    plat, plon = cells.center_lat[best], cells.center_lon[best]
    km: dict[str, NDArray[np.float64]] = {
        "oracle": haversine_km(plat, plon, lat, lon),
        "constant": haversine_km(ev.train.lat, ev.train.lon, lat, lon),
    }
    ref = (
        "best single guess for the training photos"
        if ev.train.source == "train"
        else "best single guess for the evaluation photos (no --train-data: it has seen the "
        "answers, so optimistic)"
    )
    out: dict[str, Any] = {
        # On the checked coordinates, as oracle_metrics computes it (same figures to the bit).
        "oracle": geo_metrics(plat, plon, *validate_coords(lat, lon)),
        "constant": {
            **summarize(km["constant"], seed),
            "lat": ev.train.lat,
            "lon": ev.train.lon,
            "reference": ref,
        },
    }
    if (pc := res.prior_constant) is not None:
        km["constant_prior"] = haversine_km(pc[0], pc[1], lat, lon)
        out["constant_prior"] = {
            **summarize(km["constant_prior"], seed),
            "lat": pc[0],
            "lon": pc[1],
            "reference": "best single guess for where people take photos (the model's prior)",
        }
    else:
        out["constant_prior"] = {
            "skipped": "the model's cells carry no photo prior (img2loc cells build --prior)"
        }
    if res.nn is not None:
        km["nearest_neighbour"] = finite(res.nn[2][ok])
        tr = ev.train.table
        out["nearest_neighbour"] = {
            **summarize(km["nearest_neighbour"], seed),
            "n_train": 0 if tr is None else len(tr),
        }
    else:
        out["nearest_neighbour"] = {"skipped": res.nn_note or "no embeddings"}
    return out, km


def paired(ev: Evaluation, first: ModelResult, other: ModelResult) -> dict[str, Any]:
    """GeoGuessr points of ``first`` minus ``other`` on the same photos (and places).

    Paired: both models answer the very same photos, so the interval of the difference is
    much tighter than the two models' own intervals suggest. With --group-by the bootstrap
    resamples places (single photo) and compares the per-place answers too.
    """
    seed = ev.options.seed

    def points(res: ModelResult, grouped: bool) -> NDArray[np.float64]:
        km = (res.group_guesses if grouped else res.guesses)[DEFAULT_RULE][2]
        return np.asarray(geoguessr_score(km), np.float64)

    out: dict[str, Any] = {
        "against": other.model.name,
        "single": paired_bootstrap(
            points(first, False) - points(other, False), ev.group_codes, seed=seed
        ),
    }
    if ev.groups is not None and first.group_guesses and other.group_guesses:
        out["per_place"] = paired_bootstrap(points(first, True) - points(other, True), seed=seed)
    return out


def model_figures(ev: Evaluation, res: ModelResult) -> ModelFigures:
    """Every figure of one model."""
    baselines, km = _baselines(ev, res)
    single = _single(ev, res)
    if res is not ev.results[0]:
        single["paired"] = paired(ev, ev.results[0], res)
    return ModelFigures(_model_info(res), single, _multiview(ev, res), baselines, km)


def _sheet_rows(ev: Evaluation, res: ModelResult) -> list[tuple[str, NDArray[np.int64]]]:
    n = ev.options.sheet_size
    d = res.guesses[DEFAULT_RULE][2]
    rows = np.flatnonzero(np.isfinite(d))
    if n <= 0 or rows.size == 0:
        return []
    by_error = rows[np.argsort(d[rows], kind="stable")]
    return [("worst", by_error[::-1][:n]), ("best", by_error[:n])]


def _confused_cells(
    pairs: list[tuple[int, int, int, int]], cells: CellSet, names: list[str]
) -> list[dict[str, Any]]:
    a = np.array([p[0] for p in pairs], np.int64)
    b = np.array([p[1] for p in pairs], np.int64)
    km = haversine_km(
        cells.center_lat[a], cells.center_lon[a], cells.center_lat[b], cells.center_lon[b]
    )
    tokens = cells.tokens() if pairs else []
    return [
        {
            "true_cell": tokens[t],
            "true_place": names[i],
            "pred_cell": tokens[p],
            "pred_place": names[len(pairs) + i],
            "count": n,
            "share": 100.0 * n / total,
            "km_apart": float(km[i]),
        }
        for i, (t, p, n, total) in enumerate(pairs)
    ]


def confused_countries(
    true_cc: NDArray[Any], pred_cc: NDArray[Any], top: int = 10
) -> list[dict[str, Any]]:
    """Most frequent (true country, guessed country) pairs that differ."""
    codes, names = pd.factorize(pd.Series(np.r_[true_cc, pred_cc]))
    n = len(true_cc)
    return [
        {"true": str(names[t]), "pred": str(names[p]), "count": c, "share": 100.0 * c / total}
        for t, p, c, total in confused_pairs(codes[:n], codes[n:], top)
    ]


def compute_figures(ev: Evaluation) -> Figures:
    """Every figure of the report, each computed once."""
    res = ev.results[0]
    cells = res.model.cells
    ok = ~ev.failed
    t = ev.table
    lat, lon = t["latitude"].to_numpy(), t["longitude"].to_numpy()
    glat, glon, d = res.guesses[DEFAULT_RULE]
    pairs = confused_pairs(cells.nearest(lat[ok], lon[ok]), res.preds.cell[DEFAULT_RULE][ok], 10)
    pair_cells = np.array([p[0] for p in pairs] + [p[1] for p in pairs], np.int64)
    sheets = _sheet_rows(ev, res)
    picks = [rows for _, rows in sheets]
    # Every place the report names, in one reverse-geocoding call: the guesses' countries,
    # the confused cells' towns, and the truth and guess of each photo on a sheet.
    parts = [
        (glat[ok], glon[ok]),
        (cells.center_lat[pair_cells], cells.center_lon[pair_cells]),
        *((lat[r], lon[r]) for r in picks),
        *((glat[r], glon[r]) for r in picks),
    ]
    sizes = np.cumsum([len(p[0]) for p in parts])[:-1]
    places = reverse_places(
        np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    )
    found = np.split(np.arange(len(places)), sizes)
    pred_cc = np.array([places[i]["cc"] for i in found[0]], str)
    pair_names = place_labels([places[i] for i in found[1]])
    k = len(picks)
    out_sheets = []
    for j, (name, rows) in enumerate(sheets):
        truth = place_labels([places[i] for i in found[2 + j]])
        guess = place_labels([places[i] for i in found[2 + k + j]])
        caps = [
            f"{d[r]:,.0f} km  [{t['source'].iat[r]}]\ntruth: {a}\nguess: {b}"
            for r, a, b in zip(rows, truth, guess, strict=True)
        ]
        title = f"{res.model.name}: {len(rows)} {name} guesses ({DEFAULT_RULE})"
        out_sheets.append(Sheet(name, rows, caps, title))
    seed = ev.options.seed
    dk = d[ok]
    tk = t[ok]
    return Figures(
        models=[model_figures(ev, r) for r in ev.results],
        calibration=reliability(res.preds.confidence[ok], res.preds.in_cell[ok]),
        by_source=breakdown(dk, tk["source"], seed),
        by_continent=breakdown(dk, tk["continent"], seed),
        by_country=breakdown(dk, tk["country"], seed),
        confused_cells=_confused_cells(pairs, cells, pair_names),
        confused_countries=confused_countries(tk["country"].to_numpy(), pred_cc),
        sheets=out_sheets,
    )
