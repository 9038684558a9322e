"""Architecture rules: a layer imports only the layers below it (relative imports included).

Layers, lowest first: errors, files → geo → data, viz → inference → models → training,
evaluation, export (siblings) → server → cli. geo/ is numpy + S2 (no torch, no pandas, no file
plumbing); data/, inference/, viz/ and server/ never load torch; only the CLI imports training/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "img2loc"
BASE = {"errors", "files"}
#: The package's own top-level modules/packages each one may import.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "files": {"errors"},
    "geo": {"errors"},
    "data": BASE | {"geo"},
    "viz": BASE | {"geo", "data"},
    "inference": BASE | {"geo", "data"},
    "models": BASE | {"geo", "data", "inference"},
    "training": BASE | {"geo", "data", "inference", "models"},
    "evaluation": BASE | {"geo", "data", "inference", "models", "viz"},
    "export": BASE | {"geo", "data", "inference", "models"},
    "server": BASE | {"geo", "data", "inference", "export"},
    "cli": BASE
    | {"geo", "data", "viz", "inference", "models", "training", "evaluation", "export", "server"},
    "__init__": {"inference"},
    "__main__": {"cli"},
}
NO_TORCH = {"torch", "torchvision", "lightning", "timm", "torchmetrics"}
#: Third-party modules a layer must never import (not even lazily, inside a function).
FORBIDDEN: dict[str, set[str]] = {
    "errors": NO_TORCH | {"numpy", "pandas"},
    "files": NO_TORCH | {"numpy", "pandas"},
    "geo": NO_TORCH | {"pandas", "matplotlib", "onnxruntime", "fcntl", "msvcrt", "PIL"},
    "data": NO_TORCH | {"onnxruntime", "matplotlib"},
    "viz": NO_TORCH | {"onnxruntime"},
    "inference": NO_TORCH | {"matplotlib"},
    "models": {"lightning", "onnxruntime"},
    "evaluation": {"lightning"},
    "export": {"lightning"},
    "server": NO_TORCH,
}


def module_name(path: Path) -> list[str]:
    parts = ["img2loc", *path.relative_to(PKG).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved to absolute names."""
    package = module_name(path)
    if path.name != "__init__.py":
        package = package[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                mod = ".".join([*base, node.module] if node.module else base)
                if node.module is None:  # `from .. import training` names submodules
                    names.update(f"{mod}.{a.name}" for a in node.names)
                else:
                    names.add(mod)
            elif node.module:
                names.add(node.module)
    return names


def layer_of(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def violations(path: Path) -> list[str]:
    layer = layer_of(path)
    bad = []
    for name in sorted(imports(path)):
        top, _, rest = name.partition(".")
        if top == "img2loc" and rest:
            target = rest.split(".")[0]
            if target != layer and target not in ALLOWED[layer]:
                bad.append(name)
        elif top in FORBIDDEN.get(layer, set()):
            bad.append(name)
    return bad


def source_files() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if "static" not in p.parts)


def test_every_layer_has_rules():
    assert {layer_of(p) for p in source_files()} <= set(ALLOWED)


@pytest.mark.parametrize("path", source_files(), ids=lambda p: str(p.relative_to(PKG)))
def test_layer_imports(path):
    assert not violations(path), f"{path.relative_to(PKG)} imports {violations(path)}"


@pytest.mark.parametrize(
    ("where", "code", "caught"),
    [
        ("geo/x.py", "from ..training import task\n", True),
        ("geo/x.py", "from .. import training\n", True),
        ("geo/x.py", "from . import cells\n", False),
        ("models/x.py", "import img2loc.training.task\n", True),
        ("evaluation/x.py", "from ..training.task import GeoTask\n", True),
        ("data/x.py", "def f():\n    import img2loc.viz.maps\n", True),
        ("inference/x.py", "def f():\n    import torch\n", True),
        ("export/x.py", "from ..models import load_checkpoint\n", False),
        ("geo/sub/x.py", "from ...data import io\n", True),
    ],
)
def test_the_rules_catch_what_they_must(tmp_path, monkeypatch, where, code, caught):
    """The checker itself sees relative and lazy imports (a rule that cannot fail is none)."""
    root = tmp_path / "img2loc"
    f = root / where
    f.parent.mkdir(parents=True)
    f.write_text(code)
    monkeypatch.setattr(f"{__name__}.PKG", root)
    assert bool(violations(f)) is caught
