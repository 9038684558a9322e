"""Training tests need torch; the tiny shard set and model live in tests/conftest.py."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("lightning")

from tests.conftest import TINY_CONFIG as CONFIG
from tests.conftest import tiny_args

__all__ = ["CONFIG", "tiny_args"]
