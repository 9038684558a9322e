"""What every source shares: the one report of an import, and the online `collect` skeleton.

Every source returns ``(manifest, ImportReport)``: local ones (folder, table, OSV-5M, the
img2dataset download) list the files they skipped; online ones (Flickr, Mapillary, Street
View) also count their queries and downloads. An online source is an :class:`OnlineSource`:
it says how to enumerate its items (journaling answered pages in the resumable state) and
how to fetch one and describe it as a manifest row; :meth:`OnlineSource.collect` does the
rest the same way for all: resume finished downloads, count and list every failure, log the
failures without secrets, print the one-line summary, validate the coordinates.
"""

from __future__ import annotations

import logging
import os
import re
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import pandas as pd
from tqdm.auto import tqdm

from img2loc.data.http import Client, JsonlState, redact
from img2loc.data.manifest import make_manifest
from img2loc.geo.coords import validate_coords

Item = TypeVar("Item")


class _Zero(dict[str, int]):
    def __missing__(self, key: str) -> int:
        return 0


@dataclass
class ImportReport:
    """What an import did: counts by name (each source names its own) and every file, row,
    page or photo it could not use with the reason, so nothing is dropped silently.

    ``line`` is the source's one-line summary: a ``str.format`` template over the counts.
    """

    skipped: list[tuple[str, str]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    line_template: str = ""

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def __getitem__(self, name: str) -> int:
        return self.counts[name]

    def note(self, message: str) -> None:
        """A failure that names what failed in its own words (no file of its own)."""
        self.skipped.append(("", message))

    @property
    def messages(self) -> list[str]:
        return [why for _, why in self.skipped]

    def line(self) -> str:
        return self.line_template.format_map(_Zero(self.counts))

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.skipped, columns=["file", "reason"])


class Skipped(Exception):
    """One item could not be had: counted as failed, the message listed in the report."""


def safe_name(name: str) -> str:
    """An id as a file name (ids come from the API: never trust them as paths)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


@dataclass(frozen=True)
class Run:
    """What every online collect call has: where, with which secrets (kept out of every
    message), the settings a resume must share (the journal checks them), and the
    :class:`Client` arguments (rate, retries, timeouts)."""

    out_dir: str | os.PathLike[str]
    secrets: list[str | None]
    config: dict[str, Any]
    client: dict[str, Any]


def client_args(
    rate_per_s: float | None, retries: int, backoff_s: float, timeout_s: float
) -> dict[str, Any]:
    """:class:`Client` keyword arguments."""
    return {"rate_per_s": rate_per_s, "retries": retries, "backoff_s": backoff_s} | {
        "timeout_s": timeout_s
    }


class OnlineSource(ABC, Generic[Item]):
    """An online photo source: enumerate items, then download each one, resumably.

    The journal ``OUT/<state_file>`` holds answered pages (written by :meth:`enumerate`)
    and the SHA-1 of every finished image under ``("img", item_key)``, so a rerun after an
    interruption (even ``kill -9``) skips finished work and returns the same manifest.
    """

    name: str  # the manifest's `source`, and the progress bar's
    state_file: str
    line_template: str

    def __init__(self, run: Run) -> None:
        self.out = Path(run.out_dir).resolve()
        self.secrets, self.config, self.client = run.secrets, run.config, run.client
        self.report = ImportReport(line_template=self.line_template)
        self.progress = True

    @abstractmethod
    def enumerate(self, state: JsonlState) -> list[Item]:
        """Every item to download, in a deterministic order."""

    @abstractmethod
    def item_key(self, item: Item) -> str:
        """The item's key in the journal."""

    def image_path(self, item: Item) -> Path:
        """Where the item's image is saved: ``OUT/images/<item key>.jpg``."""
        return self.out / "images" / f"{safe_name(self.item_key(item))}.jpg"

    @abstractmethod
    def fetch(self, client: Client, item: Item, dest: Path) -> str:
        """Download the item to ``dest`` and return its SHA-1; raise :class:`Skipped`."""

    @abstractmethod
    def row(self, item: Item, dest: Path, sha1: str) -> dict[str, Any]:
        """The item's manifest row."""

    @abstractmethod
    def download_client(self) -> Client:
        """The client images are fetched with (its own rate limit, its own secrets)."""

    def collect(self, progress: bool = True) -> tuple[pd.DataFrame, ImportReport]:
        """Enumerate, download what is not done yet, return the manifest and the report."""
        report = self.report
        rows = []
        self.progress = progress
        with JsonlState(self.out / self.state_file, self.config) as state:
            items = self.enumerate(state)
            with self.download_client() as client:
                for item in tqdm(items, desc=f"{self.name} images", disable=not progress):
                    key, dest = self.item_key(item), self.image_path(item)
                    sha1 = state.get("img", key)
                    if sha1 is not None and dest.is_file():
                        report.add("already_done")
                    else:
                        try:
                            sha1 = self.fetch(client, item, dest)
                        except Skipped as e:
                            report.add("failed")
                            report.note(str(e))
                            continue
                        state.put("img", key, sha1)
                        report.add("downloaded")
                    rows.append(self.row(item, dest, sha1))
        for m in report.messages:
            logging.getLogger(type(self).__module__).warning("%s", redact(m, self.secrets))
        print(report.line())
        df = make_manifest(rows)
        if len(df):
            lat, lon = validate_coords(df["latitude"], df["longitude"], rows=df["key"].tolist())
            df["latitude"], df["longitude"] = lat, lon
        return df, report
