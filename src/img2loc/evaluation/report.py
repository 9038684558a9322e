"""An evaluation's report: report.json, report.md, predictions CSVs and pictures.

``report.json``'s top-level figures are the first model's, single view, with
:data:`~img2loc.evaluation.pipeline.DEFAULT_RULE`; every other view of the
numbers (rules, places, baselines, breakdowns, other models) sits under its
own key. Errors are in km; accuracies in percent; F1 is micro-averaged over
all cells (parents included) at probability 0.5.
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
from img2loc.data.places import reverse_geocode
from img2loc.evaluation.metrics import (
    breakdown,
    confused_pairs,
    f1_from_counts,
    reliability,
    summarize,
)
from img2loc.evaluation.pipeline import (
    DEFAULT_RULE,
    Evaluation,
    ModelResult,
    cell_guesses,
)
from img2loc.files import atomic_write_text
from img2loc.geo.cells import oracle_metrics
from img2loc.geo.distance import THRESHOLDS_KM, geoguessr_score, haversine_km, threshold_key

FORMAT = "img2loc-eval"
THUMB = 256
HEADLINE = ("acc_km", "median_km", "mean_km", "geoguessr_mean", "geoguessr_ci95", "f1", "n")


# ---------------------------------------------------------------------- figures
def _finite(d: np.ndarray) -> np.ndarray:
    return np.asarray(d[np.isfinite(d)])


def model_figures(ev: Evaluation, res: ModelResult) -> dict[str, Any]:
    """Headline figures of one model (single view, default rule) and every rule's."""
    seed = ev.options.seed
    decoders = {r: summarize(_finite(g[2]), seed) for r, g in res.guesses.items()}
    return {
        **decoders[DEFAULT_RULE],
        "f1": f1_from_counts(res.preds.f1_counts),
        "decoders": decoders,
    }


def multiview_figures(ev: Evaluation, res: ModelResult) -> dict[str, Any] | None:
    """Figures per place (views aggregated before decoding), or None without --group-by."""
    if ev.groups is None:
        return None
    seed = ev.options.seed
    decoders = {r: summarize(_finite(g[2]), seed) for r, g in res.group_guesses.items()}
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


def baseline_distances(ev: Evaluation, res: ModelResult) -> dict[str, np.ndarray]:
    """Per-photo errors of the baselines, on the photos the model saw."""
    ok = ~ev.failed
    lat, lon = ev.table["latitude"].to_numpy()[ok], ev.table["longitude"].to_numpy()[ok]
    out = {
        "oracle": cell_guesses(res.model.cells, res.model.cells.nearest_point(lat, lon), lat, lon)[
            2
        ],
        "constant": haversine_km(ev.train.lat, ev.train.lon, lat, lon),
    }
    if (pc := res.prior_constant) is not None:
        out["constant_prior"] = haversine_km(pc[0], pc[1], lat, lon)
    if res.nn is not None:
        out["nearest_neighbour"] = _finite(res.nn[2][ok])
    return out


def baseline_figures(ev: Evaluation, res: ModelResult) -> dict[str, Any]:
    """Oracle, constant guess and nearest neighbour, each beside the model's figures."""
    seed = ev.options.seed
    ok = ~ev.failed
    d = baseline_distances(ev, res)
    t = ev.table[ok]
    ref = (
        "best single guess for the training photos"
        if ev.train.source == "train"
        else "best single guess for the evaluation photos (no --train-data: it has seen the "
        "answers, so optimistic)"
    )
    out: dict[str, Any] = {
        "oracle": oracle_metrics(res.model.cells, t["latitude"], t["longitude"]),
        "constant": {
            **summarize(d["constant"], seed),
            "lat": ev.train.lat,
            "lon": ev.train.lon,
            "reference": ref,
        },
    }
    if res.prior_constant is not None:
        plat, plon = res.prior_constant
        out["constant_prior"] = {
            **summarize(d["constant_prior"], seed),
            "lat": plat,
            "lon": plon,
            "reference": "best single guess for where people take photos (the model's prior)",
        }
    else:
        out["constant_prior"] = {
            "skipped": "the model's cells carry no photo prior (img2loc cells build --prior)"
        }
    if "nearest_neighbour" in d:
        tr = ev.train.table
        out["nearest_neighbour"] = {
            **summarize(d["nearest_neighbour"], seed),
            "n_train": 0 if tr is None else len(tr),
        }
    else:
        out["nearest_neighbour"] = {"skipped": res.nn_note or "no embeddings"}
    return out


