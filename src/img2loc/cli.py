"""The `img2loc` command line. A thin shell: heavy imports happen inside commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperOption

from img2loc import __version__

# typer 0.29's rich help prints a type after every option, flags included (`--json <bool>`,
# `--help <bool>`), as if they took a value. A flag takes none: print no type for it.
_display_type = TyperOption.display_type_rich


def _no_type_for_flags(self: TyperOption, ctx: typer.Context) -> str | None:
    return None if self.is_flag else _display_type(self, ctx)


TyperOption.display_type_rich = _no_type_for_flags  # type: ignore[method-assign]

app = typer.Typer(
    help="img2loc: tell where on Earth a photo was taken, from the pixels alone.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
cells_app = typer.Typer(help="Build and inspect adaptive S2 cell sets.", no_args_is_help=True)
app.add_typer(cells_app, name="cells")
data_app = typer.Typer(
    help="Build datasets: import photos, write shards, statistics.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
import_app = typer.Typer(
    help="Import photos from a source into a manifest (Parquet).", no_args_is_help=True
)
data_app.add_typer(import_app, name="import")


def _fail(msg: str) -> typer.Exit:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"img2loc {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """img2loc: tell where on Earth a photo was taken, from the pixels alone."""


def _fmt_metrics(m: dict[str, object]) -> str:
    acc = m["acc_km"]
    assert isinstance(acc, dict)
    parts = [f"{k} km: {v:5.1f}%" for k, v in acc.items()]
    return (
        " | ".join(parts) + f" | median {m['median_km']:.1f} km | "
        f"GeoGuessr {m['geoguessr_mean']:.0f}"
    )


@cells_app.command("build")
def cells_build(
    manifests: Annotated[
        list[Path],
        typer.Argument(
            help="CSV/Parquet files with latitude/longitude columns "
            "(e.g. ../shared/data/*/locations.csv)."
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Cell set JSON to write.")],
    min_samples: Annotated[int, typer.Option(help="Drop cells holding fewer photos.")] = 50,
    max_samples: Annotated[int, typer.Option(help="Split cells holding more photos.")] = 1000,
    min_level: Annotated[int, typer.Option(help="Coarsest S2 level.")] = 2,
    max_level: Annotated[int, typer.Option(help="Finest S2 level.")] = 14,
    lat_col: Annotated[str | None, typer.Option(help="Latitude column (default: auto).")] = None,
    lon_col: Annotated[str | None, typer.Option(help="Longitude column (default: auto).")] = None,
    group_col: Annotated[
        str | None,
        typer.Option(help="Column grouping views of one place (default: location_id if present)."),
    ] = None,
    count_photos: Annotated[
        bool, typer.Option("--count-photos", help="Count every photo, not every location group.")
    ] = False,
    prior: Annotated[
        Path | None,
        typer.Option(
            help="Coordinates of where people take photos (CSV/Parquet, e.g. "
            "../shared/data/photo-locations-mp16/coordinates_100K.csv): add cells where they "
            "are dense and no training cell is, and store each cell's share of them."
        ),
    ] = None,
    prior_min_samples: Annotated[
        int, typer.Option(help="With --prior: drop prior cells holding fewer points.")
    ] = 100,
    prior_max_samples: Annotated[
        int, typer.Option(help="With --prior: split prior cells holding more points.")
    ] = 1000,
) -> None:
    """Partition the Earth into adaptive S2 cells from photo coordinates."""
    from img2loc.data.tables import TableError, read_coordinates
    from img2loc.geo import CellSet, CoordinateError, oracle_metrics

    try:
        lat, lon, groups = read_coordinates(
            list(manifests), lat_col, lon_col, group_col, use_groups=not count_photos
        )
        cells = CellSet.build(
            lat,
            lon,
            min_samples=min_samples,
            max_samples=max_samples,
            min_level=min_level,
            max_level=max_level,
            groups=groups,
        )
        if prior is not None:
            plat, plon, _ = read_coordinates([prior], None, None, None, use_groups=False)
            cells = cells.with_prior(
                plat, plon, min_samples=prior_min_samples, max_samples=prior_max_samples
            )
    except (TableError, CoordinateError, ValueError) as e:
        raise _fail(str(e)) from None
    cells.save(output)
    info = cells.summary()
    counted = "location groups" if groups is not None else "photos"
    typer.echo(
        f"{len(lat)} photos ({cells.params['n_counted']} {counted} counted) -> "
        f"{info['n_cells']} cells, {info['n_leaves']} leaves"
    )
    typer.echo(
        "cells per level: " + ", ".join(f"L{lv}: {n}" for lv, n in info["cells_per_level"].items())
    )
    typer.echo(
        f"{counted} per leaf: min {info['leaf_count_min']}, "
        f"median {info['leaf_count_median']:.0f}, max {info['leaf_count_max']}"
    )
    covered = float((cells.finest(lat, lon) >= 0).mean() * 100)
    typer.echo(f"photos inside a cell: {covered:.1f}%")
    if prior is not None:
        added = cells.params["prior"]["added_cells"]
        inside = float((cells.finest(plat, plon) >= 0).mean() * 100)
        typer.echo(f"prior: {len(plat)} points, {added} cells added, {inside:.1f}% inside a cell")
    typer.echo("oracle (nearest cell point): " + _fmt_metrics(oracle_metrics(cells, lat, lon)))
    typer.echo(f"wrote {output}")


@cells_app.command("show")
def cells_show(
    cells_json: Annotated[Path, typer.Argument(help="Cell set JSON from `cells build`.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG to write.")] = Path(
        "cells.png"
    ),
) -> None:
    """Draw a cell set on a world map with country outlines (offline)."""
    from img2loc.geo import CellSet
    from img2loc.viz.maps import plot_cells

    try:
        cells = CellSet.load(cells_json)
    except (FileNotFoundError, ValueError) as e:
        raise _fail(str(e)) from None
    plot_cells(cells, output)
    typer.echo(f"wrote {output}")


def _write_import(df: object, report: object, output: Path, *, empty_ok: bool = False) -> None:
    from img2loc.data.manifest import ManifestError, write_manifest
    from img2loc.geo.atomic import atomic_write_text

    skipped = report.to_frame()  # type: ignore[attr-defined]
    rep = output.with_name(output.stem + ".skipped.csv")
    if len(df) == 0 and not empty_ok:  # type: ignore[arg-type]
        # A manifest of nothing only fails later, further from the cause: stop here.
        if len(skipped):
            atomic_write_text(rep, skipped.to_csv(index=False))
            f, why = next(skipped.itertuples(index=False))
            raise _fail(
                f"no photo imported: all {len(skipped)} skipped (first: {f or 'row'}: {why}); "
                f"every reason in {rep}"
            )
        raise _fail("no photo imported: no image file or table row found")
    try:
        vr = write_manifest(df, output)  # type: ignore[arg-type]
    except ManifestError as e:
        raise _fail(str(e)) from None
    for line in vr.lines():
        typer.echo(f"  {line}")
    n = len(df) - len(vr.duplicate_hashes)  # type: ignore[arg-type]
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
        raise _fail(str(e)) from None
    _write_import(df, report, output)


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
    from img2loc.data.tables import TableError

    try:
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
    except TableError as e:
        raise _fail(str(e)) from None
    _write_import(df, report, output)


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
        raise _fail(str(e)) from None
    _write_import(df, report, output)


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        a, b, c, d = (float(x) for x in text.split(","))
    except ValueError:
        raise _fail(f"--bbox wants MIN_LON,MIN_LAT,MAX_LON,MAX_LAT, got {text!r}") from None
    return a, b, c, d


def _write_online(df: object, output: Path) -> None:
    from img2loc.data.sources.folder import ImportReport

    summary = getattr(df, "attrs", {}).get("summary") or {}
    report = ImportReport([("", m) for m in summary.get("messages", [])])
    # Online collectors may rightly find nothing yet (a cost estimate, an empty box).
    _write_import(df, report, output, empty_ok=True)


_ONLINE_ERRORS: tuple[type[Exception], ...] = (ValueError, OSError, RuntimeError)
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
    heading_mode: Annotated[str, typer.Option(help="even or random.")] = "even",
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
    try:
        df = streetview.collect(
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
        )
    except _ONLINE_ERRORS as e:
        raise _fail(str(e)) from None
    _write_online(df, output)


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

    try:
        df = mapillary.collect(
            images,
            _bbox(bbox) or (),
            max_images=max_images,
            token_file=token_file,
            base_url=base_url,
        )
    except _ONLINE_ERRORS as e:
        raise _fail(str(e)) from None
    _write_online(df, output)


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

    kwargs = {} if license_ids is None else {"licenses": license_ids}
    try:
        df = flickr.collect(
            images,
            tags,
            since,
            until,
            key_file=key_file,
            base_url=base_url,
            max_images=max_images,
            **kwargs,
        )  # type: ignore[arg-type]
    except _ONLINE_ERRORS as e:
        raise _fail(str(e)) from None
    _write_online(df, output)


@data_app.command("download")
def data_download_cmd(
    manifest: Annotated[Path, typer.Argument(help="Manifest whose images are http(s) URLs.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Download folder.")],
    manifest_out: Annotated[Path, typer.Option(help="Manifest of the local copies.")] = Path(
        "downloaded.parquet"
    ),
    image_size: Annotated[int, typer.Option(help="Longer side after resizing.")] = 384,
    processes: Annotated[int, typer.Option(help="img2dataset processes.")] = 2,
    threads: Annotated[int, typer.Option(help="Download threads per process.")] = 32,
    retries: Annotated[int, typer.Option(help="Retries per URL.")] = 3,
    distributor: Annotated[
        str, typer.Option(help="multiprocessing, pyspark or ray (img2dataset's distributors).")
    ] = "multiprocessing",
    img2dataset: Annotated[str | None, typer.Option(help="Path of img2dataset.")] = None,
) -> None:
    """Download URL records with img2dataset (resumable: run it again after a crash)."""
    from img2loc.data.download import download
    from img2loc.data.manifest import read_manifest

    try:
        df, report = download(
            read_manifest(manifest),
            output,
            image_size=image_size,
            processes=processes,
            threads=threads,
            retries=retries,
            distributor=distributor,
            img2dataset=img2dataset,
        )
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        raise _fail(str(e)) from None
    _write_import(df, report, manifest_out)


@data_app.command("shards")
def data_shards_cmd(
    manifests: Annotated[list[Path], typer.Argument(help="Manifests to shard.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Shard folder.")],
    max_side: Annotated[int, typer.Option(help="Resize so the longer side is at most this.")] = 384,
    shard_size: Annotated[int, typer.Option(help="Photos per shard.")] = 1000,
    val_frac: Annotated[float, typer.Option(help="Share of locations for validation.")] = 0.05,
    test_frac: Annotated[float, typer.Option(help="Share of locations for test.")] = 0.05,
    geo_km: Annotated[
        float,
        typer.Option(help="Keep val/test locations at least this far from every train location."),
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the split and the shuffle.")] = 0,
    workers: Annotated[int | None, typer.Option(help="Processes (default: all cores).")] = None,
    weight: Annotated[
        list[str] | None,
        typer.Option(help="Per-source sampling weight for training, SOURCE=W (repeatable)."),
    ] = None,
) -> None:
    """Decode, validate, resize and shuffle photos into WebDataset shards (resumable)."""
    from img2loc.data.manifest import ManifestError
    from img2loc.data.shards import ShardConfig, shard_summary, write_shards
    from img2loc.data.tables import TableError

    weights = {}
    for w in weight or []:
        name, _, val = w.partition("=")
        try:
            weights[name] = float(val)
        except ValueError:
            raise _fail(f"--weight wants SOURCE=NUMBER, got {w!r}") from None
    cfg = ShardConfig(
        max_side=max_side,
        shard_size=shard_size,
        val_frac=val_frac,
        test_frac=test_frac,
        geo_km=geo_km,
        seed=seed,
    )
    try:
        info = write_shards(list(manifests), output, cfg, workers=workers, source_weights=weights)
    except (ManifestError, TableError, ValueError) as e:
        raise _fail(str(e)) from None
    for split, s in info["splits"].items():
        typer.echo(f"{split}: {s['n']} photos in {len(s['shards'])} shard(s)")
    for line in shard_summary(info, output):
        typer.echo(line)
    typer.echo(f"wrote {output / '_info.json'}")


@data_app.command("clean")
def data_clean_cmd(
    features: Annotated[Path, typer.Argument(help="Feature folder from `img2loc embed`.")],
    manifest: Annotated[Path, typer.Option(help="The manifest the shards were written from.")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Folder for clusters.csv and contact sheets.")
    ],
    k: Annotated[int, typer.Option("-k", help="Number of k-means clusters.")] = 16,
    drop: Annotated[
        list[int] | None,
        typer.Option(help="Cluster to drop (repeatable); needs --filtered."),
    ] = None,
    filtered: Annotated[
        Path | None, typer.Option(help="Write the manifest without the dropped clusters here.")
    ] = None,
    seed: Annotated[int, typer.Option(help="k-means seed.")] = 0,
) -> None:
    """Cluster photos by their embeddings, draw each cluster, drop the ones you name.

    Run once to get OUTPUT/cluster_*.png; look at them; run again with
    --drop 3 --drop 7 --filtered clean.parquet (the clusters are reused from OUTPUT).
    """
    import pandas as pd

    from img2loc.data.clean import (
        cluster_features,
        drop_clusters,
        write_cluster_sheets,
        write_clusters,
    )
    from img2loc.data.manifest import read_manifest

    if bool(drop) != bool(filtered):
        raise _fail("--drop and --filtered go together")
    table = output / "clusters.csv"
    try:
        if drop and table.exists():
            clusters = pd.read_csv(table, dtype={"key": str})
        else:
            clusters = cluster_features(features, k, seed)
            write_clusters(clusters, table)
            sheets = write_cluster_sheets(clusters, read_manifest(manifest), output)
            typer.echo(f"wrote {table} and {len(sheets)} contact sheets in {output}")
            sizes = clusters["cluster"].value_counts().sort_index()
            typer.echo("cluster sizes: " + ", ".join(f"{c}: {n}" for c, n in sizes.items()))
        if drop and filtered:
            kept, gone = drop_clusters(manifest, clusters, drop, filtered)
            typer.echo(f"wrote {filtered}: kept {kept} photos, dropped {gone}")
    except (FileNotFoundError, ValueError) as e:
        raise _fail(str(e)) from None


@data_app.command("stats")
def data_stats_cmd(
    manifests: Annotated[
        list[Path],
        typer.Argument(help="Manifests or tables with coordinates (Parquet/CSV), shard folders."),
    ],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="PNG map to write.")] = None,
    lat_col: Annotated[str | None, typer.Option(help="Latitude column (default: auto).")] = None,
    lon_col: Annotated[str | None, typer.Option(help="Longitude column (default: auto).")] = None,
) -> None:
    """Counts per source, split, continent and country, and a map of photo locations."""
    import pandas as pd

    from img2loc.data.manifest import make_manifest
    from img2loc.data.places import reverse_geocode
    from img2loc.data.tables import TableError, read_located
    from img2loc.geo import CoordinateError

    parts = []
    try:
        for m in manifests:
            t, la_c, lo_c = read_located(m, lat_col, lon_col)
            t = t.rename(columns={la_c: "latitude", lo_c: "longitude"})
            if "source" not in t.columns:  # a plain table: name its photos after the file
                t["source"] = m.parent.name if m.stem == "locations" else m.stem
            if "key" not in t.columns and "location_id" not in t.columns:
                t["location_id"] = [f"{m}:{i}" for i in range(len(t))]  # one place a row
            parts.append(make_manifest(t))
    except (TableError, CoordinateError) as e:
        raise _fail(str(e)) from None
    df = pd.concat(parts, ignore_index=True)
    places = reverse_geocode(df["latitude"].to_numpy(), df["longitude"].to_numpy())
    df["country"] = [p["cc"] for p in places]
    df["continent"] = [p["continent"] for p in places]
    typer.echo(f"{len(df)} photos, {df['location_id'].nunique()} locations")
    for col in ("source", "split", "continent"):
        counts = df[col].replace("", "(none)").value_counts()
        typer.echo(f"by {col}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    top = df["country"].value_counts()
    typer.echo(
        f"countries: {len(top)}; top: " + ", ".join(f"{k} {v}" for k, v in top.head(15).items())
    )
    if output is not None:
        from img2loc.viz.maps import plot_points

        plot_points(
            df["latitude"].to_numpy(),
            df["longitude"].to_numpy(),
            output,
            groups=df["source"].to_numpy(),
            title=f"{len(df)} photos",
        )
        typer.echo(f"wrote {output}")


@app.command("train", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train_cmd(
    ctx: typer.Context,
    config: Annotated[
        list[Path] | None,
        typer.Option("-c", "--config", help="YAML config(s), e.g. configs/lite0.yaml."),
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(help="Continue a run: 'auto' (its last.ckpt) or a checkpoint path."),
    ] = None,
    help_all: Annotated[
        bool,
        typer.Option(
            "--help-all",
            help="Show every --model.*, --data.* and --trainer.* option (LightningCLI) and exit.",
        ),
    ] = False,
) -> None:
    """Train a model: LightningCLI options --model.*, --data.*, --trainer.* override the YAML.

    Example: img2loc train -c configs/lite0.yaml --data.shards shards/
    --model.cells cells.json --trainer.max_epochs 10

    Every option of the model, the data and Lightning's Trainer: `img2loc train
    --help-all` (with -c CONFIG: its values as defaults). The resolved config:
    `img2loc train -c CONFIG ... --print_config`.
    """
    from img2loc.training.precheck import TrainSetupError, check_train_args

    configs = list(config or [])
    extra = [*ctx.args, "--help"] if help_all else list(ctx.args)
    args = [a for c in configs for a in ("--config", str(c))] + extra
    try:
        check_train_args(configs, extra, resume)  # before seconds of torch imports
        from img2loc.training.cli import train

        ckpt_dir = train(args, resume)
    except TrainSetupError as e:
        raise _fail(str(e)) from None
    typer.echo(f"checkpoints in {ckpt_dir}")


@app.command("embed")
def embed_cmd(
    shards: Annotated[Path, typer.Argument(help="Shard folder from `img2loc data shards`.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Feature folder to write.")],
    backbone: Annotated[
        str, typer.Option(help="timm backbone with pretrained weights.")
    ] = "tf_efficientnet_lite0",
    checkpoint: Annotated[
        Path | None, typer.Option(help="Use this training checkpoint's backbone instead.")
    ] = None,
    weights: Annotated[
        Path | None, typer.Option(help="Backbone state dict file (offline weights).")
    ] = None,
    split: Annotated[
        list[str] | None, typer.Option(help="Splits to embed (default: all); repeatable.")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = 64,
    flip: Annotated[
        bool, typer.Option(help="Also store features of the mirrored image (augmentation).")
    ] = True,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 ...")] = "auto",
) -> None:
    """Frozen-backbone features of a shard set, once; heads then train in seconds.

    Example: img2loc embed shards/ -o feats/ && img2loc train -c configs/lite0-head.yaml
    --data.features feats/ --model.cells cells.json
    """
    try:
        from img2loc.models.embed import embed_shards
    except ImportError as e:
        raise _fail(f"embed needs the train extra: pip install 'img2loc[train]' ({e})") from None
    try:
        info = embed_shards(
            shards,
            output,
            backbone=backbone,
            checkpoint=str(checkpoint) if checkpoint else None,
            weights=str(weights) if weights else None,
            splits=split,
            batch_size=batch_size,
            flip=flip,
            device=device,
        )
    except (FileNotFoundError, ValueError) as e:
        raise _fail(str(e)) from None
    counts = ", ".join(f"{k} {v['n']}" for k, v in info["splits"].items())
    typer.echo(f"wrote features of {info['backbone']} to {output} ({counts})")


@app.command("eval")
def eval_cmd(
    output: Annotated[Path, typer.Option("-o", "--output", help="Report folder to write.")],
    data: Annotated[
        list[Path],
        typer.Option(
            help="Shard folder, manifest, CSV (image,latitude,longitude or "
            "IMG_ID,LAT,LON) or photo folder; repeat it, or list more after it."
        ),
    ],
    more_data: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="DATA",
            help="More data, as for --data: a shell glob after --data lands here "
            "(--data shards/*.parquet).",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Training checkpoint (.ckpt) or exported model folder "
            "(default: the bundled model)."
        ),
    ] = None,
    compare: Annotated[
        list[str] | None, typer.Option(help="Another model for the same table (repeatable).")
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="Shard split (default: test, else val).")
    ] = None,
    group_by: Annotated[
        str | None, typer.Option(help="Also score per place, e.g. location_id.")
    ] = None,
    aggregate: Annotated[
        str, typer.Option(help="Views of a place: mean (of probabilities) or product.")
    ] = "mean",
    train_data: Annotated[
        list[Path] | None,
        typer.Option(help="Training photos for the constant and nearest-neighbour baselines."),
    ] = None,
    train_split: Annotated[str, typer.Option(help="Split of --train-data shards.")] = "train",
    train_limit: Annotated[
        int, typer.Option(help="Training photos embedded for the nearest neighbour.")
    ] = 10000,
    limit: Annotated[int | None, typer.Option(help="Evaluate a random subset.")] = None,
    image_dir: Annotated[
        Path | None, typer.Option(help="Folder CSV image paths start from (default: the CSV's).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Photos per model run.")] = 32,
    workers: Annotated[int | None, typer.Option(help="Decoding threads.")] = None,
    sheet_size: Annotated[int, typer.Option(help="Photos on the worst/best sheets.")] = 24,
    seed: Annotated[int, typer.Option(help="Seed of subsets and bootstrap.")] = 0,
) -> None:
    """Score a model on photos with known locations, beside baselines; write a report.

    Example: img2loc eval --model run/checkpoints/last.ckpt --data shards/
    --train-data shards/ --group-by location_id -o report/
    """
    from img2loc.data.tables import TableError
    from img2loc.evaluation import EvalOptions, evaluate
    from img2loc.evaluation.metrics import AGGREGATES
    from img2loc.evaluation.models import ModelError
    from img2loc.evaluation.report import summary_lines

    extra = list(more_data or [])
    if any(p.suffix == ".ckpt" or (p / "model.onnx").exists() for p in extra):
        raise _fail("a model among the DATA arguments: repeat --compare for each model")
    if aggregate not in AGGREGATES:
        raise _fail(f"--aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    opts = EvalOptions(
        split=split,
        image_dir=image_dir,
        train_data=train_data or [],
        train_split=train_split,
        train_limit=train_limit,
        group_by=group_by,
        aggregate=aggregate,
        batch_size=batch_size,
        workers=workers,
        limit=limit,
        sheet_size=sheet_size,
        seed=seed,
    )
    try:
        rep = evaluate(model, [*data, *extra], output, compare or [], opts)
    except (ModelError, TableError) as e:
        raise _fail(str(e)) from None
    for line in summary_lines(rep):
        typer.echo(line)
    typer.echo(f"wrote {output / 'report.md'} ({', '.join(rep['files'][2:])})")


@app.command("predict")
def predict_cmd(
    paths: Annotated[
        list[str],
        typer.Argument(help="Photos, folders (recursive), globs, http(s) URLs, or - for stdin."),
    ],
    model: Annotated[
        Path | None,
        typer.Option(help="Model folder from `img2loc export` (default: the bundled model)."),
    ] = None,
    variant: Annotated[
        str, typer.Option(help="auto (fp32 if present), fp32 or browser (compressed).")
    ] = "auto",
    top_k: Annotated[int, typer.Option(help="Most probable cells listed per photo.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON array.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    decode: Annotated[
        str,
        typer.Option(help="Decoding rule: score (GeoGuessr score-optimal), hierarchical or seed."),
    ] = "score",
    batch_size: Annotated[int, typer.Option(help="Photos per model run.")] = 32,
    views: Annotated[
        bool,
        typer.Option(
            "--views",
            help="All the photos are views of ONE place: combine them into one answer.",
        ),
    ] = False,
    aggregate: Annotated[
        str,
        typer.Option(help="Combining views: mean (of probabilities) or product (geometric mean)."),
    ] = "mean",
    pano_views: Annotated[
        int,
        typer.Option(help="Views rendered from a 360° panorama (0: treat it as a plain photo)."),
    ] = 4,
) -> None:
    """Guess where photos were taken (offline; EXIF GPS, when present, gives the error).

    `-` reads stdin: image data, or paths/URLs one per line (e.g. from `find`).

    `--views a.jpg b.jpg c.jpg` answers once for one place seen from several views.
    A 360° equirectangular panorama is rendered into --pano-views perspective views
    and answered as one multi-view place.

    An unreadable photo gets an error and never stops the run.

    Exit status: 1 only when every input failed.
    """
    import sys

    from img2loc.geo.views import AGGREGATES
    from img2loc.inference.inputs import expand_inputs
    from img2loc.inference.output import write_predictions
    from img2loc.inference.predictor import ModelError, Predictor

    if as_json and as_csv:
        raise _fail("choose one of --json and --csv")
    if aggregate not in AGGREGATES:
        raise _fail(f"--aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    try:
        predictor = Predictor.load(model, variant, batch_size=batch_size, pano_views=pano_views)
        sources = expand_inputs(paths, sys.stdin.buffer)
        if views:
            preds = iter([predictor.predict_views(sources, top_k, decode, aggregate)])
        else:
            preds = predictor.predict_iter(sources, top_k, decode, aggregate)
        fmt = "json" if as_json else "csv" if as_csv else "table"
        summary = write_predictions(preds, sys.stdout, fmt, top_k, decode)
    except (ModelError, ValueError) as e:
        raise _fail(str(e)) from None
    if fmt != "table" and summary.failed:
        typer.echo(summary.line(), err=True)
    if summary.failed == summary.n:
        raise typer.Exit(code=1)


@app.command("geoguessr")
def geoguessr_cmd(
    data: Annotated[
        list[Path],
        typer.Option(
            help="Held-out photos: shard folder (test, else val split), manifest, or CSV "
            "(image,latitude,longitude[,location_id]); repeatable."
        ),
    ],
    games: Annotated[int, typer.Option(help="Games to simulate.")] = 100,
    rounds: Annotated[int, typer.Option(help="Rounds (places) per game.")] = 5,
    views: Annotated[
        int, typer.Option(help="Views of a place combined by the multi-view player (at most).")
    ] = 4,
    seed: Annotated[int, typer.Option(help="Seed of games, views and bootstrap.")] = 0,
    model: Annotated[
        str | None,
        typer.Option(help="Exported model folder or checkpoint (default: the bundled model)."),
    ] = None,
    aggregate: Annotated[
        str, typer.Option(help="Combining views: mean (of probabilities) or product.")
    ] = "mean",
    pano_views: Annotated[
        int, typer.Option(help="Views rendered from a 360° panorama (0: plain photo).")
    ] = 4,
    map_size_km: Annotated[
        float, typer.Option(help="Map size for the score (world map: 14927 km).")
    ] = 14927.0,
    group_by: Annotated[
        str, typer.Option(help="Column naming the place of each view.")
    ] = "location_id",
    split: Annotated[
        str | None, typer.Option(help="Shard split (default: test, else val).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the results as JSON.")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Photos per model run.")] = 32,
    workers: Annotated[int | None, typer.Option(help="Decoding threads.")] = None,
) -> None:
    """Simulated GeoGuessr games: argmax vs score-optimal guesses, 1 vs N views.

    Each game is --rounds places with known locations (views grouped by
    --group-by); every player is scored on the same games with GeoGuessr's
    5000 * exp(-d / 1492.7 km). Prints mean game totals (0-25,000) with 95%
    bootstrap intervals and paired differences.

    Example: img2loc geoguessr --data ../shared/data/streetview-world/locations.csv
    --games 100 --views 4 -o geoguessr.json
    """
    import json

    from img2loc.data.tables import TableError
    from img2loc.evaluation.geoguessr import GameOptions, format_results, run_games
    from img2loc.evaluation.models import ModelError, load_model
    from img2loc.geo.views import AGGREGATES

    if aggregate not in AGGREGATES:
        raise _fail(f"--aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    opts = GameOptions(
        games=games,
        rounds=rounds,
        views=views,
        seed=seed,
        aggregate=aggregate,
        pano_views=pano_views,
        map_size_km=map_size_km,
        split=split,
        group_by=group_by,
        batch_size=batch_size,
        workers=workers,
    )
    try:
        res = run_games(load_model(model), data, opts, log=lambda m: typer.echo(m, err=True))
    except (ModelError, TableError, ValueError) as e:
        raise _fail(str(e)) from None
    for line in format_results(res):
        typer.echo(line)
    if output is not None:
        from img2loc.geo.atomic import atomic_write_text

        atomic_write_text(output, json.dumps(res, indent=1))
        typer.echo(f"wrote {output}")


@app.command("export")
def export_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Training checkpoint (.ckpt).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Model folder to write.")],
    data: Annotated[
        Path | None,
        typer.Option(help="Dev photos for the parity checks: shard folder or manifest/CSV."),
    ] = None,
    limit: Annotated[int, typer.Option(help="Dev photos used at most.")] = 256,
) -> None:
    """Export a checkpoint to a model folder: ONNX fp32 + browser model, cells, card.

    Checks: onnx.checker, ONNX Runtime vs PyTorch <= 1e-4, browser model vs fp32.

    The folder is written atomically; a failed check writes nothing and exits non-zero.
    """
    try:
        from img2loc.export.exporter import ExportError, export_checkpoint
    except ImportError as e:
        raise _fail(f"export needs the train extra: pip install 'img2loc[train]' ({e})") from None
    try:
        export_checkpoint(checkpoint, output, data=data, limit=limit, log=typer.echo)
    except ExportError as e:
        raise _fail(str(e)) from None


@app.command("demo")
def demo_cmd(
    folder: Annotated[
        Path | None,
        typer.Argument(
            help="Folder with photos and a locations.csv (default: the bundled examples)."
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(help="Model folder from `img2loc export` (default: the bundled model)."),
    ] = None,
    decode: Annotated[
        str, typer.Option(help="Decoding rule: score (score-optimal), hierarchical or seed.")
    ] = "score",
    limit: Annotated[int | None, typer.Option(help="Use the first N photos only.")] = None,
) -> None:
    """Guess where the example photos were taken and compare with the truth (offline).

    The bundled examples are CC BY-SA 4.0 street photos (Global Streetscapes /
    Mapillary; see assets/examples/ATTRIBUTION.md).
    """
    from img2loc.inference.demo import EXAMPLES_DIR, demo_lines, run_demo
    from img2loc.inference.predictor import ModelError, Predictor

    try:
        predictor = Predictor.load(model)
        rows = run_demo(predictor, folder or EXAMPLES_DIR, decode, limit)
    except (ModelError, ValueError, FileNotFoundError) as e:
        raise _fail(str(e)) from None
    for line in demo_lines(rows):
        typer.echo(line)
    typer.echo("\nYour own photos: img2loc predict PHOTO... | web app (camera, map): img2loc serve")


@app.command("serve")
def serve_cmd(
    model: Annotated[
        Path | None,
        typer.Option(help="Model folder from `img2loc export` (default: the bundled model)."),
    ] = None,
    host: Annotated[
        str,
        typer.Option(help="Address to listen on; 0.0.0.0 opens it to your network (with --https)."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 8000,
    game: Annotated[
        Path | None,
        typer.Option(
            "--game",
            "--game-data",
            help="Photos for the game: a CSV/Parquet with image,latitude,longitude, or a "
            "folder of photos with EXIF GPS (default: the bundled examples).",
        ),
    ] = None,
    https: Annotated[
        bool,
        typer.Option(
            "--https",
            help="Serve HTTPS with a certificate made on this machine (phones give the "
            "camera only over https); prints a QR code of the address.",
        ),
    ] = False,
    export_site: Annotated[
        Path | None,
        typer.Option(
            help="Instead of serving, write the app + model as a static site to this folder."
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Log every request.")] = False,
) -> None:
    """Serve the web app (camera, upload, map, game): inference runs in the browser.

    On a phone: `img2loc serve --https --host 0.0.0.0`, then scan the QR code (see the
    README, "On a phone").
    """
    from img2loc.inference.predictor import DEFAULT_MODEL_DIR
    from img2loc.server import ServeError, make_server, write_site

    model_dir = model if model is not None else DEFAULT_MODEL_DIR
    if model is None and not DEFAULT_MODEL_DIR.is_dir():
        raise _fail(
            f"no bundled model in this installation ({DEFAULT_MODEL_DIR} is missing); "
            "pass --model DIR (a folder written by `img2loc export`)"
        )
    loopback = host in ("127.0.0.1", "localhost", "::1")
    tls = None
    lan = None
    try:
        if export_site is not None:
            write_site(export_site, model_dir, game_data=game)
            typer.echo(
                f"wrote {export_site}: upload it to any static host (the headers for "
                f'threads are in {export_site}/_headers; see the README, "Static site")'
            )
            return
        if https:
            from img2loc.server.tls import TlsError, ensure_certificate, lan_address

            lan = None if loopback else (lan_address() if host in ("0.0.0.0", "::") else host)
            try:
                tls = ensure_certificate([lan] if lan else [])
            except TlsError as e:
                raise _fail(str(e)) from None
        server = make_server(model_dir, host, port, game_data=game, quiet=not verbose, tls=tls)
    except ServeError as e:
        raise _fail(str(e)) from None
    bound_host, bound_port = server.server_address[:2]
    scheme = "https" if https else "http"
    shown = "localhost" if bound_host in ("127.0.0.1", "::1") else bound_host
    typer.echo(f"img2loc web app on {scheme}://{shown}:{bound_port}/  (Ctrl+C to stop)")
    if tls is not None:
        from img2loc.server.tls import print_qr

        if lan:
            url = f"https://{lan}:{bound_port}/"
            typer.echo(f"\nOn a phone on this network, open {url} (scan this code):")
            print_qr(url)
            typer.echo(
                "The phone warns about the certificate (it was made on this computer): "
                "accept it to go on. To install the app and use it offline, trust the "
                f"certificate authority on the phone: open https://{lan}:{bound_port}/img2loc-ca.crt"
                f' (SHA-256 {tls.fingerprint()[:23]}…); see the README, "On a phone".'
            )
        elif loopback:
            typer.echo(
                "note: only this computer can reach it; add --host 0.0.0.0 for a phone", err=True
            )
        else:
            typer.echo(
                "note: no local network address found; is this computer on a network?", err=True
            )
    elif not loopback:
        typer.echo(
            "note: phones give the camera (and threads) only over https: add --https",
            err=True,
        )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("stopped")
    finally:
        server.server_close()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
