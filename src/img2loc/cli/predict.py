"""`img2loc predict` and `img2loc demo`: guess where photos were taken, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from img2loc.cli.common import (
    AggregateOpt,
    BatchSizeOpt,
    DecodeOpt,
    ModelDirOpt,
    PanoViewsOpt,
    choice,
    fail,
)


def predict_cmd(
    paths: Annotated[
        list[str],
        typer.Argument(help="Photos, folders (recursive), globs, http(s) URLs, or - for stdin."),
    ],
    model: ModelDirOpt = None,
    variant: Annotated[
        str,
        typer.Option(
            help="auto (fp32 if present), fp32 or browser (compressed).",
            parser=choice("img2loc.inference.predictor:VARIANTS", "auto"),
        ),
    ] = "auto",
    top_k: Annotated[int, typer.Option(help="Most probable cells listed per photo.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON array.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    decode: DecodeOpt = "score",
    batch_size: BatchSizeOpt = 32,
    views: Annotated[
        bool,
        typer.Option(
            "--views",
            help="All the photos are views of ONE place: combine them into one answer.",
        ),
    ] = False,
    aggregate: AggregateOpt = "mean",
    pano_views: PanoViewsOpt = 4,
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

    from img2loc.inference.inputs import expand_inputs
    from img2loc.inference.output import write_predictions
    from img2loc.inference.predictor import ModelError, Predictor

    if as_json and as_csv:
        raise fail("choose one of --json and --csv")
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
        raise fail(str(e)) from None
    if fmt != "table" and summary.failed:
        typer.echo(summary.line(), err=True)
    if summary.failed == summary.n:
        raise typer.Exit(code=1)


def demo_cmd(
    folder: Annotated[
        Path | None,
        typer.Argument(
            help="Folder with photos and a locations.csv (default: the bundled examples)."
        ),
    ] = None,
    model: ModelDirOpt = None,
    decode: DecodeOpt = "score",
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
        raise fail(str(e)) from None
    for line in demo_lines(rows):
        typer.echo(line)
    typer.echo("\nYour own photos: img2loc predict PHOTO... | web app (camera, map): img2loc serve")