def _place_names(lat: np.ndarray, lon: np.ndarray) -> list[str]:
    return [f"{p['city']}, {p['cc']}" for p in reverse_geocode(lat, lon)] if len(lat) else []


def confused_cells(ev: Evaluation, res: ModelResult, top: int = 10) -> list[dict[str, Any]]:
    """Most frequent (true finest cell, guessed cell) pairs that differ."""
    cells = res.model.cells
    ok = ~ev.failed
    true = cells.nearest(ev.table["latitude"].to_numpy()[ok], ev.table["longitude"].to_numpy()[ok])
    pairs = confused_pairs(true, res.preds.cell[DEFAULT_RULE][ok], top)
    if not pairs:
        return []
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    names = _place_names(cells.center_lat[np.r_[a, b]], cells.center_lon[np.r_[a, b]])
    km = haversine_km(
        cells.center_lat[a], cells.center_lon[a], cells.center_lat[b], cells.center_lon[b]
    )
    tokens = cells.tokens()
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
    true_cc: np.ndarray, pred_cc: np.ndarray, top: int = 10
) -> list[dict[str, Any]]:
    """Most frequent (true country, guessed country) pairs that differ."""
    codes, names = pd.factorize(pd.Series(np.r_[true_cc, pred_cc]))
    n = len(true_cc)
    return [
        {"true": str(names[t]), "pred": str(names[p]), "count": c, "share": 100.0 * c / total}
        for t, p, c, total in confused_pairs(codes[:n], codes[n:], top)
    ]


def build_report(ev: Evaluation) -> dict[str, Any]:
    """The report.json content (NaN written as null)."""
    res = ev.results[0]
    ok = ~ev.failed
    t = ev.table[ok]
    d = res.guesses[DEFAULT_RULE][2][ok]
    plat, plon = res.guesses[DEFAULT_RULE][0][ok], res.guesses[DEFAULT_RULE][1][ok]
    pred_cc = np.array([p["cc"] for p in reverse_geocode(plat, plon)] if ok.any() else [], str)
    seed = ev.options.seed
    figures = [model_figures(ev, r) for r in ev.results]
    views = [multiview_figures(ev, r) for r in ev.results]
    compare = [
        {
            **_model_info(r),
            **f,
            "multiview": _headline(v),
            "nearest_neighbour": _headline(baseline_figures(ev, r)["nearest_neighbour"]),
        }
        for r, f, v in zip(ev.results, figures, views, strict=True)
    ]
    rep: dict[str, Any] = {
        "format": FORMAT,
        "version": 1,
        "model": _model_info(res),
        "data": ev.data,
        "splits": ev.splits,
        "decode_rule": DEFAULT_RULE,
        **figures[0],
        "n_photos": len(ev.table),
        "n_errors": int(ev.failed.sum()),
        "n_skipped_inputs": len(ev.errors) - int(ev.failed.sum()),
        "multiview": views[0],
        "baselines": baseline_figures(ev, res),
        "calibration": reliability(res.preds.confidence[ok], res.preds.in_cell[ok]),
        "train_data": None
        if ev.train.source != "train"
        else {
            "data": [str(p) for p in ev.options.train_data],
            "split": ev.options.train_split,
            "n": ev.train.n,
            "overlap": ev.train.overlap,
        },
        "by_source": breakdown(d, t["source"], seed),
        "by_continent": breakdown(d, t["continent"], seed),
        "by_country": breakdown(d, t["country"], seed),
        "confused_cells": confused_cells(ev, res),
        "confused_countries": confused_countries(t["country"].to_numpy(), pred_cc),
        "compare": compare,
        "errors": [{"image": i, "reason": r} for i, r in ev.errors[:100]],
        "seconds": ev.seconds,
        "images_per_s": len(ev.table) / ev.predict_seconds if ev.predict_seconds else None,
    }
    out: dict[str, Any] = _clean(rep)
    return out


def _model_info(res: ModelResult) -> dict[str, Any]:
    m = res.model
    return {
        "name": m.name,
        "path": str(m.path),
        "kind": m.kind,
        "n_cells": len(m.cells),
        "input_size": m.preprocess.input_size,
    }


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


