"""`img2loc export`: a checkpoint to a model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from img2loc.cli.common import fail


def export_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Training checkpoint (.ckpt).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Model folder to write.")],
    data: Annotated[
        Path | None,
        typer.Option(help="Dev photos for the parity checks: shard folder or manifest/CSV."),
    ] = None,
    limit: Annotated[int, typer.Option(help="Dev photos used at most.")] = 256,
    fallback: Annotated[
        bool | None,
        typer.Option(
            "--fallback/--no-fallback",
            help="Fit the in-domain score on --data's train/val shards, so photos unlike the "
            "training photos are answered from the photo prior [default: when --data is the "
            "training shards and the cells carry a prior].",
            show_default=False,
        ),
    ] = None,
    prototypes: Annotated[
        int, typer.Option(min=1, help="With the fallback: prototypes of the training features.")
    ] = 256,
) -> None:
    """Export a checkpoint to a model folder: ONNX fp32 + browser model, cells, card.

    Checks: onnx.checker, ONNX Runtime vs PyTorch <= 1e-4, browser model vs fp32.

    With the fallback (the default when --data is the training shards and the cells
    carry a photo prior) the model also gives each photo an in-domain weight: photos
    unlike the training photos are answered from where photos are usually taken.

    The folder is written atomically; a failed check writes nothing and exits non-zero.
    """
    try:
        from img2loc.export.exporter import export_checkpoint
    except ImportError as e:
        raise fail(f"export needs the train extra: pip install 'img2loc[train]' ({e})") from None
    export_checkpoint(
        checkpoint,
        output,
        data=data,
        limit=limit,
        fallback=fallback,
        prototypes=prototypes,
        log=typer.echo,
    )
