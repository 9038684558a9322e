"""The quick-start set-up: `make run` installs once, and the package metadata builds cleanly."""

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _make_dry(target: str, venv: Path) -> str:
    return subprocess.run(
        ["make", "-n", "-C", str(ROOT), target, f"VENV={venv}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_installs_only_when_pyproject_changes(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    assert "pip install" in _make_dry("run", venv)  # never installed
    (venv / ".installed").touch()
    plan = _make_dry("run", venv)
    assert "pip install" not in plan and "img2loc demo" in plan  # set up: just the demo
    # A dev install covers the base install too.
    (venv / ".installed").unlink()
    assert "pip install" in _make_dry("setup-dev", venv)
    (venv / ".installed-dev").touch()
    (venv / ".installed").touch()
    assert "pip install" not in _make_dry("run", venv) + _make_dry("setup-dev", venv)


def test_license_is_an_spdx_expression():
    """A TOML-table licence makes setuptools print a deprecation warning on every install."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "MIT"
    assert "setuptools>=77" in meta["build-system"]["requires"]  # where SPDX strings began