def contact_sheets(ev: Evaluation, res: ModelResult, out_dir: Path) -> list[Path]:
    """worst.png and best.png: the photos with the largest and smallest errors."""
    from img2loc.viz.errors import contact_sheet

    n = ev.options.sheet_size
    d = res.guesses[DEFAULT_RULE][2]
    rows = np.flatnonzero(np.isfinite(d))
    if n <= 0 or rows.size == 0:
        return []
    by_error = rows[np.argsort(d[rows], kind="stable")]
    plat, plon = res.guesses[DEFAULT_RULE][0], res.guesses[DEFAULT_RULE][1]
    t = ev.table
    written = []
    for name, pick in (("worst", by_error[::-1][:n]), ("best", by_error[:n])):
        truth = _place_names(t["latitude"].to_numpy()[pick], t["longitude"].to_numpy()[pick])
        guess = _place_names(plat[pick], plon[pick])
        caps = [
            f"{d[r]:,.0f} km  [{t['source'].iat[r]}]\ntruth: {a}\nguess: {b}"
            for r, a, b in zip(pick, truth, guess, strict=True)
        ]
        written.append(
            contact_sheet(
                [_thumb(t["image"].iat[r]) for r in pick],
                caps,
                out_dir / f"{name}.png",
                title=f"{res.model.name}: {len(pick)} {name} guesses ({DEFAULT_RULE})",
            )
        )
    return written


def pictures(ev: Evaluation, rep: dict[str, Any], out_dir: Path) -> list[Path]:
    """Error CDF, map of guesses, per-continent bars and the contact sheets."""
    from img2loc.viz.errors import (
        plot_accuracy_bars,
        plot_error_cdf,
        plot_guess_map,
        plot_reliability,
    )

    res = ev.results[0]
    ok = ~ev.failed
    curves = {f"{res.model.name} ({r})": _finite(g[2]) for r, g in res.guesses.items()}
    for other in ev.results[1:]:
        curves[f"{other.model.name} ({DEFAULT_RULE})"] = _finite(other.guesses[DEFAULT_RULE][2])
    if ev.groups is not None:
        curves[f"{res.model.name} per {ev.options.group_by}"] = _finite(
            res.group_guesses[DEFAULT_RULE][2]
        )
    for name, dist in baseline_distances(ev, res).items():
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
            rep["by_continent"],
            out_dir / "continents.png",
            title=f"{res.model.name}: accuracy per continent ({DEFAULT_RULE})",
        ),
        plot_reliability(
            rep["calibration"],
            out_dir / "reliability.png",
            title=f"{res.model.name}: is the photo in the named cell?",
        ),
        *contact_sheets(ev, res, out_dir),
    ]


# ---------------------------------------------------------------------- markdown
def _pct(v: Any) -> str:
    return "–" if v is None else f"{v:.1f}%"


def _num(v: Any, fmt: str = ",.0f") -> str:
    return "–" if v is None else format(v, fmt)


_COLUMNS = [
    "n",
    *(f"{threshold_key(t)} km" for t in THRESHOLDS_KM),
    "median km",
    "mean km",
    "GeoGuessr",
    "95% CI",
    "F1",
]


def _row(name: str, m: dict[str, Any] | None) -> str:
    if not m or "skipped" in m:
        why = (m or {}).get("skipped", "not computed")
        return f"| {name} | " + " | ".join(["–"] * (len(_COLUMNS) - 1)) + f" | {why} |"
    ci = m.get("geoguessr_ci95")
    cells = [
        str(m["n"]),
        *(_pct(m["acc_km"][threshold_key(t)]) for t in THRESHOLDS_KM),
        _num(m["median_km"], ",.1f"),
        _num(m["mean_km"], ",.1f"),
        _num(m["geoguessr_mean"]),
        f"{ci[0]:,.0f}–{ci[1]:,.0f}" if ci and None not in ci else "–",
        _num(m.get("f1"), ".3f"),
    ]
    return f"| {name} | " + " | ".join(cells) + " |"


def _table(rows: list[tuple[str, dict[str, Any] | None]], first: str = "") -> list[str]:
    head = f"| {first} | " + " | ".join(_COLUMNS) + " |"
    return [head, "|" + "---|" * (len(_COLUMNS) + 1), *(_row(n, m) for n, m in rows), ""]


