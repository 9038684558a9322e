"""Architecture rules: lower layers never import higher ones, and geo/ never imports torch."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "img2loc"
FORBIDDEN = {
    "geo": {
        "torch",
        "lightning",
        "timm",
        "img2loc.data",
        "img2loc.inference",
        "img2loc.models",
        "img2loc.training",
        "img2loc.evaluation",
        "img2loc.export",
        "img2loc.cli",
        "img2loc.viz",
        "matplotlib",
        "pandas",
    },
    "data": {
        "torch",
        "lightning",
        "timm",
        "img2loc.inference",
        "img2loc.models",
        "img2loc.training",
        "img2loc.evaluation",
        "img2loc.export",
        "img2loc.cli",
    },
    "viz": {"torch", "lightning", "timm", "img2loc.cli", "img2loc.evaluation"},
}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports(layer):
    files = list((PKG / layer).rglob("*.py"))
    assert files
    for f in files:
        for name in _imports(f):
            bad = [b for b in FORBIDDEN[layer] if name == b or name.startswith(b + ".")]
            assert not bad, f"{f.relative_to(PKG)} imports {name}"
