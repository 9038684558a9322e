"""`img2loc serve`: the web app and a model folder over HTTP, from the standard library.

The app (built from ``web/`` into ``static/``) runs the model in the browser;
the server only hands out files. See :mod:`img2loc.server.app` (the HTTP handler),
:mod:`~img2loc.server.game` (the game's photos) and :mod:`~img2loc.server.site` (a
static site for any host).
"""

from img2loc.server.app import CSP, SiteConfig, make_server
from img2loc.server.checks import STATIC_DIR, ServeError
from img2loc.server.game import GameData, load_game_data
from img2loc.server.site import write_site

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
