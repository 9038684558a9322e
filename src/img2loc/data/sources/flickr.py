"""Flickr geotagged photos by tag (the im2gps recipe), with licence filtering.

:func:`search` calls ``flickr.photos.search`` per tag with ``has_geo=1``.
Flickr serves at most ~4000 results per query however many pages exist, so
the upload-time range is halved recursively until each block's ``total`` is
at most ``max_per_query``; every block is then paged through. Photos are
deduplicated by id across tags and blocks. :func:`collect` downloads ``url_z``
(640 px) into ``OUT/images/ID.jpg`` (absolute paths in the manifest) and
journals answered pages and downloads in ``OUT/flickr_state.jsonl`` so a rerun
resumes.

The key comes from ``api_key``, ``key_file`` or ``$FLICKR_API_KEY`` and never
appears in output, logs, errors or files.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pandas as pd
from tqdm.auto import tqdm

from img2loc.data.http import (
    Client,
    HTTPError,
    JsonlState,
    NotAnImageError,
    load_secret,
    secret_origin,
)
from img2loc.data.sources.base import ImportReport, OnlineSource, Run, Skipped, client_args

DEFAULT_BASE_URL = "https://api.flickr.com"
KEY_ENV = "FLICKR_API_KEY"
STATE_FILE = "flickr_state.jsonl"
MAX_PER_QUERY = 4000
EXTRAS = "geo,license,date_taken,owner_name,url_z"
# Creative Commons and public-domain licences (flickr.photos.licenses.getInfo).
CC_LICENSES = (1, 2, 3, 4, 5, 6, 9, 10)
LICENSES = {
    0: "All Rights Reserved",
    1: "CC BY-NC-SA 2.0",
    2: "CC BY-NC 2.0",
    3: "CC BY-NC-ND 2.0",
    4: "CC BY 2.0",
    5: "CC BY-SA 2.0",
    6: "CC BY-ND 2.0",
    7: "No known copyright restrictions",
    8: "United States Government Work",
    9: "CC0 1.0",
    10: "Public Domain Mark 1.0",
    11: "CC BY 4.0",
    12: "CC BY-SA 4.0",
    13: "CC BY-ND 4.0",
    14: "CC BY-NC 4.0",
    15: "CC BY-NC-SA 4.0",
    16: "CC BY-NC-ND 4.0",
}
_RETRY_CODES = {105, 106}  # "service currently unavailable", "write operation failed"


class FlickrError(RuntimeError):
    """Flickr refused the run (e.g. invalid key); the message is secret-free."""


LINE = (
    "Flickr: {photos_found} photos from {queries} queries "
    "({blocks_split} time blocks split, {truncated_blocks} truncated, "
    "{duplicates} duplicates, {skipped_no_geo} without location, "
    "{skipped_license} other licences, {failed_pages} failed pages); "
    "{downloaded} downloaded now, {already_done} already done, "
    "{failed} failed"
)


def to_unix(value: int | float | str | date | datetime) -> int:
    """Unix seconds from an int, an ISO date/datetime string or a date (UTC if naive)."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not a date")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def _photo(item: Any, licenses: set[int] | None) -> tuple[str, dict[str, Any] | None]:
    """(verdict, record): verdict is "ok", "no_geo", "license" or "bad"."""
    try:
        pid = str(item["id"])
        lat, lon = float(item["latitude"]), float(item["longitude"])
        lic = int(item.get("license", -1))
    except (KeyError, TypeError, ValueError):
        return "bad", None
    if lat == 0.0 and lon == 0.0:  # Flickr's "no location" even with has_geo=1
        return "no_geo", None
    if licenses is not None and lic not in licenses:
        return "license", None
    taken = str(item.get("datetaken") or "")
    captured = taken.split(" ")[0] if re.match(r"\d{4}-\d\d-\d\d", taken) else ""
    owner = str(item.get("owner") or "")
    return "ok", {
        "id": pid,
        "lat": lat,
        "lon": lon,
        "license": lic,
        "captured": captured,
        "owner": owner,
        "ownername": str(item.get("ownername") or owner),
        "url": str(item.get("url_z") or ""),
    }


