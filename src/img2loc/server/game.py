"""The game's photos: a manifest or a folder of photos with GPS, served under neutral names."""

from __future__ import annotations

import io
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from img2loc.data.images import ImageError, peek_image
from img2loc.server.checks import ServeError

#: Photo types a game can show (what browsers display in an <img>).
GAME_IMAGE_TYPES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif"})


@dataclass(frozen=True)
class GameData:
    """Photos of a ``--game-data`` manifest: served names -> local files, plus their CSV."""

    files: Mapping[str, Path]
    csv: bytes
    #: Rows left out, as (image reference, reason).
    skipped: tuple[tuple[str, str], ...] = ()

    def report(self, stream: Any = None, limit: int = 10) -> None:
        """Tell the user which rows were left out and why (to stderr by default)."""
        stream = stream or sys.stderr
        if not self.skipped:
            return
        stream.write(f"game data: {len(self.skipped)} photo(s) left out:\n")
        for ref, why in self.skipped[:limit]:
            stream.write(f"  {ref}: {why}\n")
        if len(self.skipped) > limit:
            stream.write(f"  ... and {len(self.skipped) - limit} more\n")


def _game_rows(source: Path) -> tuple[list[tuple[str, Path, Any, Any]], list[tuple[str, str]]]:
    """(reference, file, latitude, longitude) rows of a manifest or of a photo folder.

    A folder's photos give their position from EXIF GPS; photos without one are skipped
    (and listed).
    """
    if source.is_dir():
        from img2loc.data.exif import gps_from_exif

        rows, skipped = [], []
        for p in sorted(source.rglob("*")):
            if not p.is_file() or p.name.startswith("."):
                continue
            if p.suffix.lower() not in GAME_IMAGE_TYPES:
                if p.suffix.lower() in (".heic", ".heif", ".tif", ".tiff"):
                    skipped.append((str(p.relative_to(source)), "browsers cannot show this type"))
                continue
            try:
                _, exif = peek_image(p)
            except ImageError as e:
                skipped.append((str(p.relative_to(source)), str(e).removeprefix(f"{p}: ")))
                continue
            g = gps_from_exif(exif)
            if g.lat is None:
                skipped.append((str(p.relative_to(source)), g.reason))
                continue
            rows.append((str(p.relative_to(source)), p, g.lat, g.lon))
        return rows, skipped

    from img2loc.data.tables import (
        IMAGE_NAMES,
        LAT_NAMES,
        LON_NAMES,
        TableError,
        find_column,
        read_table,
    )

    try:
        df = read_table(source)
        img_col = find_column(df, IMAGE_NAMES, "image path", source)
        lat_col = find_column(df, LAT_NAMES, "latitude", source)
        lon_col = find_column(df, LON_NAMES, "longitude", source)
    except TableError as e:
        raise ServeError(str(e)) from None
    root = source.resolve().parent
    rows = []
    for ref, lat, lon in zip(df[img_col], df[lat_col], df[lon_col], strict=True):
        p = Path(str(ref))
        rows.append((str(ref), p if p.is_absolute() else root / p, lat, lon))
    return rows, []


def load_game_data(source: Path) -> GameData:
    """Photos with known positions for the game mode.

    ``source``: a CSV/Parquet manifest (an image path column, ``image``/``path``/``file``,
    relative to the manifest's folder or absolute, and ``latitude``/``longitude`` or
    ``lat``/``lon``), or a folder of photos whose EXIF carries their GPS position.
    Photos are served as ``img/<n>.<ext>``: no local path and no file name (which may
    name the place) reaches the browser.
    """
    import csv

    if not source.exists():
        raise ServeError(f"{source} not found; pass a CSV/Parquet manifest or a folder of photos")
    rows, skipped = _game_rows(source)
    files: dict[str, Path] = {}
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["image", "latitude", "longitude"])
    for ref, p, lat, lon in rows:
        ext = p.suffix.lower()
        try:
            la, lo = float(lat), float(lon)
        except (TypeError, ValueError):
            la = lo = math.nan
        why = ""
        if not (-90 <= la <= 90 and -180 <= lo <= 180):  # NaN fails too
            why = f"bad coordinates ({lat!r}, {lon!r})"
        elif not p.is_file():
            why = f"file not found: {p}"
        elif ext not in GAME_IMAGE_TYPES:
            why = f"not an image type the browser shows ({ext or 'no extension'})"
        else:
            try:  # the browser would fail on it mid-game: refuse it now, with the reason
                peek_image(p)
            except ImageError as e:
                why = str(e).removeprefix(f"{p}: ")
        if why:
            skipped.append((ref, why))
            continue
        name = f"img/{len(files)}{ext}"
        files[name] = p.resolve()
        w.writerow([name, repr(la), repr(lo)])
    if not files:
        what = "photos with EXIF GPS" if source.is_dir() else "usable photos"
        raise ServeError(
            f"{source}: no {what} ({len(skipped)} skipped, e.g. "
            f"{skipped[0][0] if skipped else '-'}: {skipped[0][1] if skipped else 'empty'}); "
            + (
                "the game needs photos whose EXIF has a GPS position"
                if source.is_dir()
                else "image paths are relative to the manifest's folder"
            )
        )
    return GameData(files, out.getvalue().encode(), tuple(skipped))


def default_game(examples_dir: Path | None) -> GameData | None:
    """The bundled examples as the game's photos (None when the package has none)."""
    if examples_dir is None or not (examples_dir / "locations.csv").is_file():
        return None
    try:
        return load_game_data(examples_dir / "locations.csv")
    except ServeError:
        return None
