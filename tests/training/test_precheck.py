"""`img2loc train` on bad inputs: one line, exit 2, no usage dump, no traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY_CONFIG

EXE = str(Path(sys.executable).with_name("img2loc"))


def _train(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, "train", *map(str, args)], capture_output=True, text=True, timeout=300
    )


def _one_line_error(proc: subprocess.CompletedProcess[str], says: str) -> None:
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "usage:" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], lines


def test_cheap_checks_answer_in_one_line(tiny_data, tmp_path):
    c, cells, shards = TINY_CONFIG, tiny_data["cells"], tiny_data["shards"]
    (tmp_path / "bad.json").write_text("{not json")
    cases = [
        (["-c", tmp_path / "nope.yaml"], "config file"),
        (["-c", c, "--data.shards", shards], "--model.cells is missing"),
        (["-c", c, "--model.cells", tmp_path / "none.json", "--data.shards", shards], "no such"),
        (["-c", c, "--model.cells", tmp_path / "bad.json", "--data.shards", shards], "not a cell"),
        (["-c", c, "--model.cells", cells], "--data.features"),
        (["-c", c, "--model.cells", cells, "--data.shards", tmp_path], "not a shard folder"),
        (["-c", c, "--model.cells", cells, "--data.features", tmp_path], "img2loc embed"),
        (["-c", c, "--model.cells", cells, "--data.shards", shards, "--data.val_split=x"], "'x'"),
        (
            ["-c", c, "--model.cells", cells, "--data.shards", shards, "--resume", "n.ckpt"],
            "n.ckpt",
        ),
    ]
    for args, says in cases:
        _one_line_error(_train(*args), says)


def test_unknown_option_is_one_line_with_the_way_to_the_options(tiny_data):
    pytest.importorskip("lightning")
    proc = _train(
        "-c", TINY_CONFIG, "--model.cells", tiny_data["cells"], "--data.shards",
        tiny_data["shards"], "--model.no_such_option", "3",
    )  # fmt: skip
    _one_line_error(proc, "--model.no_such_option")
    assert "--help-all" in proc.stderr and "--print_config" in proc.stderr


def test_help_says_where_the_options_are():
    out = _train("--help").stdout
    assert "--help-all" in out and "--print_config" in out
    pytest.importorskip("lightning")
    full = _train("-c", TINY_CONFIG, "--help-all")
    assert full.returncode == 0 and "--model.cells" in full.stdout
    assert "--trainer.max_epochs" in full.stdout
