"""`img2loc data`: download, shard, clean and count datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from img2loc.cli.common import choice, fail
from img2loc.cli.imports import import_app, write_import

data_app = typer.Typer(
    help="Build datasets: import photos, write shards, statistics.", no_args_is_help=True
)
data_app.add_typer(import_app, name="import")


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
        str,
        typer.Option(
            help="multiprocessing, pyspark or ray (img2dataset's distributors).",
            parser=choice("img2loc.data.download:DISTRIBUTORS"),
        ),
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
        raise fail(str(e)) from None
    write_import(df, report, manifest_out)


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
            raise fail(f"--weight wants SOURCE=NUMBER, got {w!r}") from None
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
        raise fail(str(e)) from None
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

    from img2loc.data.clean import cluster_features, drop_clusters, write_clusters
    from img2loc.data.manifest import read_manifest
    from img2loc.viz.clusters import write_cluster_sheets

    if bool(drop) != bool(filtered):
        raise fail("--drop and --filtered go together")
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
        raise fail(str(e)) from None


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
    from img2loc.data.stats import dataset_stats, read_photos

    df = read_photos(manifests, lat_col, lon_col)
    stats = dataset_stats(df)
    typer.echo(f"{stats.n_photos} photos, {stats.n_locations} locations")
    for col, counts in stats.by.items():
        typer.echo(f"by {col}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    top = list(stats.countries.items())
    typer.echo(f"countries: {len(top)}; top: " + ", ".join(f"{k} {v}" for k, v in top[:15]))
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
