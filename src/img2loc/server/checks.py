"""What ``img2loc serve`` checks before it starts: the model folder and the built app."""

from __future__ import annotations

import json
from pathlib import Path

from img2loc.data.io import portable_paths
from img2loc.errors import Img2locError
from img2loc.inference import model_folder

#: The built web app inside the package.
STATIC_DIR = Path(__file__).resolve().parent / "static"
#: Files of a model folder that the browser may fetch.
MODEL_FILES = model_folder.BROWSER_FILES


class ServeError(Img2locError, ValueError):
    """The server cannot start as asked; the message says how to fix it."""


def check_model_dir(model_dir: Path) -> Path:
    """A model folder the app can load; raises :class:`ServeError` saying what is missing."""
    if not model_dir.is_dir():
        raise ServeError(f"model folder {model_dir} not found; write one with `img2loc export`")
    missing = model_folder.missing_files(model_dir)
    if missing:
        raise ServeError(
            f"{model_dir} lacks {', '.join(missing)}; is it a model folder written by "
            "`img2loc export`?"
        )
    return model_dir.resolve()


def check_static_dir(static_dir: Path) -> Path:
    if not (static_dir / "index.html").is_file():
        raise ServeError(
            f"the web app is not built ({static_dir / 'index.html'} is missing); "
            "run `make web` (needs npm) or reinstall img2loc"
        )
    return static_dir.resolve()


def portable_export_json(path: Path) -> bytes | None:
    """A model folder's export.json without local absolute paths (older exports had them)."""
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return json.dumps(portable_paths(info), indent=2).encode()
