"""report.md and the lines `img2loc eval` prints, rendered from the report's JSON content.

Nothing is computed here: every figure comes from :func:`img2loc.evaluation.report.build_report`.
"""

from __future__ import annotations

from typing import Any

from img2loc.geo.distance import THRESHOLDS_KM, threshold_key


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


def paired_line(p: dict[str, Any]) -> str:
    """``against X: single photo +12 [-30, +51] (519 places), per place ...`` in one line."""

    def one(d: dict[str, Any], unit: str) -> str:
        lo, hi = d["ci"]
        return f"{d['mean']:+,.0f} [{lo:+,.0f}, {hi:+,.0f}] ({d['units']} {unit})"

    single = p["single"]
    unit = "places" if single["units"] < single["n"] else "photos"
    s = f"against {p['against']}: single photo {one(single, unit)}"
    if "per_place" in p:
        s += f", per place {one(p['per_place'], 'places')}"
    return s


def _fallback_lines(fb: dict[str, Any] | None) -> list[str]:
    if not fb:
        return []

    def pts(v: float | None) -> str:
        return "–" if v is None else f"{v:,.0f}"

    return [
        "## Fallback to the photo prior",
        "",
        f"{fb['n_fallback']} of {fb['n']} photos ({100 * fb['share']:.1f}%) looked unlike the "
        "training photos (in-domain weight < 0.5) and were answered mostly from where photos "
        f"are usually taken; mean in-domain weight {fb['mean_in_domain']:.2f}. GeoGuessr: "
        f"{pts(fb['geoguessr_fallback'])} on those, {pts(fb['geoguessr_model'])} on the rest.",
        "",
    ]


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
        *_fallback_lines(rep.get("fallback")),
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
        lines += [
            f"Paired GeoGuessr difference, {rep['model']['name']} minus each model on the same "
            "photos (95% bootstrap interval; over places when views are grouped):",
            "",
            *(f"- {paired_line(c['paired'])}" for c in rep["compare"][1:] if "paired" in c),
            "",
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
    if fb := rep.get("fallback"):
        lines.append(
            f"  fallback to the photo prior: {fb['n_fallback']} of {fb['n']} photos "
            f"({100 * fb['share']:.1f}%)"
        )
    for name, m in rep["baselines"].items():
        ref = f" ({m['reference']})" if "reference" in m else ""
        lines.append(f"  baseline {name}{ref}: {fmt(m)}")
    for c in rep["compare"][1:]:
        lines.append(f"  {c['name']}: {fmt(c)}")
        if "paired" in c:
            lines.append(f"    paired: {paired_line(c['paired'])}")
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
