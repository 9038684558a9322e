"""WebKitGTK (the engine of iPhone Safari) for the web tests: MiniBrowser driven through
WebKitWebDriver with plain W3C WebDriver calls, on a virtual X display (Xvfb).

Debian: ``apt-get install webkit2gtk-driver xvfb`` (.ci/run does this).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

MINIBROWSER = Path("/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser")


def missing() -> str | None:
    """Why WebKit cannot run here, or None."""
    for exe in ("WebKitWebDriver", "Xvfb"):
        if shutil.which(exe) is None:
            return f"{exe} is not installed (apt-get install webkit2gtk-driver xvfb)"
    if not MINIBROWSER.exists():
        return f"{MINIBROWSER} not found (apt-get install webkit2gtk-driver)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Session:
    """One fresh MiniBrowser window (no cache, no storage shared with other sessions)."""

    def __init__(self, driver: str, sid: str) -> None:
        self.driver, self.sid = driver, sid

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        return call(self.driver, method, f"/session/{self.sid}{path}", body)

    def get(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    def js(self, script: str, *args: Any) -> Any:
        """Run ``script`` (a function body: use ``return``) in the page."""
        return self._call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def js_async(self, script: str, *args: Any) -> Any:
        """Run an async function body; its result comes back when the promise settles."""
        body = (
            "const done = arguments[arguments.length - 1];"
            f"(async () => {{ {script} }})().then(done, (e) => done({{error: String(e)}}));"
        )
        return self._call("POST", "/execute/async", {"script": body, "args": list(args)})

    def wait(self, script: str, timeout: float = 60.0) -> Any:
        end = time.monotonic() + timeout
        while True:
            v = self.js(script)
            if v:
                return v
            if time.monotonic() > end:
                raise TimeoutError(f"timed out waiting for: {script}")
            time.sleep(0.2)

    def close(self) -> None:
        with suppress(OSError):
            self._call("DELETE", "")


def call(driver: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        driver + path, method=method, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=180) as r:
            return json.loads(r.read())["value"]
    except urllib.error.HTTPError as e:
        raise AssertionError(f"WebDriver {method} {path}: {e.read().decode()[:500]}") from None


@contextmanager
def webkit_driver() -> Iterator[Any]:
    """A virtual display and WebKitWebDriver; yields ``new_session()``."""
    display = f":{_free_port() % 1000 + 100}"
    xvfb = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", "1366x900x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port = _free_port()
    env = {**os.environ, "DISPLAY": display, "WEBKIT_DISABLE_COMPOSITING_MODE": "1"}
    drv = subprocess.Popen(
        ["WebKitWebDriver", f"--port={port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                call(url, "GET", "/status")
                break
            except (OSError, AssertionError):
                time.sleep(0.1)
        sessions: list[Session] = []

        def new_session() -> Session:
            # WebKitWebDriver runs one session at a time: a new one replaces the last.
            while sessions:
                sessions.pop().close()
            caps = {
                "capabilities": {
                    "alwaysMatch": {
                        "browserName": "MiniBrowser",
                        "webkitgtk:browserOptions": {
                            "binary": str(MINIBROWSER),
                            "args": ["--automation"],
                        },
                    }
                }
            }
            s = Session(url, call(url, "POST", "/session", caps)["sessionId"])
            sessions.append(s)
            return s

        yield new_session
        for s in sessions:
            s.close()
    finally:
        drv.terminate()
        xvfb.terminate()
        drv.wait(10)
        xvfb.wait(10)
