"""The `img2loc` command line. A thin shell: heavy imports happen inside commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from img2loc import __version__

app = typer.Typer(
    help="img2loc: tell where on Earth a photo was taken, from the pixels alone.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
cells_app = typer.Typer(help="Build and inspect adaptive S2 cell sets.", no_args_is_help=True)
app.add_typer(cells_app, name="cells")


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
    typer.echo("oracle (finest-cell centre): " + _fmt_metrics(oracle_metrics(cells, lat, lon)))
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


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
