"""Every shipped config parses against the real GeoTask (DistillTask for distill*.yaml) /
ShardDataModule signatures."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import run

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=[c.name for c in CONFIGS])
def test_config_resolves(config):
    command = "distill" if config.name.startswith("distill") else "train"
    out = run(command, "-c", str(config), "--print_config").stdout
    resolved = yaml.safe_load(out)
    mine = yaml.safe_load(config.read_text())
    # What the file sets survives resolution (no silently ignored key).
    for section in ("model", "data"):
        for key, value in (mine.get(section) or {}).items():
            assert resolved[section][key] == value, (section, key)
