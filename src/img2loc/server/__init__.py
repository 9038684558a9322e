"""`img2loc serve`: the web app and a model folder over HTTP, from the standard library.

The app (built from ``web/`` into ``static/``) runs the model in the browser;
the server only hands out files. See :mod:`img2loc.server.app`.
"""

from img2loc.server.app import (
    CSP,
    STATIC_DIR,
    GameData,
    ServeError,
    SiteConfig,
    load_game_data,
    make_server,
    write_site,
)

__all__ = [
    "CSP",
    "STATIC_DIR",
    "GameData",
    "ServeError",
    "SiteConfig",
    "load_game_data",
    "make_server",
    "write_site",
]
