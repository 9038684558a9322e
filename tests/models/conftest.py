"""Model tests need torch (and timm), never Lightning."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")