def _calibration_lines(cal: dict[str, Any]) -> list[str]:
    if not cal["n"]:
        return []
    lines = [
        "## Confidence (is the photo in the named cell?)",
        "",
        f"Shown confidence {cal['mean_confidence']:.1f}% on average, photos in the named cell "
        f"{cal['accuracy']:.1f}%; expected calibration error **{cal['ece']:.1f} points** "
        "(10 bins; `reliability.png`).",
        "",
        "| confidence | photos | mean confidence | in the cell |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {100 * b['lo']:.0f}–{100 * b['hi']:.0f}% | {b['n']} | {_pct(b['confidence'])} | "
        f"{_pct(b['accuracy'])} |"
        for b in cal["bins"]
        if b["n"]
    ]
    return [*lines, ""]


def markdown(rep: dict[str, Any], files: list[str]) -> str:
    """report.md: the same figures as report.json, as tables, with the pictures."""
    name = rep["model"]["name"]
    b = rep["baselines"]
    lines = [
        f"# Evaluation of {name}",
        "",
        f"- Model: `{rep['model']['path']}` ({rep['model']['kind']}, "
        f"{rep['model']['n_cells']} cells, input {rep['model']['input_size']} px)",
        "- Data: "
        + ", ".join(
            f"`{d}`" + (f" (split {rep['splits'][d]})" if d in rep["splits"] else "")
            for d in rep["data"]
        ),
        f"- Photos: {rep['n']} evaluated of {rep['n_photos']}; {rep['n_errors']} unreadable, "
        f"{rep['n_skipped_inputs']} input rows skipped"
        + (" (reasons in `errors.csv`)" if rep["errors"] else ""),
        f"- Headline rule: `{rep['decode_rule']}`; F1: micro-averaged over all cells at "
        "probability 0.5; GeoGuessr: mean score, 95% bootstrap interval",
        f"- Took {rep['seconds']:.1f} s; photos decoded and run at "
        f"{_num(rep['images_per_s'], '.1f')} photos/s",
        *([f"- **Warning:** {w}"] if (w := overlap_warning(rep)) else []),
        "",
        "## Single view, next to the baselines",
        "",
        *_table(
            [
                (name, rep),
                ("oracle (best the cells allow)", b["oracle"]),
                (f"constant: {b['constant']['reference']}", b["constant"]),
                (
                    f"constant: {b['constant_prior'].get('reference', 'photo prior')}",
                    b["constant_prior"],
                ),
                ("nearest neighbour (embeddings)", b["nearest_neighbour"]),
                # A model without embeddings (ONNX) still gets the baseline from a compared
                # checkpoint's backbone (e.g. the ImageNet one of a linear probe).
                *(
                    (f"nearest neighbour (embeddings of {c['name']})", c["nearest_neighbour"])
                    for c in rep["compare"][1:]
                    if "skipped" in b["nearest_neighbour"]
                    and "skipped" not in c.get("nearest_neighbour", {"skipped": ""})
                ),
            ]
        ),
        "## Decoding rules",
        "",
        *_table(list(rep["decoders"].items()), "rule"),
        *_calibration_lines(rep["calibration"]),
    ]
    mv = rep["multiview"]
    if mv:
        lines += [
            f"## Per place: views grouped by `{mv['group_by']}` ({mv['aggregate']} before "
            "decoding)",
            "",
            f"{mv['n_locations']} places, {mv['views_per_location']:.2f} views per place.",
            "",
            *_table(
                [*((f"{r}", m) for r, m in mv["decoders"].items()), ("oracle", mv["oracle"])],
                "rule",
            ),
        ]
    if len(rep["compare"]) > 1:
        lines += [
            f"## Models compared (single view, `{rep['decode_rule']}`)",
            "",
            *_table([(c["name"], c) for c in rep["compare"]], "model"),
        ]
        if any(c["multiview"] for c in rep["compare"]):
            lines += [
                "Per place:",
                "",
                *_table([(c["name"], c["multiview"]) for c in rep["compare"]], "model"),
            ]
    for key, title in (
        ("by_source", "source"),
        ("by_continent", "continent"),
        ("by_country", "country"),
    ):
        items = list(rep[key].items())
        more = (
            f" (the {len(items)} most photographed of them; all in report.json)"
            if len(items) > 25
            else ""
        )
        lines += [f"## By {title}{more}", "", *_table(items[:25], title)]
    if rep["confused_cells"]:
        lines += [
            "## Most-confused cells",
            "",
            "| true cell | guessed cell | photos | share of true cell | km apart |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {c['true_cell']} ({c['true_place']}) | {c['pred_cell']} "
            f"({c['pred_place']}) | {c['count']} | {c['share']:.1f}% | "
            f"{c['km_apart']:,.0f} |"
            for c in rep["confused_cells"]
        ]
        lines.append("")
    if rep["confused_countries"]:
        lines += [
            "## Most-confused countries (guess placed by its nearest town)",
            "",
            "| true | guessed | photos | share of true country |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {c['true']} | {c['pred']} | {c['count']} | {c['share']:.1f}% |"
            for c in rep["confused_countries"]
        ]
        lines.append("")
    lines += ["## Pictures", ""] + [f"![{f}]({f})" for f in files] + [""]
    return "\n".join(lines)


