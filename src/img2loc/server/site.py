"""``img2loc serve --export``: the app, the model and the game as a static site."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from img2loc.files import dir_mode
from img2loc.inference import model_folder
from img2loc.inference.demo import EXAMPLES_DIR
from img2loc.server import checks
from img2loc.server.app import SECURITY_HEADERS
from img2loc.server.game import default_game, load_game_data


def write_site(
    out: Path,
    model_dir: Path,
    *,
    static_dir: Path = checks.STATIC_DIR,
    examples_dir: Path | None = EXAMPLES_DIR,
    game_data: Path | None = None,
) -> Path:
    """Write the app, the model, the examples and the game as a static site for any host.

    Also writes ``_headers`` (Netlify / Cloudflare Pages syntax) with the COOP/COEP and
    CSP headers. Hosts that send no such headers still work: the page then runs one
    thread on the first visit (and says so), and its service worker adds the headers
    from the second visit on.
    """
    static_dir = checks.check_static_dir(static_dir)
    model_dir = checks.check_model_dir(model_dir)
    if out.exists() and any(out.iterdir()):
        raise checks.ServeError(f"{out} exists and is not empty; choose an empty or new folder")
    examples = examples_dir if examples_dir is not None and examples_dir.is_dir() else None
    game = default_game(examples) if game_data is None else load_game_data(game_data)
    if game is not None:
        game.report()
    # Built beside ``out`` and renamed into place: a failed or killed build leaves no
    # half-written site (only a hidden .NAME.tmp-* folder, never ``out`` itself).
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        tmp.chmod(dir_mode())  # mkdtemp makes it private; a site is meant to be served
        shutil.copytree(static_dir, tmp, dirs_exist_ok=True)
        (tmp / "model").mkdir()
        for name in sorted(checks.MODEL_FILES):
            if (model_dir / name).is_file():
                if name == model_folder.EXPORT_FILE:
                    data = checks.portable_export_json(model_dir / name)
                    if data is not None:
                        (tmp / "model" / name).write_bytes(data)
                    continue
                shutil.copy2(model_dir / name, tmp / "model" / name)
        if examples is not None:
            shutil.copytree(examples, tmp / "examples")
        if game is not None:
            (tmp / "game" / "img").mkdir(parents=True)
            (tmp / "game" / "locations.csv").write_bytes(game.csv)
            for name, src in game.files.items():
                shutil.copy2(src, tmp / "game" / name)
        lines = ["/*"] + [f"  {k}: {v}" for k, v in SECURITY_HEADERS.items()]
        lines += ["/assets/*", "  Cache-Control: max-age=31536000, immutable"]
        (tmp / "_headers").write_text("\n".join(lines) + "\n")
        if out.exists():
            out.rmdir()  # checked empty above
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
