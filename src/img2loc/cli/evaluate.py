"""`img2loc eval`: score a model on located photos and write a report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from img2loc.cli.common import (
    AggregateOpt,
    BatchSizeOpt,
    ModelOpt,
    SplitOpt,
    WorkersOpt,
    fail,
)


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
    model: ModelOpt = None,
    compare: Annotated[
        list[str] | None, typer.Option(help="Another model for the same table (repeatable).")
    ] = None,
    split: SplitOpt = None,
    group_by: Annotated[
        str | None, typer.Option(help="Also score per place, e.g. location_id.")
    ] = None,
    aggregate: AggregateOpt = "mean",
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
    batch_size: BatchSizeOpt = 32,
    workers: WorkersOpt = None,
    sheet_size: Annotated[int, typer.Option(help="Photos on the worst/best sheets.")] = 24,
    seed: Annotated[int, typer.Option(help="Seed of subsets and bootstrap.")] = 0,
) -> None:
    """Score a model on photos with known locations, beside baselines; write a report.

    Example: img2loc eval --model run/checkpoints/last.ckpt --data shards/
    --train-data shards/ --group-by location_id -o report/
    """
    from img2loc.evaluation import EvalOptions, evaluate
    from img2loc.evaluation.report import summary_lines
    from img2loc.inference.model_folder import has_model

    extra = list(more_data or [])
    if any(p.suffix == ".ckpt" or has_model(p) for p in extra):
        raise fail("a model among the DATA arguments: repeat --compare for each model")
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
    rep = evaluate(model, [*data, *extra], output, compare or [], opts)
    for line in summary_lines(rep):
        typer.echo(line)
    typer.echo(f"wrote {output / 'report.md'} ({', '.join(rep['files'][2:])})")
