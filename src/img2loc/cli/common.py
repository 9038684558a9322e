"""What every command module shares: the one way a command fails, the one place user errors
are caught, and choices checked against the library's own lists."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from img2loc.errors import Img2locError


def fail(msg: str) -> typer.Exit:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


class CatchingGroup(TyperGroup):
    """The root command group: every command runs inside its `invoke`, so this is the one
    place a user's mistake (`Img2locError`) becomes `error: <message>` and exit status 2.
    Anything else is a bug and keeps its traceback."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except Img2locError as e:
            raise fail(str(e)) from None


def choice(where: str, *extra: str) -> Callable[[str], str]:
    """A parser accepting only the values of a library tuple/dict, named `module:NAME`
    (its keys for a dict), and `extra` values the command itself handles.

    The list is the library's own, read when the option is parsed: importing it when the
    CLI is imported would load numpy/scipy (or onnxruntime) for `img2loc --help`.
    """
    module, _, name = where.partition(":")

    def parse(value: str) -> str:
        allowed = (*getattr(importlib.import_module(module), name), *extra)
        if value not in allowed:
            raise typer.BadParameter(f"must be one of {', '.join(allowed)}, got {value!r}")
        return value

    return parse


# Options several commands share: one wording, one list of choices.
ModelDirOpt = Annotated[
    Path | None,
    typer.Option(help="Model folder from `img2loc export` (default: the bundled model)."),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        help="Training checkpoint (.ckpt) or exported model folder (default: the bundled model)."
    ),
]
DecodeOpt = Annotated[
    str,
    typer.Option(
        help="Decoding rule: score (GeoGuessr score-optimal), hierarchical or seed.",
        parser=choice("img2loc.geo.decode:DECODERS"),
    ),
]
AggregateOpt = Annotated[
    str,
    typer.Option(
        help="Combining views of a place: mean (of probabilities) or product (geometric mean).",
        parser=choice("img2loc.geo.views:AGGREGATES"),
    ),
]
PanoViewsOpt = Annotated[
    int, typer.Option(help="Views rendered from a 360° panorama (0: treat it as a plain photo).")
]
SplitOpt = Annotated[
    str | None,
    typer.Option(help="Shard split (default: test, else val); several with commas: val,test."),
]
BatchSizeOpt = Annotated[int, typer.Option(help="Photos per model run.")]
WorkersOpt = Annotated[int | None, typer.Option(help="Decoding threads.")]
