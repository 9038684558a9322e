"""Write predictions as they come: a human-readable table, one JSON array, or CSV."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TextIO

import numpy as np

from img2loc.geo.decode import DEFAULT_RULE
from img2loc.inference.predictor import FALLBACK_NOTE, Prediction

FORMATS = ("table", "json", "csv")
#: Why a score-optimal guess is often not the first of the `top:` list. One sentence, one
#: home: the predict table prints it under its `top:` lists; the web app shows the same words.
GUESS_EXPLAINED = (
    "The guess is the point with the best expected GeoGuessr score; the list shows the "
    "regions the model finds most likely, so the guess can lie between them."
)
CSV_COLUMNS = (
    "image",
    "lat",
    "lon",
    "place",
    "confidence",
    "exif_lat",
    "exif_lon",
    "error_km",
    "error",
    "views",
    "in_domain",
    "fallback",
)
_IMAGE_W, _PLACE_W = 36, 34


@dataclass
class Summary:
    """Counts of a run: how many images were located, failed, and errors against EXIF GPS."""

    n: int = 0
    failed: int = 0
    fallbacks: int = 0
    errors_km: list[float] = field(default_factory=list)

    def add(self, p: Prediction) -> None:
        self.n += 1
        self.failed += not p.ok
        self.fallbacks += p.fallback
        if p.error_km is not None:
            self.errors_km.append(p.error_km)

    def line(self) -> str:
        s = f"{self.n} image(s): {self.n - self.failed} located, {self.failed} failed"
        if self.fallbacks:
            s += f" ({self.fallbacks} unlike the training photos: answered from the photo prior)"
        if self.errors_km:
            s += (
                f"; {len(self.errors_km)} with EXIF GPS: median error "
                f"{float(np.median(self.errors_km)):,.1f} km"
            )
        return s


def cut(s: str, w: int, left: bool = False) -> str:
    """``s`` in at most ``w`` characters; a cut shows as an ellipsis (on the left: keep the end)."""
    if len(s) <= w:
        return s
    return "…" + s[-(w - 1) :] if left else s[: w - 1] + "…"


def _table_row(p: Prediction, top_k: int) -> str:
    name = cut(p.image, _IMAGE_W, left=True).ljust(_IMAGE_W)
    if p.error is not None:
        return f"{name}  error: {p.error}"
    assert p.lat is not None and p.lon is not None and p.confidence is not None
    guess = f"{p.lat:8.4f}, {p.lon:9.4f}"
    row = f"{name}  {guess}  {cut(p.place or '', _PLACE_W):<{_PLACE_W}}  {p.confidence:6.1%}"
    if p.exif is not None and p.error_km is not None:
        row += f"  {p.exif[0]:8.4f}, {p.exif[1]:9.4f}  {p.error_km:9,.1f} km"
    if p.n_views > 1:
        row += f"  views={p.n_views}"
    if p.view_errors:
        row += "\n    unreadable views: " + " | ".join(p.view_errors)
    if p.fallback:
        row += f"\n    fallback: {FALLBACK_NOTE} (model weight {p.in_domain:.0%})"
    if top_k > 1 and p.top:
        row += "\n    top: " + " | ".join(f"{t.place} {t.probability:.1%}" for t in p.top)
    return row


def _table_header() -> str:
    return (
        f"{'image':<{_IMAGE_W}}  {'guess (lat, lon)':<19}  {'place':<{_PLACE_W}}  "
        f"{'conf':>6}  {'EXIF GPS (lat, lon)':<19}  {'error':>12}"
    )


def write_predictions(
    preds: Iterable[Prediction],
    out: TextIO,
    fmt: str = "table",
    top_k: int = 5,
    decode: str = DEFAULT_RULE,
) -> Summary:
    """Write each prediction as soon as it arrives; return the run's :class:`Summary`.

    The table ends with :data:`GUESS_EXPLAINED` when it lists the most probable regions
    (``top_k`` > 1) beside score-optimal guesses (``decode="score"``).
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    summary = Summary()
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(CSV_COLUMNS)
    elif fmt == "json":
        out.write("[")
    else:
        out.write(_table_header() + "\n")
    for p in preds:
        if writer is not None:
            d = p.to_dict()
            ex = d["exif"] or {}
            writer.writerow(
                [
                    d["image"],
                    d["lat"],
                    d["lon"],
                    d["place"],
                    d["confidence"],
                    ex.get("lat"),
                    ex.get("lon"),
                    d["error_km"],
                    d["error"],
                    p.n_views,
                    d["in_domain"],
                    int(p.fallback),
                ]
            )
        elif fmt == "json":
            sep = "\n" if summary.n == 0 else ",\n"
            out.write(sep + json.dumps(p.to_dict(), ensure_ascii=False))
        else:
            out.write(_table_row(p, top_k) + "\n")
        out.flush()
        summary.add(p)
    if fmt == "json":
        out.write("\n]\n" if summary.n else "]\n")
    elif fmt == "table":
        out.write(summary.line() + "\n")
        if decode == "score" and top_k > 1 and summary.n > summary.failed:
            out.write(GUESS_EXPLAINED + "\n")
    return summary
