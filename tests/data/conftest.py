"""Data-test helpers (generators live in tests/conftest.py)."""

from tests.conftest import gps_exif, jpeg_bytes

__all__ = ["gps_exif", "jpeg_bytes"]
