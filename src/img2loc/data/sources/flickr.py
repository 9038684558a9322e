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

import logging
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
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
    redact,
    secret_origin,
)
from img2loc.data.manifest import make_manifest
from img2loc.errors import Img2locError
from img2loc.geo.coords import validate_coords

log = logging.getLogger(__name__)

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


class FlickrError(Img2locError, RuntimeError):
    """Flickr refused the run (e.g. invalid key); the message is secret-free."""


@dataclass
class Summary:
    """Counts of what happened."""

    queries: int = 0
    blocks_split: int = 0
    truncated_blocks: int = 0
    photos_found: int = 0
    duplicates: int = 0
    skipped_no_geo: int = 0
    skipped_license: int = 0
    skipped_bad_records: int = 0
    failed_pages: int = 0
    downloaded: int = 0
    already_done: int = 0
    failed: int = 0
    messages: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One-line report."""
        return (
            f"Flickr: {self.photos_found} photos from {self.queries} queries "
            f"({self.blocks_split} time blocks split, {self.truncated_blocks} truncated, "
            f"{self.duplicates} duplicates, {self.skipped_no_geo} without location, "
            f"{self.skipped_license} other licences, {self.failed_pages} failed pages); "
            f"{self.downloaded} downloaded now, {self.already_done} already done, "
            f"{self.failed} failed"
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
    summary: Summary | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """All geotagged photos with any of ``tags`` uploaded in [min, max], unique by id.

    ``licenses`` (Flickr licence ids; None: all) is sent to the API and checked
    again locally. ``accuracy`` is Flickr's minimum geotag accuracy (1-16).
    Returns dicts with id, lat, lon, license, captured, owner, ownername, url.
    """
    key = load_secret(api_key, key_file, KEY_ENV, what="Flickr API key", option="key_file")
    summary = summary if summary is not None else Summary()
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
                summary.failed_pages += 1
                summary.messages.append(f"tag {tag!r} [{a}, {b}] page {page} skipped: {e}")
                return None
            summary.queries += 1
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
            summary.failed_pages += 1
            summary.messages.append(
                f"tag {tag!r} [{a}, {b}] page {page}: answer without photos/total/pages"
            )
            return None
        if state is not None:
            state.put("page", cache_key, result)
        return result

    def blocks(tag: str, a: int, b: int) -> Iterator[list[Any]]:
        first = query(tag, a, b, 1)
        if first is None:
            return
        if first["total"] > max_per_query and b > a:
            summary.blocks_split += 1
            mid = (a + b) // 2
            # Both bounds are inclusive in Flickr, so the halves must not share a second.
            yield from blocks(tag, a, mid)
            yield from blocks(tag, mid + 1, b)
            return
        if first["total"] > max_per_query:
            summary.truncated_blocks += 1
            summary.messages.append(
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
                            summary.skipped_no_geo += 1
                        elif verdict == "license":
                            summary.skipped_license += 1
                        else:
                            summary.skipped_bad_records += 1
                        continue
                    if rec["id"] in seen:
                        summary.duplicates += 1
                        continue
                    seen.add(rec["id"])
                    found.append(rec)
                    bar.update()
                    if max_images is not None and len(found) >= max_images:
                        summary.photos_found = len(found)
                        return found
    finally:
        bar.close()
        client.close()
    summary.photos_found = len(found)
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
) -> pd.DataFrame:
    """Search (see :func:`search`), download ``url_z`` images, return the manifest.

    ``location_id`` is the photo id; ``attribution`` names the owner and the
    photo page. ``df.attrs["summary"]`` holds the counts.
    """
    key = load_secret(api_key, key_file, KEY_ENV, what="Flickr API key", option="key_file")
    out = Path(out_dir).resolve()
    config = {
        "tags": list(tags),
        "min_upload_date": to_unix(min_upload_date),
        "max_upload_date": to_unix(max_upload_date),
        "licenses": sorted(licenses) if licenses is not None else None,
        "per_page": per_page,
        "max_per_query": max_per_query,
        "accuracy": accuracy,
        "max_images": max_images,
    }
    summary = Summary()
    rows = []
    with JsonlState(out / STATE_FILE, config) as state:
        found = search(
            tags,
            min_upload_date,
            max_upload_date,
            api_key=api_key,  # search reads the same secret; its errors say where it came from
            key_file=key_file,
            licenses=licenses,
            base_url=base_url,
            per_page=per_page,
            max_per_query=max_per_query,
            accuracy=accuracy,
            max_images=max_images,
            rate_per_s=rate_per_s,
            retries=retries,
            backoff_s=backoff_s,
            timeout_s=timeout_s,
            state=state,
            summary=summary,
            progress=progress,
        )
        # Static image hosts are not the API: no API rate limit, and no key is sent.
        with Client(retries=retries, backoff_s=backoff_s, timeout_s=timeout_s) as client:
            for rec in tqdm(found, desc="flickr images", disable=not progress):
                dest = out / "images" / f"{re.sub(r'[^A-Za-z0-9_-]', '_', rec['id'])}.jpg"
                sha1 = state.get("img", rec["id"])
                if sha1 is not None and dest.is_file():
                    summary.already_done += 1
                elif not rec["url"]:
                    summary.failed += 1
                    summary.messages.append(f"photo {rec['id']}: no url_z (image too small?)")
                    continue
                else:
                    try:
                        sha1 = client.download(rec["url"], dest)
                    except HTTPError as e:  # NotAnImageError included
                        summary.failed += 1
                        kind = "not an image" if isinstance(e, NotAnImageError) else "failed"
                        summary.messages.append(f"photo {rec['id']} {kind}: {e}")
                        continue
                    state.put("img", rec["id"], sha1)
                    summary.downloaded += 1
                page = f"https://www.flickr.com/photos/{rec['owner']}/{rec['id']}"
                rows.append(
                    {
                        "key": f"flickr/{rec['id']}",
                        "source": "flickr",
                        "image": str(dest),
                        "latitude": rec["lat"],
                        "longitude": rec["lon"],
                        "location_id": rec["id"],
                        "captured": rec["captured"],
                        "license": LICENSES.get(rec["license"], f"Flickr licence {rec['license']}"),
                        "attribution": f"{rec['ownername']} ({page})",
                        "sha1": sha1,
                    }
                )
    for m in summary.messages:
        log.warning("%s", redact(m, [key]))
    print(summary.line())
    df = make_manifest(rows)
    if len(df):
        lat, lon = validate_coords(df["latitude"], df["longitude"], rows=df["key"].tolist())
        df["latitude"], df["longitude"] = lat, lon
    df.attrs["summary"] = asdict(summary)
    return df
