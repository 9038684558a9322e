"""End-to-end: the real `img2loc` console script, run as a user would."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run


@pytest.mark.parametrize("cmd", [[], ["cells"], ["cells", "build"], ["cells", "show"]])
def test_help_for_every_command(cmd):
    out = run(*cmd, "--help").stdout
    assert "Usage" in out


def test_version():
    assert run("--version").stdout.startswith("img2loc ")


def test_cells_build_and_show_on_shared_streetview(shared_streetview, tmp_path):
    out = tmp_path / "cells.json"
    proc = run(
        "cells",
        "build",
        *map(str, shared_streetview),
        "--min-samples",
        "10",
        "--max-samples",
        "60",
        "-o",
        str(out),
    )
    assert "8825 photos (2402 location groups counted)" in proc.stdout
    assert "oracle" in proc.stdout and "2500 km" in proc.stdout
    data = json.loads(out.read_text())
    assert data["format"] == "img2loc-cellset" and len(data["cells"]) > 50
    png = tmp_path / "cells.png"
    run("cells", "show", str(out), "-o", str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_cells_build_with_a_photo_prior(shared_data, tmp_path):
    """The Croatia set alone, with the MP-16 prior: cells where people take photos."""
    out = tmp_path / "cells.json"
    proc = run(
        "cells",
        "build",
        str(shared_data / "streetview-croatia" / "locations.csv"),
        "--min-samples",
        "10",
        "--max-samples",
        "60",
        "--prior",
        str(shared_data / "photo-locations-mp16" / "coordinates_100K.csv"),
        "-o",
        str(out),
    )
    assert "prior: 100000 points" in proc.stdout and "cells added" in proc.stdout
    cells = json.loads(out.read_text())["cells"]
    assert all("prior" in c for c in cells)
    added = [c for c in cells if c["count"] == 0]
    assert added and sum(c["prior"] for c in cells if c["level"] == 2) > 0.95
    # The Croatian cells' guess points lie in Croatia, not at a cell centre in Tunisia.
    own = [c for c in cells if c["count"] > 0]
    assert all(42 < c["lat"] < 47 and 13 < c["lon"] < 20 for c in own)


def test_cells_build_bad_input_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("image,latitude,longitude\na.jpg,12,200\n")
    proc = run("cells", "build", str(bad), "-o", str(tmp_path / "c.json"), check=False)
    assert proc.returncode == 2
    assert "bad.csv:2" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "c.json").exists()
    proc = run("cells", "show", str(tmp_path / "nope.json"), check=False)
    assert proc.returncode == 2 and "cells build" in proc.stderr


@pytest.mark.parametrize("cmd", [["predict"], ["eval"], ["train"], ["cells", "build"], []])
def test_flags_take_no_value_in_help(cmd):
    """A flag (--json, --views, --help) is shown without a value type; options keep theirs."""
    out = run(*cmd, "--help", check=False).stdout
    assert "--help" in out and "<bool>" not in out
    if cmd == ["predict"]:
        assert "<int>" in out  # --top-k still says what it takes


def test_eval_help_names_its_positional_argument():
    out = run("eval", "--help").stdout
    assert "More DATA." not in out and "[DATA]..." in out and "shell glob" in out


def test_import_of_nothing_fails_in_one_line(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a photo")
    proc = run("data", "import", "folder", str(folder), "-o", str(tmp_path / "m.parquet"),
               check=False)  # fmt: skip
    assert proc.returncode == 2 and "no photo imported" in proc.stderr
    errors = [x for x in proc.stderr.splitlines() if x.strip() and "reading EXIF" not in x]
    assert len(errors) == 1 and errors[0].startswith("error: "), proc.stderr  # progress aside
    assert not (tmp_path / "m.parquet").exists()
    assert "not an image type" in (tmp_path / "m.skipped.csv").read_text()
    (tmp_path / "t.csv").write_text("image,latitude,longitude\nmissing.jpg,1,2\n")
    proc = run("data", "import", "csv", str(tmp_path / "t.csv"), "-o", str(tmp_path / "c.parquet"),
               check=False)  # fmt: skip
    assert proc.returncode == 2 and "file not found" in proc.stderr
    assert not (tmp_path / "c.parquet").exists()


def test_readme_train_commands_name_their_run_folder():
    """Every complete `img2loc train` command in the README says where its run goes."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    commands = re.findall(r"^img2loc train .*?(?<!\\)$", readme, flags=re.M | re.S)
    complete = [c for c in commands if " ... " not in c]
    assert len(complete) >= 3
    for c in complete:
        assert "--trainer.default_root_dir" in c, c


def test_importing_the_cli_loads_no_heavy_library():
    # `img2loc --help` and every command's start pay only for what they use.
    code = (
        "import sys, img2loc.cli; "
        "print([m for m in ('torch', 'lightning', 'timm', 'onnxruntime', 'pandas', 'scipy') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_user_error_from_any_command_is_one_line_and_exit_2(monkeypatch, tmp_path):
    # The one catch in the root group: no command lists Img2locError itself.
    from typer.testing import CliRunner

    from img2loc.cli import app
    from img2loc.data import cells
    from img2loc.errors import Img2locError

    def boom(path):
        raise Img2locError(f"{path}: fix it like this")

    monkeypatch.setattr(cells, "read_cells", boom)
    res = CliRunner().invoke(app, ["cells", "show", str(tmp_path / "c.json")])
    assert res.exit_code == 2
    assert res.output.strip() == f"error: {tmp_path / 'c.json'}: fix it like this"
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_a_bug_keeps_its_traceback(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from img2loc.cli import app
    from img2loc.data import cells

    def bug(path):
        raise KeyError("not a user error")

    monkeypatch.setattr(cells, "read_cells", bug)
    res = CliRunner().invoke(app, ["cells", "show", str(tmp_path / "c.json")])
    assert isinstance(res.exception, KeyError)


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (["predict", "x.jpg", "--aggregate", "sum"], "mean, product"),
        (["predict", "x.jpg", "--variant", "int8"], "fp32, browser, auto"),
        (["eval", "-o", "r", "--data", "d", "--aggregate", "sum"], "mean, product"),
        (["data", "import", "streetview", "-o", "m", "--heading-mode", "x"], "even, random"),
    ],
)
def test_choices_come_from_the_library_lists(args, allowed):
    proc = run(*args, check=False)
    assert proc.returncode == 2
    assert allowed in re.sub(r"[\s│]+", " ", proc.stderr)


def test_every_choice_names_a_list_that_exists():
    # Choices name their list as "module:NAME" (imported only when parsed, to keep --help
    # light): a renamed list must fail here, not in a user's hands.
    import importlib
    import re

    src = Path(__file__).resolve().parents[1] / "src" / "img2loc" / "cli"
    refs = {
        m for f in src.glob("*.py") for m in re.findall(r'choice\("([\w.]+:\w+)"', f.read_text())
    }
    assert len(refs) >= 5
    for ref in refs:
        module, name = ref.split(":")
        assert len(list(getattr(importlib.import_module(module), name))) >= 2, ref
