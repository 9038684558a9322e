"""Checkpoints load with weights_only=True: a file holding arbitrary objects is refused."""

from __future__ import annotations

import pytest
import torch

from img2loc.models.checkpoint import TRUST_ENV, read_checkpoint


class Payload:
    """Stands for any pickled object (which could run code when unpickled)."""


def test_objects_refused_unless_trusted(tmp_path, monkeypatch):
    plain, odd = tmp_path / "plain.ckpt", tmp_path / "odd.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "hp": {"lr": 0.1, "name": "x"}}, plain)
    torch.save({"state_dict": {}, "thing": Payload()}, odd)
    assert read_checkpoint(plain)["hp"] == {"lr": 0.1, "name": "x"}
    monkeypatch.delenv(TRUST_ENV, raising=False)
    with pytest.raises(ValueError, match=f"run code from the file.*{TRUST_ENV}=1"):
        read_checkpoint(odd)
    monkeypatch.setenv(TRUST_ENV, "1")
    assert isinstance(read_checkpoint(odd)["thing"], Payload)
