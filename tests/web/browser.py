"""Headless Chromium settings shared by the web tests and benchmarks/bench_web.py."""

from __future__ import annotations

import shutil
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
#: Headless Chromium that never phones home (without these it stalls on refused connections).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> Path:
    """The installed Chromium (``apt-get install chromium``), or its usual path."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return Path(found) if found else CHROMIUM