def write_report(ev: Evaluation, out_dir: Path) -> dict[str, Any]:
    """Write every output file into ``out_dir``; return the report (as in report.json)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rep = build_report(ev)
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
    pngs = [p.name for p in pictures(ev, rep, out_dir)] if (~ev.failed).any() else []
    rep["files"] = ["report.json", "report.md", *written, *pngs]
    atomic_write_text(out_dir / "report.md", markdown(rep, pngs))
    atomic_write_text(out_dir / "report.json", json.dumps(rep, indent=2, allow_nan=False))
    return rep


def summary_lines(rep: dict[str, Any]) -> list[str]:
    """What `img2loc eval` prints: headline, rules, per place, baselines, other models."""

    def fmt(m: dict[str, Any] | None) -> str:
        if not m or "skipped" in m:
            return f"skipped ({(m or {}).get('skipped', 'not computed')})"
        acc = " | ".join(f"{k} km: {_pct(v)}" for k, v in m["acc_km"].items())
        ci = m.get("geoguessr_ci95")
        ci_s = f" [{ci[0]:,.0f}, {ci[1]:,.0f}]" if ci and None not in ci else ""
        f1 = f" | F1 {m['f1']:.3f}" if m.get("f1") is not None else ""
        return (
            f"{acc} | median {_num(m['median_km'], ',.1f')} km | "
            f"GeoGuessr {_num(m['geoguessr_mean'])}{ci_s}{f1}"
        )

    lines = [
        f"{rep['model']['name']}: {rep['n']} photos ({rep['n_errors']} unreadable, "
        f"{rep['n_skipped_inputs']} skipped) in {rep['seconds']:.1f} s, "
        f"{_num(rep['images_per_s'], '.1f')} photos/s"
    ]
    lines += [
        f"  {r:<13} {fmt(m | {'f1': rep['f1']} if r == rep['decode_rule'] else m)}"
        for r, m in rep["decoders"].items()
    ]
    mv = rep["multiview"]
    if mv:
        lines.append(
            f"  per {mv['group_by']} ({mv['n_locations']} places, {mv['aggregate']}): " + fmt(mv)
        )
    cal = rep["calibration"]
    if cal["n"]:
        lines.append(
            f"  confidence: {cal['mean_confidence']:.1f}% shown, {cal['accuracy']:.1f}% in the "
            f"named cell; calibration error {cal['ece']:.1f} points"
        )
    for name, m in rep["baselines"].items():
        ref = f" ({m['reference']})" if "reference" in m else ""
        lines.append(f"  baseline {name}{ref}: {fmt(m)}")
    for c in rep["compare"][1:]:
        lines.append(f"  {c['name']}: {fmt(c)}")
    if warning := overlap_warning(rep):
        lines.append(f"warning: {warning}")
    return lines


def overlap_warning(rep: dict[str, Any]) -> str:
    """Why the figures may flatter the model ("" when nothing is known against them)."""
    n = (rep["train_data"] or {}).get("overlap", 0)
    if not n:
        return ""
    return (
        f"{n} evaluated photo(s) are also in --train-data: the nearest neighbour finds "
        "them, and any model trained on them looks better than it is"
    )
