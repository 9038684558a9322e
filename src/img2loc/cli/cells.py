"""`img2loc cells`: build and draw adaptive S2 cell sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from img2loc.cli.common import fail

cells_app = typer.Typer(help="Build and inspect adaptive S2 cell sets.", no_args_is_help=True)


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
        raise fail(str(e)) from None
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
        raise fail(str(e)) from None
    plot_cells(cells, output)
    typer.echo(f"wrote {output}")
