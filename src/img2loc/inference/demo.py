"""The quick start: guess the bundled example photos and compare with where they were taken.

The examples (``assets/examples``: CC BY-SA 4.0 street photos from Global
Streetscapes / Mapillary, see its ``ATTRIBUTION.md``) come with a
``locations.csv`` (``image,latitude,longitude``); any folder laid out the same way
works, e.g. ``../shared/data/streetview-croatia``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from img2loc.geo.decode import DEFAULT_RULE
from img2loc.geo.distance import THRESHOLDS_KM, geoguessr_score, haversine_km, threshold_key
from img2loc.inference.output import cut
from img2loc.inference.predictor import FALLBACK_NOTE, Prediction, Predictor

#: Example photos inside the package (CC BY-SA 4.0, see their ATTRIBUTION.md); the demo
#: and the web app's game use them.
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "assets" / "examples"


@dataclass
class DemoRow:
    """One example: the truth, the model's answer and the distance between them."""

    image: str
    lat: float
    lon: float
    pred: Prediction
    error_km: float | None


def read_locations(folder: str | Path) -> list[tuple[Path, float, float]]:
    """(image path, latitude, longitude) rows of ``folder/locations.csv``."""
    folder = Path(folder)
    table = folder / "locations.csv"
    if not table.is_file():
        raise FileNotFoundError(
            f"{table} not found: give a folder with a locations.csv "
            "(image,latitude,longitude; image paths relative to the folder)"
        )
    rows = []
    with table.open(newline="") as f:
        for i, r in enumerate(csv.DictReader(f), start=2):
            try:
                rows.append((folder / r["image"], float(r["latitude"]), float(r["longitude"])))
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"{table}:{i}: need image, latitude, longitude ({e})") from None
    return rows


def run_demo(
    predictor: Predictor,
    folder: str | Path = EXAMPLES_DIR,
    decode: str = DEFAULT_RULE,
    limit: int | None = None,
) -> list[DemoRow]:
    """Predict every photo listed in ``folder/locations.csv`` and measure the error."""
    rows = read_locations(folder)[:limit]
    preds = predictor.predict([str(p) for p, _, _ in rows], top_k=3, decode=decode)
    out = []
    for (path, lat, lon), p in zip(rows, preds, strict=True):
        err = None
        if p.ok and p.lat is not None and p.lon is not None:
            err = float(haversine_km(p.lat, p.lon, lat, lon))
        out.append(DemoRow(path.name, lat, lon, p, err))
    return out


def demo_lines(rows: list[DemoRow]) -> list[str]:
    """A table of truth vs guess per photo, then the summary figures."""
    from img2loc.data.places import reverse_geocode

    truth = reverse_geocode([r.lat for r in rows], [r.lon for r in rows]) if rows else []
    lines = [f"{'photo':<20}  {'taken near':<30}  {'model guess':<30}  {'conf':>4}  {'error':>9}"]
    for r, t in zip(rows, truth, strict=True):
        p = r.pred
        head = f"{cut(r.image, 20):<20}  {cut(t['place'], 30):<30}"
        if not p.ok:
            lines.append(f"{head}  error: {p.error}")
            continue
        # A fallback answer is marked: it comes from where photos are usually taken.
        place = (p.place or "?") + (" *" if p.fallback else "")
        lines.append(
            f"{head}  {cut(place, 30):<30}  "
            f"{(p.confidence or 0) * 100:>3.0f}%  {r.error_km:>6,.0f} km"
        )
    d = np.array([r.error_km for r in rows if r.error_km is not None])
    if d.size:
        acc = ", ".join(
            f"{threshold_key(t)} km {100 * float((d <= t).mean()):.0f}%" for t in THRESHOLDS_KM
        )
        lines += [
            "",
            f"{d.size} photos: median error {float(np.median(d)):,.0f} km; within {acc}; "
            f"mean GeoGuessr score {float(geoguessr_score(d).mean()):,.0f} / 5000",
        ]
    if n := sum(r.pred.fallback for r in rows):
        lines.append(f"* {n} photo(s) {FALLBACK_NOTE}")
    return lines
