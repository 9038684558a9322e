"""What every command module shares: the one way a command fails."""

from __future__ import annotations

import typer


def fail(msg: str) -> typer.Exit:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)
