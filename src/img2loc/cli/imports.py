"""`img2loc data import`: photos from a folder, a table or an online source into a manifest."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from img2loc.cli.common import choice, fail

if TYPE_CHECKING:
    import pandas as pd

    from img2loc.data.sources.base import ImportReport

import_app = typer.Typer(
    help="Import photos from a source into a manifest (Parquet).", no_args_is_help=True
)


def write_import(
    df: pd.DataFrame, report: ImportReport, output: Path, *, empty_ok: bool = False
) -> None:
    from img2loc.data.manifest import write_manifest
    from img2loc.files import atomic_write_text

    skipped = report.to_frame()
    rep = output.with_name(output.stem + ".skipped.csv")
    if len(df) == 0 and not empty_ok:
        # A manifest of nothing only fails later, further from the cause: stop here.
        if len(skipped):
            atomic_write_text(rep, skipped.to_csv(index=False))
            f, why = next(skipped.itertuples(index=False))
            raise fail(
                f"no photo imported: all {len(skipped)} skipped (first: {f or 'row'}: {why}); "
                f"every reason in {rep}"
            )
        raise fail("no photo imported: no image file or table row found")
    vr = write_manifest(df, output)
    for line in vr.lines():
        typer.echo(f"  {line}")
    n = len(df) - len(vr.duplicate_hashes)
    typer.echo(f"wrote {output}: {n} photos")
    if len(skipped):
        atomic_write_text(rep, skipped.to_csv(index=False))
        typer.echo(f"{len(skipped)} file(s) not imported, reasons in {rep}:")
        for f, why in skipped.head(10).itertuples(index=False):
            typer.echo(f"  {f}: {why}")
        if len(skipped) > 10:
            typer.echo(f"  ... and {len(skipped) - 10} more")


OutputOpt = Annotated[Path, typer.Option("-o", "--output", help="Manifest to write (.parquet).")]


@import_app.command("folder")
def import_folder_cmd(
    directory: Annotated[Path, typer.Argument(help="Folder searched recursively for photos.")],
    output: OutputOpt,
) -> None:
    """Every JPEG/PNG/HEIC/TIFF/WebP under DIRECTORY, located by its EXIF GPS."""
    from img2loc.data.sources.folder import import_folder

    try:
        df, report = import_folder(directory)
    except FileNotFoundError as e:
        raise fail(str(e)) from None
    write_import(df, report, output)


@import_app.command("csv")
def import_csv_cmd(
    table: Annotated[Path, typer.Argument(help="CSV/TSV/Parquet with image + coordinates.")],
    output: OutputOpt,
    image_col: Annotated[str | None, typer.Option(help="Image path/URL column.")] = None,
    lat_col: Annotated[str | None, typer.Option(help="Latitude column.")] = None,
    lon_col: Annotated[str | None, typer.Option(help="Longitude column.")] = None,
    key_col: Annotated[str | None, typer.Option(help="Unique id column.")] = None,
    source: Annotated[str | None, typer.Option(help="Source name (default: folder name).")] = None,
    image_dir: Annotated[
        Path | None,
        typer.Option(help="Folder relative image paths start from (default: the table's folder)."),
    ] = None,
    image_ext: Annotated[str, typer.Option(help="Suffix appended to ids, e.g. .jpg")] = "",
) -> None:
    """Photos listed in a table (defaults: image,latitude,longitude / IMG_ID,LAT,LON / id,...)."""
    from img2loc.data.sources.table import import_table

    df, report = import_table(
        table,
        image_col=image_col,
        lat_col=lat_col,
        lon_col=lon_col,
        key_col=key_col,
        source=source,
        image_dir=image_dir,
        image_ext=image_ext,
    )
    write_import(df, report, output)


@import_app.command("osv5m")
def import_osv5m_cmd(
    directory: Annotated[Path, typer.Argument(help="OSV-5M folder (train.csv, images/...).")],
    output: OutputOpt,
) -> None:
    """OpenStreetView-5M: images read straight from its zip shards."""
    from img2loc.data.sources.osv5m import import_osv5m

    try:
        df, report = import_osv5m(directory)
    except (FileNotFoundError, OSError) as e:
        raise fail(str(e)) from None
    write_import(df, report, output)


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        a, b, c, d = (float(x) for x in text.split(","))
    except ValueError:
        raise fail(f"--bbox wants MIN_LON,MIN_LAT,MAX_LON,MAX_LAT, got {text!r}") from None
    return a, b, c, d


_ONLINE_ERRORS: tuple[type[Exception], ...] = (ValueError, OSError, RuntimeError)


def _import_online(output: Path, collect: Callable[[], tuple[pd.DataFrame, ImportReport]]) -> None:
    try:
        df, report = collect()
    except _ONLINE_ERRORS as e:
        raise fail(str(e)) from None
    # Online collectors may rightly find nothing yet (a cost estimate, an empty box).
    write_import(df, report, output, empty_ok=True)


ImagesDir = Annotated[Path, typer.Option("--images", help="Folder for the downloaded images.")]


@import_app.command("streetview")
def import_streetview_cmd(
    output: OutputOpt,
    images: ImagesDir = Path("streetview"),
    points: Annotated[
        Path | None, typer.Option(help="CSV of latitude,longitude to sample.")
    ] = None,
    bbox: Annotated[str | None, typer.Option(help="MIN_LON,MIN_LAT,MAX_LON,MAX_LAT.")] = None,
    n_points: Annotated[int | None, typer.Option(help="Points to sample in --bbox.")] = None,
    headings: Annotated[int, typer.Option(help="Views per panorama.")] = 4,
    heading_mode: Annotated[
        str,
        typer.Option(
            help="even or random.", parser=choice("img2loc.data.sources.streetview:HEADING_MODES")
        ),
    ] = "even",
    radius_m: Annotated[int, typer.Option(help="Search radius for a panorama.")] = 50,
    size: Annotated[str, typer.Option(help="Image size WxH.")] = "640x640",
    fov: Annotated[float, typer.Option(help="Field of view.")] = 90,
    budget_usd: Annotated[
        float | None,
        typer.Option(help="Stop paid downloads at this cost (0: print the estimate only)."),
    ] = None,
    price_per_1000: Annotated[float, typer.Option(help="USD per 1000 images.")] = 7.0,
    key_file: Annotated[
        Path | None, typer.Option(help="File holding the API key (default: $GOOGLE_MAPS_API_KEY).")
    ] = None,
    secret_file: Annotated[Path | None, typer.Option(help="URL-signing secret file.")] = None,
    rate: Annotated[float, typer.Option(help="Requests per second.")] = 20.0,
    seed: Annotated[int, typer.Option(help="Seed of point sampling and headings.")] = 0,
    base_url: Annotated[str, typer.Option(hidden=True)] = "https://maps.googleapis.com",
) -> None:
    """Google Street View Static API: metadata (free) then images (paid), resumable."""
    from img2loc.data.sources import streetview
    from img2loc.data.tables import read_coordinates

    pts = None
    if points is not None:
        lat, lon, _ = read_coordinates([points])
        pts = list(zip(lat, lon, strict=True))
    secret = secret_file.read_text().strip() if secret_file else None
    _import_online(
        output,
        lambda: streetview.collect(
            images,
            points=pts,
            bbox=_bbox(bbox),
            n_points=n_points,
            headings=headings,
            heading_mode=heading_mode,
            radius_m=radius_m,
            size=size,
            fov=fov,
            budget_usd=budget_usd,
            price_per_1000=price_per_1000,
            key_file=key_file,
            secret=secret,
            base_url=base_url,
            rate_per_s=rate,
            seed=seed,
        ),
    )


@import_app.command("mapillary")
def import_mapillary_cmd(
    output: OutputOpt,
    bbox: Annotated[str, typer.Option(help="MIN_LON,MIN_LAT,MAX_LON,MAX_LAT.")],
    images: ImagesDir = Path("mapillary"),
    max_images: Annotated[int | None, typer.Option(help="Stop after this many.")] = None,
    token_file: Annotated[
        Path | None, typer.Option(help="File holding the token (default: $MAPILLARY_ACCESS_TOKEN).")
    ] = None,
    base_url: Annotated[str, typer.Option(hidden=True)] = "https://graph.mapillary.com",
) -> None:
    """Mapillary API v4: images in a bounding box with thumbnails (resumable)."""
    from img2loc.data.sources import mapillary

    _import_online(
        output,
        lambda: mapillary.collect(
            images,
            _bbox(bbox) or (),
            max_images=max_images,
            token_file=token_file,
            base_url=base_url,
        ),
    )


@import_app.command("flickr")
def import_flickr_cmd(
    output: OutputOpt,
    tags: Annotated[list[str], typer.Option("--tag", help="Search tag (repeatable).")],
    since: Annotated[str, typer.Option(help="Earliest upload date (YYYY-MM-DD).")],
    until: Annotated[str, typer.Option(help="Latest upload date (YYYY-MM-DD).")],
    images: ImagesDir = Path("flickr"),
    license_ids: Annotated[
        list[int] | None,
        typer.Option("--license", help="Allowed license ids (default: Creative Commons)."),
    ] = None,
    max_images: Annotated[int | None, typer.Option(help="Stop after this many.")] = None,
    key_file: Annotated[
        Path | None, typer.Option(help="File holding the API key (default: $FLICKR_API_KEY).")
    ] = None,
    base_url: Annotated[str, typer.Option(hidden=True)] = "https://api.flickr.com",
) -> None:
    """Flickr geotagged search (im2gps style) with time-block splitting (resumable)."""
    from img2loc.data.sources import flickr

    _import_online(
        output,
        lambda: flickr.collect(
            images,
            tags,
            since,
            until,
            key_file=key_file,
            base_url=base_url,
            max_images=max_images,
            licenses=flickr.CC_LICENSES if license_ids is None else license_ids,
        ),
    )
