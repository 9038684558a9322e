"""The `img2loc` command line. A thin shell: heavy imports happen inside commands.

One module per command group; this one builds the app from them, in the order of
`img2loc --help`, and is the console-script entry point (`img2loc.cli:main`).
"""

from __future__ import annotations

from typing import Annotated

import typer
from typer.core import TyperOption

from img2loc import __version__
from img2loc.cli import evaluate, export, geoguessr, predict, serve, train
from img2loc.cli.cells import cells_app
from img2loc.cli.common import CatchingGroup
from img2loc.cli.data import data_app

# typer 0.29's rich help prints a type after every option, flags included (`--json <bool>`,
# `--help <bool>`), as if they took a value. A flag takes none: print no type for it.
_display_type = TyperOption.display_type_rich


def _no_type_for_flags(self: TyperOption, ctx: typer.Context) -> str | None:
    return None if self.is_flag else _display_type(self, ctx)


TyperOption.display_type_rich = _no_type_for_flags  # type: ignore[method-assign,assignment]

app = typer.Typer(
    help="img2loc: tell where on Earth a photo was taken, from the pixels alone.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=CatchingGroup,
)
app.add_typer(cells_app, name="cells")
app.add_typer(data_app, name="data")


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


app.command("train", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
    train.train_cmd
)
app.command("distill", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
    train.distill_cmd
)
app.command("embed")(train.embed_cmd)
app.command("eval")(evaluate.eval_cmd)
app.command("predict")(predict.predict_cmd)
app.command("geoguessr")(geoguessr.geoguessr_cmd)
app.command("export")(export.export_cmd)
app.command("demo")(predict.demo_cmd)
app.command("serve")(serve.serve_cmd)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
