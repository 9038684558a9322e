"""Atomic writes: complete or absent, ordinary permissions, stale temps cleared, one owner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from img2loc.files import (
    FolderBusyError,
    atomic_path,
    atomic_write_text,
    dir_mode,
    file_mode,
    owned_folder,
    remove_stale_temps,
)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(p: Path) -> int:
    return p.stat().st_mode & 0o777


def test_modes_follow_the_umask(tmp_path, umask_022):
    assert (file_mode(), dir_mode()) == (0o644, 0o755)
    atomic_write_text(tmp_path / "sub" / "a.txt", "hello")
    assert (tmp_path / "sub" / "a.txt").read_text() == "hello"
    assert _mode(tmp_path / "sub" / "a.txt") == 0o644  # not mkstemp's 0600
    os.umask(0o077)
    atomic_write_text(tmp_path / "b.txt", "private")
    assert _mode(tmp_path / "b.txt") == 0o600


def test_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    p = tmp_path / "x.parquet"
    p.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(p) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert p.read_text() == "old" and sorted(tmp_path.iterdir()) == [p]
    with atomic_path(tmp_path / "f.png", suffix=".tmp.png") as tmp:
        assert tmp.name.startswith(".f.png.") and tmp.name.endswith(".tmp.png")
        tmp.write_bytes(b"png")
    with pytest.raises(ValueError, match="must contain"), atomic_path(p, suffix=".part"):
        pass


def test_stale_temps_removed_and_folder_owned_once(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".a.tar.k3j2.tmp").write_bytes(b"half")
    (out / ".f.npz.x.tmp.npz").write_bytes(b"half")
    (out / "keep.tar").write_bytes(b"done")
    (out / ".hidden").write_bytes(b"not ours")
    with owned_folder(out, "img2loc test") as o:
        assert sorted(p.name for p in o.iterdir()) == [".hidden", ".lock", "keep.tar"]
        busy = pytest.raises(FolderBusyError, match="another `img2loc test` run")
        with busy, owned_folder(out, "img2loc test"):
            pass
    with owned_folder(out, "img2loc test"):  # released on exit
        pass
    assert remove_stale_temps(out) == []


def test_cli_outputs_are_world_readable(tmp_path, umask_022):
    """The bug this module fixed: `data import csv` wrote its manifest as -rw-------."""
    (tmp_path / "a.jpg").write_bytes(b"x")
    csv = tmp_path / "t.csv"
    csv.write_text("image,latitude,longitude\na.jpg,1,2\nmissing.jpg,3,4\n")
    exe = Path(sys.executable).with_name("img2loc")
    out = tmp_path / "m.parquet"
    proc = subprocess.run(
        [str(exe), "data", "import", "csv", str(csv), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert _mode(out) == 0o644 and _mode(tmp_path / "m.skipped.csv") == 0o644
    assert not list(tmp_path.glob(".*tmp*"))


def test_geo_never_imports_fcntl():
    """fcntl does not exist on Windows: the cell sets and geometry must import without it."""
    code = (
        "import sys, builtins\n"
        "real = builtins.__import__\n"
        "def guard(name, *a, **k):\n"
        "    if name == 'fcntl':\n"
        "        raise ImportError('no fcntl here (as on Windows)')\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = guard\n"
        "sys.modules.pop('fcntl', None)\n"
        "import img2loc.geo, img2loc.geo.cells\n"
        "assert 'fcntl' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def _windows_files(monkeypatch):
    """img2loc.files as Windows loads it: sys.platform 'win32' and an msvcrt that locks."""
    import importlib.util
    import types

    held: set[str] = set()

    def locking(fd: int, mode: int, nbytes: int) -> None:
        key = os.path.realpath(f"/proc/self/fd/{fd}") if os.path.exists("/proc") else str(fd)
        if key in held:
            raise OSError(36, "Resource deadlock avoided")
        held.add(key)

    fake = types.SimpleNamespace(locking=locking, LK_NBLCK=2, held=held)
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setitem(sys.modules, "msvcrt", fake)
    spec = importlib.util.spec_from_file_location(
        "img2loc_files_win", Path(__file__).parents[1] / "src" / "img2loc" / "files.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod, fake


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name fds")
def test_windows_lock_uses_msvcrt_not_fcntl(tmp_path, monkeypatch):
    mod, fake = _windows_files(monkeypatch)
    assert not hasattr(mod, "fcntl")
    with mod.owned_folder(tmp_path / "out", "img2loc x"):
        assert fake.held  # the lock went through msvcrt.locking
        busy = pytest.raises(mod.FolderBusyError, match="another `img2loc x` run")
        with busy, mod.owned_folder(tmp_path / "out", "img2loc x"):
            pass


def _imported(path: Path) -> set[str]:
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def test_files_is_the_lowest_layer_and_geo_holds_no_file_plumbing():
    pkg = Path(__file__).resolve().parents[1] / "src" / "img2loc"
    own = {n for n in _imported(pkg / "files.py") if n.startswith(("img2loc", "."))}
    assert own == {"img2loc.errors"}
    assert not {n for n in _imported(pkg / "errors.py") if n.startswith(("img2loc", "."))}
    for f in (pkg / "geo").rglob("*.py"):
        bad = {n for n in _imported(f) if n in ("img2loc.files", "fcntl", "msvcrt", "tempfile")}
        assert not bad, f"{f.name} imports {bad}: file plumbing belongs in img2loc.files"
