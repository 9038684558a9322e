"""`img2loc serve`: the web app, or a static site of it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from img2loc.cli.common import ModelDirOpt, fail


def serve_cmd(
    model: ModelDirOpt = None,
    host: Annotated[
        str,
        typer.Option(help="Address to listen on; 0.0.0.0 opens it to your network (with --https)."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 8000,
    game: Annotated[
        Path | None,
        typer.Option(
            "--game",
            "--game-data",
            help="Photos for the game: a CSV/Parquet with image,latitude,longitude, or a "
            "folder of photos with EXIF GPS (default: the bundled examples).",
        ),
    ] = None,
    https: Annotated[
        bool,
        typer.Option(
            "--https",
            help="Serve HTTPS with a certificate made on this machine (phones give the "
            "camera only over https); prints a QR code of the address.",
        ),
    ] = False,
    export_site: Annotated[
        Path | None,
        typer.Option(
            help="Instead of serving, write the app + model as a static site to this folder."
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Log every request.")] = False,
) -> None:
    """Serve the web app (camera, upload, map, game): inference runs in the browser.

    On a phone: `img2loc serve --https --host 0.0.0.0`, then scan the QR code (see the
    README, "On a phone").
    """
    from img2loc.inference.predictor import DEFAULT_MODEL_DIR
    from img2loc.server import make_server, write_site

    model_dir = model if model is not None else DEFAULT_MODEL_DIR
    if model is None and not DEFAULT_MODEL_DIR.is_dir():
        raise fail(
            f"no bundled model in this installation ({DEFAULT_MODEL_DIR} is missing); "
            "pass --model DIR (a folder written by `img2loc export`)"
        )
    loopback = host in ("127.0.0.1", "localhost", "::1")
    tls = None
    lan = None
    if export_site is not None:
        write_site(export_site, model_dir, game_data=game)
        typer.echo(
            f"wrote {export_site}: upload it to any static host (the headers for "
            f'threads are in {export_site}/_headers; see the README, "Static site")'
        )
        return
    if https:
        from img2loc.server.tls import ensure_certificate, lan_address

        lan = None if loopback else (lan_address() if host in ("0.0.0.0", "::") else host)
        tls = ensure_certificate([lan] if lan else [])
    server = make_server(model_dir, host, port, game_data=game, quiet=not verbose, tls=tls)
    bound_host, bound_port = server.server_address[:2]
    scheme = "https" if https else "http"
    if isinstance(bound_host, bytes):  # a Unix socket address, never for a TCP server
        bound_host = bound_host.decode()
    shown = "localhost" if bound_host in ("127.0.0.1", "::1") else bound_host
    typer.echo(f"img2loc web app on {scheme}://{shown}:{bound_port}/  (Ctrl+C to stop)")
    if tls is not None:
        from img2loc.server.tls import print_qr

        if lan:
            url = f"https://{lan}:{bound_port}/"
            typer.echo(f"\nOn a phone on this network, open {url} (scan this code):")
            print_qr(url)
            typer.echo(
                "The phone warns about the certificate (it was made on this computer): "
                "accept it to go on. To install the app and use it offline, trust the "
                f"certificate authority on the phone: open https://{lan}:{bound_port}/img2loc-ca.crt"
                f' (SHA-256 {tls.fingerprint()[:23]}…); see the README, "On a phone".'
            )
        elif loopback:
            typer.echo(
                "note: only this computer can reach it; add --host 0.0.0.0 for a phone", err=True
            )
        else:
            typer.echo(
                "note: no local network address found; is this computer on a network?", err=True
            )
    elif not loopback:
        typer.echo(
            "note: phones give the camera (and threads) only over https: add --https",
            err=True,
        )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("stopped")
    finally:
        server.server_close()