def search(
    tags: Sequence[str],
    min_upload_date: int | float | str | date | datetime,
    max_upload_date: int | float | str | date | datetime,
    *,
    api_key: str | None = None,
    key_file: str | os.PathLike[str] | None = None,
    licenses: Sequence[int] | None = CC_LICENSES,
    base_url: str = DEFAULT_BASE_URL,
    per_page: int = 250,
    max_per_query: int = MAX_PER_QUERY,
    accuracy: int | None = None,
    max_images: int | None = None,
    rate_per_s: float | None = 1.0,
    retries: int = 5,
    backoff_s: float = 0.5,
    timeout_s: float = 30.0,
    state: JsonlState | None = None,
    summary: ImportReport | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """All geotagged photos with any of ``tags`` uploaded in [min, max], unique by id.

    ``licenses`` (Flickr licence ids; None: all) is sent to the API and checked
    again locally. ``accuracy`` is Flickr's minimum geotag accuracy (1-16).
    Returns dicts with id, lat, lon, license, captured, owner, ownername, url.
    """
    key = load_secret(api_key, key_file, KEY_ENV, what="Flickr API key", option="key_file")
    summary = summary if summary is not None else ImportReport(line_template=LINE)
    t0, t1 = to_unix(min_upload_date), to_unix(max_upload_date)
    if t1 < t0:
        raise ValueError("max_upload_date is before min_upload_date")
    lic_set = set(licenses) if licenses is not None else None
    base = base_url.rstrip("/")
    client = Client(
        secrets=[key],
        rate_per_s=rate_per_s,
        retries=retries,
        backoff_s=backoff_s,
        timeout_s=timeout_s,
    )
    seen: set[str] = set()
    found: list[dict[str, Any]] = []
    bar = tqdm(desc="flickr search", unit="photo", disable=not progress)

    def query(tag: str, a: int, b: int, page: int) -> dict[str, Any] | None:
        """One search page (cached in the journal); None when it failed (reported)."""
        params: dict[str, Any] = {
            "method": "flickr.photos.search",
            "api_key": key,
            "tags": tag,
            "has_geo": 1,
            "extras": EXTRAS,
            "min_upload_date": a,
            "max_upload_date": b,
            "sort": "date-posted-asc",
            "per_page": per_page,
            "page": page,
            "format": "json",
            "nojsoncallback": 1,
        }
        if licenses is not None:
            params["license"] = ",".join(str(x) for x in sorted(lic_set or ()))
        if accuracy is not None:
            params["accuracy"] = accuracy
        cache_key = f"{tag}|{a}|{b}|{page}"
        if state is not None and state.has("page", cache_key):
            return state.get("page", cache_key)  # type: ignore[no-any-return]
        url = f"{base}/services/rest/?{urlencode(params)}"
        for attempt in range(retries + 1):
            try:
                data = client.get_json(url)
            except HTTPError as e:
                summary.add("failed_pages")
                summary.note(f"tag {tag!r} [{a}, {b}] page {page} skipped: {e}")
                return None
            summary.add("queries")
            if not isinstance(data, dict):
                data = {"stat": "fail", "code": -1, "message": "not a JSON object"}
            if data.get("stat") == "ok":
                break
            code, msg = data.get("code"), client.redact(str(data.get("message", "")))
            if code in _RETRY_CODES and attempt < retries:
                client.sleep(min(backoff_s * 2**attempt, client.max_wait_s))
                continue
            raise FlickrError(
                f"Flickr API error {code}: {msg}"
                + (
                    f" (check the key from {secret_origin(api_key, key_file, KEY_ENV)})"
                    if code == 100
                    else ""
                )
            )
        try:
            photos = data["photos"]
            result = {
                "total": int(photos["total"]),
                "pages": int(photos["pages"]),
                "photo": list(photos["photo"]),
            }
        except (KeyError, TypeError, ValueError):
            summary.add("failed_pages")
            summary.note(f"tag {tag!r} [{a}, {b}] page {page}: answer without photos/total/pages")
            return None
        if state is not None:
            state.put("page", cache_key, result)
        return result

    def blocks(tag: str, a: int, b: int) -> Iterator[list[Any]]:
        first = query(tag, a, b, 1)
        if first is None:
            return
        if first["total"] > max_per_query and b > a:
            summary.add("blocks_split")
            mid = (a + b) // 2
            # Both bounds are inclusive in Flickr, so the halves must not share a second.
            yield from blocks(tag, a, mid)
            yield from blocks(tag, mid + 1, b)
            return
        if first["total"] > max_per_query:
            summary.add("truncated_blocks")
            summary.note(
                f"tag {tag!r}: {first['total']} photos uploaded in one second ({a}); "
                f"only {max_per_query} can be listed"
            )
        yield first["photo"]
        last = min(first["pages"], math.ceil(max_per_query / per_page))
        for page in range(2, last + 1):
            got = query(tag, a, b, page)
            if got is not None:
                yield got["photo"]

    try:
        for tag in tags:
            for photos in blocks(tag, t0, t1):
                for item in photos:
                    verdict, rec = _photo(item, lic_set)
                    if rec is None:
                        if verdict == "no_geo":
                            summary.add("skipped_no_geo")
                        elif verdict == "license":
                            summary.add("skipped_license")
                        else:
                            summary.add("skipped_bad_records")
                        continue
                    if rec["id"] in seen:
                        summary.add("duplicates")
                        continue
                    seen.add(rec["id"])
                    found.append(rec)
                    bar.update()
                    if max_images is not None and len(found) >= max_images:
                        summary.counts["photos_found"] = len(found)
                        return found
    finally:
        bar.close()
        client.close()
    summary.counts["photos_found"] = len(found)
    return found


def collect(
    out_dir: str | os.PathLike[str],
    tags: Sequence[str],
    min_upload_date: int | float | str | date | datetime,
    max_upload_date: int | float | str | date | datetime,
    *,
    api_key: str | None = None,
    key_file: str | os.PathLike[str] | None = None,
    licenses: Sequence[int] | None = CC_LICENSES,
    base_url: str = DEFAULT_BASE_URL,
    per_page: int = 250,
    max_per_query: int = MAX_PER_QUERY,
    accuracy: int | None = None,
    max_images: int | None = None,
    rate_per_s: float | None = 1.0,
    retries: int = 5,
    backoff_s: float = 0.5,
    timeout_s: float = 30.0,
    progress: bool = True,
) -> tuple[pd.DataFrame, ImportReport]:
    """Search (see :func:`search`), download ``url_z`` images; return the manifest and the
    report (counts and every failure).

    ``location_id`` is the photo id; ``attribution`` names the owner and the photo page.
    """
    key = load_secret(api_key, key_file, KEY_ENV, what="Flickr API key", option="key_file")
    query = {
        "tags": list(tags),
        "min_upload_date": to_unix(min_upload_date),
        "max_upload_date": to_unix(max_upload_date),
        "licenses": sorted(licenses) if licenses is not None else None,
        "per_page": per_page,
        "max_per_query": max_per_query,
        "accuracy": accuracy,
        "max_images": max_images,
    }
    client = client_args(None, retries, backoff_s, timeout_s)
    # search reads the same secret again: its errors say where it came from
    secret = {"api_key": api_key, "key_file": key_file, "base_url": base_url}
    return _Flickr(Run(out_dir, [key], query, client), secret, rate_per_s).collect(progress)


class _Flickr(OnlineSource[dict[str, Any]]):
    name = "flickr"
    state_file = STATE_FILE
    line_template = LINE

    def __init__(self, run: Run, secret: dict[str, Any], rate_per_s: float | None) -> None:
        super().__init__(run)
        self.secret, self.rate_per_s = secret, rate_per_s

    def enumerate(self, state: JsonlState) -> list[dict[str, Any]]:
        q = self.config
        return search(
            q["tags"],
            q["min_upload_date"],
            q["max_upload_date"],
            licenses=q["licenses"],
            per_page=q["per_page"],
            max_per_query=q["max_per_query"],
            accuracy=q["accuracy"],
            max_images=q["max_images"],
            state=state,
            summary=self.report,
            progress=self.progress,
            **self.secret,
            **(self.client | {"rate_per_s": self.rate_per_s}),
        )

    def item_key(self, item: dict[str, Any]) -> str:
        return str(item["id"])

    def download_client(self) -> Client:
        # Static image hosts are not the API: no API rate limit, and no key is sent.
        return Client(**self.client)

    def fetch(self, client: Client, item: dict[str, Any], dest: Path) -> str:
        if not item["url"]:
            raise Skipped(f"photo {item['id']}: no url_z (image too small?)")
        try:
            return client.download(item["url"], dest)
        except HTTPError as e:  # NotAnImageError included
            kind = "not an image" if isinstance(e, NotAnImageError) else "failed"
            raise Skipped(f"photo {item['id']} {kind}: {e}") from None

    def row(self, item: dict[str, Any], dest: Path, sha1: str) -> dict[str, Any]:
        page = f"https://www.flickr.com/photos/{item['owner']}/{item['id']}"
        return {
            "key": f"flickr/{item['id']}",
            "source": "flickr",
            "image": str(dest),
            "latitude": item["lat"],
            "longitude": item["lon"],
            "location_id": item["id"],
            "captured": item["captured"],
            "license": LICENSES.get(item["license"], f"Flickr licence {item['license']}"),
            "attribution": f"{item['ownername']} ({page})",
            "sha1": sha1,
        }
