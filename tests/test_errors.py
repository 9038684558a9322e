"""Every exception class img2loc defines derives from the one base the CLI catches."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from img2loc.errors import FormatError, Img2locError, MissingFileError

PKG = Path(__file__).resolve().parents[1] / "src" / "img2loc"


def _exception_classes() -> list[tuple[str, str]]:
    """(module, class name) of every class in src/img2loc whose name ends in Error/Exception.

    Found from the source (not by importing every module), so a new module cannot hide one.
    """
    found = []
    for f in sorted(PKG.rglob("*.py")):
        module = ".".join(("img2loc", *f.relative_to(PKG).with_suffix("").parts))
        module = module.removesuffix(".__init__")
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ClassDef) and node.name.endswith(("Error", "Exception")):
                found.append((module, node.name))
    return found


CLASSES = _exception_classes()


def test_the_walk_finds_the_known_classes():
    names = {c for _, c in CLASSES}
    assert {"FormatError", "ModelError", "ImageError", "ServeError", "TableError"} <= names
    assert len(CLASSES) >= 19


@pytest.mark.parametrize(("module", "name"), CLASSES, ids=[f"{m}.{c}" for m, c in CLASSES])
def test_every_error_class_derives_from_img2loc_error(module, name):
    try:
        mod = __import__(module, fromlist=[name])
    except ImportError as e:  # an optional extra (torch, for models/) is not installed
        pytest.skip(f"{module}: {e}")
    cls = getattr(mod, name)
    assert issubclass(cls, Img2locError), f"{module}.{name} does not derive from Img2locError"


def test_bases_keep_the_builtin_class():
    assert issubclass(FormatError, ValueError)
    assert issubclass(MissingFileError, FileNotFoundError)
