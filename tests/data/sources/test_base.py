"""data/sources/base.py: the one import report and the online collect skeleton."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from img2loc.data.http import Client, JsonlState
from img2loc.data.sources.base import ImportReport, OnlineSource, Run, Skipped, safe_name


def test_report_counts_line_and_frame():
    r = ImportReport(line_template="{found} found, {failed} failed")
    r.add("found", 3)
    r.add("failed")
    r.note("item 7: gone")
    r.skipped.append(("a.jpg", "no GPS"))
    assert r.line() == "3 found, 1 failed"
    assert r["found"] == 3 and r["never_counted"] == 0
    assert r.messages == ["item 7: gone", "no GPS"]
    assert r.to_frame().values.tolist() == [["", "item 7: gone"], ["a.jpg", "no GPS"]]
    assert ImportReport(line_template="{x} x").line() == "0 x"


class Fake(OnlineSource[dict[str, Any]]):
    """Items 0..n-1 at fixed places; item 2 cannot be had; counts every fetch."""

    name = "fake"
    state_file = "fake_state.jsonl"
    line_template = "Fake: {found} found; {downloaded} now, {already_done} done, {failed} failed"
    fetched: list[str]

    def enumerate(self, state: JsonlState) -> list[dict[str, Any]]:
        self.report.counts["found"] = self.config["n"]
        return [{"id": f"i/{i}", "lat": 10.0 + i, "lon": 20.0} for i in range(self.config["n"])]

    def item_key(self, item: dict[str, Any]) -> str:
        return str(item["id"])

    def image_path(self, item: dict[str, Any]) -> Path:
        return self.out / "images" / f"{safe_name(item['id'])}.jpg"

    def download_client(self) -> Client:
        return Client(**self.client)

    def fetch(self, client: Client, item: dict[str, Any], dest: Path) -> str:
        self.fetched.append(item["id"])
        if item["id"] == "i/2":
            raise Skipped(f"item {item['id']}: gone")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(item["id"].encode())
        return hashlib.sha1(dest.read_bytes()).hexdigest()

    def row(self, item: dict[str, Any], dest: Path, sha1: str) -> dict[str, Any]:
        key = f"fake/{item['id']}"
        return {"key": key, "source": "fake", "image": str(dest), "sha1": sha1} | {
            "latitude": item["lat"],
            "longitude": item["lon"],
        }


def _run(out: Path, n: int) -> tuple[Any, ImportReport, list[str]]:
    src = Fake(Run(out, [None], {"n": n}, {"retries": 0}))
    src.fetched = []
    df, report = src.collect(progress=False)
    return df, report, src.fetched


def test_collect_counts_every_failure_and_resumes(tmp_path, capsys):
    df, report, fetched = _run(tmp_path, 4)
    assert list(df["key"]) == ["fake/i/0", "fake/i/1", "fake/i/3"]
    assert fetched == ["i/0", "i/1", "i/2", "i/3"]
    assert report.line() == "Fake: 4 found; 3 now, 0 done, 1 failed"
    assert report.messages == ["item i/2: gone"]
    assert capsys.readouterr().out.strip() == report.line()
    assert not df.attrs  # the report is returned, not hidden in the frame
    # A rerun downloads only what failed, and returns the same manifest.
    again, report2, fetched2 = _run(tmp_path, 4)
    assert fetched2 == ["i/2"]
    assert (report2["already_done"], report2["failed"], report2["downloaded"]) == (3, 1, 0)
    assert again.equals(df)
    assert (tmp_path / "fake_state.jsonl").exists()
