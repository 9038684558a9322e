"""`img2loc geoguessr`: simulated GeoGuessr games."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from img2loc.cli.common import (
    AggregateOpt,
    BatchSizeOpt,
    ModelOpt,
    PanoViewsOpt,
    SplitOpt,
    WorkersOpt,
    fail,
)


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
    model: ModelOpt = None,
    aggregate: AggregateOpt = "mean",
    pano_views: PanoViewsOpt = 4,
    map_size_km: Annotated[
        float, typer.Option(help="Map size for the score (world map: 14927 km).")
    ] = 14927.0,
    group_by: Annotated[
        str, typer.Option(help="Column naming the place of each view.")
    ] = "location_id",
    split: SplitOpt = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the results as JSON.")
    ] = None,
    batch_size: BatchSizeOpt = 32,
    workers: WorkersOpt = None,
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
        raise fail(str(e)) from None
    for line in format_results(res):
        typer.echo(line)
    if output is not None:
        from img2loc.geo.atomic import atomic_write_text

        atomic_write_text(output, json.dumps(res, indent=1))
        typer.echo(f"wrote {output}")
