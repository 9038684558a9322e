"""Mapillary API v4: list images in a bounding box and download their thumbnails.

:func:`search` asks ``GET {base}/images?fields=...&bbox=...&limit=N`` with the
header ``Authorization: OAuth TOKEN``, follows ``paging.next``, and splits a
tile into four when it returns the API's maximum count (the answer was
truncated), so large areas are enumerated completely. :func:`collect` also
downloads ``thumb_1024_url`` into ``OUT/images/ID.jpg`` (absolute paths in the
manifest). Listing pages and downloads are journaled in
``OUT/mapillary_state.jsonl``, so a rerun after an interruption resumes.

The token comes from ``token``, ``token_file`` or ``$MAPILLARY_ACCESS_TOKEN``;
it is sent only to the API host (never to the image CDN) and never written.
Mapillary imagery is licensed CC BY-SA 4.0; attribution names the creator.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pandas as pd

from img2loc.data.http import (
    Client,
    HTTPError,
    JsonlState,
    NotAnImageError,
    load_secret,
    redact,
    secret_origin,
)
from img2loc.data.sources.base import ImportReport, OnlineSource, Run, Skipped, client_args

DEFAULT_BASE_URL = "https://graph.mapillary.com"
TOKEN_ENV = "MAPILLARY_ACCESS_TOKEN"
STATE_FILE = "mapillary_state.jsonl"
LICENSE = "CC BY-SA 4.0"
FIELDS = "id,geometry,captured_at,compass_angle,thumb_1024_url,creator"
MAX_PER_QUERY = 2000  # the API's cap on results for one bbox query


class MapillaryError(RuntimeError):
    """The API refused the run (bad token) or answered nonsense; the message is secret-free."""


LINE = (
    "Mapillary: {images_found} images found in {queries} page(s) "
    "({tiles_split} tiles split, {duplicates} duplicates, "
    "{skipped_bad_records} bad records); {downloaded} downloaded now, "
    "{already_done} already done, {failed} failed"
)


def _bboxes(bbox: Sequence[float]) -> list[tuple[float, float, float, float]]:
    min_lon, min_lat, max_lon, max_lat = (float(v) for v in bbox)
    if not (-90 <= min_lat < max_lat <= 90):
        raise ValueError(f"bad bbox latitudes {min_lat}, {max_lat}: need -90 <= min < max <= 90")
    if not (-180 <= min_lon <= 180 and -180 <= max_lon <= 180) or min_lon == max_lon:
        raise ValueError(f"bad bbox longitudes {min_lon}, {max_lon}")
    if min_lon > max_lon:  # crosses the antimeridian: the API wants two boxes
        return [(min_lon, min_lat, 180.0, max_lat), (-180.0, min_lat, max_lon, max_lat)]
    return [(min_lon, min_lat, max_lon, max_lat)]


def _record(item: Any) -> dict[str, Any] | None:
    """The fields we keep from one API image, or None when unusable."""
    try:
        lon, lat = item["geometry"]["coordinates"][:2]
        captured = ""
        if item.get("captured_at") is not None:
            ts = float(item["captured_at"]) / 1000.0
            captured = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        creator = item.get("creator") or {}
        angle = item.get("compass_angle")
        return {
            "id": str(item["id"]),
            "lat": float(lat),
            "lon": float(lon),
            "captured": captured,
            "heading": float(angle) if angle is not None else None,
            "url": str(item.get("thumb_1024_url") or ""),
            "creator": str(creator.get("username", "")) if isinstance(creator, dict) else "",
        }
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def _strip_token(url: str, token: str) -> str:
    """``url`` without an ``access_token`` param: we authenticate by header, and the
    journal (which stores next-page URLs) must never hold the token."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in query if k != "access_token"]
    if len(kept) != len(query):
        url = urlunsplit(parts._replace(query=urlencode(kept)))
    return redact(url, [token])


def search(
    bbox: Sequence[float],
    *,
    token: str | None = None,
    token_file: str | os.PathLike[str] | None = None,
    base_url: str = DEFAULT_BASE_URL,
    page_size: int = MAX_PER_QUERY,
    max_per_query: int = MAX_PER_QUERY,
    min_tile_deg: float = 1e-4,
    start_captured_at: str | None = None,
    end_captured_at: str | None = None,
    max_images: int | None = None,
    rate_per_s: float | None = 10.0,
    retries: int = 5,
    backoff_s: float = 0.5,
    timeout_s: float = 30.0,
    state: JsonlState | None = None,
    summary: ImportReport | None = None,
) -> list[dict[str, Any]]:
    """All images in ``bbox = (min_lon, min_lat, max_lon, max_lat)``, unique by id.

    Returns dicts with id, lat, lon, captured (ISO UTC), heading, url, creator,
    in discovery order. A tile whose answer reaches ``max_per_query`` is split in
    four (down to ``min_tile_deg``). ``state`` caches answered pages.
    """
    api_token = load_secret(
        token, token_file, TOKEN_ENV, what="Mapillary access token", option="token_file"
    )
    summary = summary if summary is not None else ImportReport(line_template=LINE)
    base = base_url.rstrip("/")
    headers = {"Authorization": f"OAuth {api_token}"}
    seen: set[str] = set()
    found: list[dict[str, Any]] = []
    client = Client(
        secrets=[api_token],
        rate_per_s=rate_per_s,
        retries=retries,
        backoff_s=backoff_s,
        timeout_s=timeout_s,
    )

    def page(url: str) -> tuple[list[dict[str, Any]], str | None]:
        key = client.redact(url)
        cached = state.get("page", key) if state is not None else None
        if cached is not None:
            return cached["items"], cached["next"]
        try:
            data = client.get_json(url, headers=headers)
        except HTTPError as e:
            if e.status in (401, 403):
                raise MapillaryError(
                    f"Mapillary refused the access token from "
                    f"{secret_origin(token, token_file, TOKEN_ENV)} (HTTP {e.status}); "
                    f"check it. {e}"
                ) from None
            raise
        summary.add("queries")
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise HTTPError(f"no 'data' list in the answer of GET {key}", status=200)
        items = []
        for raw in data["data"]:
            rec = _record(raw)
            if rec is None:
                summary.add("skipped_bad_records")
                summary.note(f"unusable record from {key}: {redact(str(raw))[:200]}")
            else:
                items.append(rec)
        nxt = (data.get("paging") or {}).get("next")
        nxt = _strip_token(str(nxt), api_token) if nxt else None
        if state is not None:
            state.put("page", key, {"items": items, "next": nxt})
        return items, nxt

    def tile(box: tuple[float, float, float, float]) -> None:
        if max_images is not None and len(found) >= max_images:
            return
        params: dict[str, Any] = {
            "fields": FIELDS,
            "bbox": ",".join(f"{v:.7f}".rstrip("0").rstrip(".") for v in box),
            "limit": page_size,
        }
        if start_captured_at:
            params["start_captured_at"] = start_captured_at
        if end_captured_at:
            params["end_captured_at"] = end_captured_at
        url: str | None = f"{base}/images?{urlencode(params)}"
        items: list[dict[str, Any]] = []
        visited: set[str] = set()
        try:
            while url and len(items) < max_per_query:
                if url in visited:  # a server that pages in circles must not hang us
                    break
                visited.add(url)
                got, url = page(url)
                items += got
        except HTTPError as e:
            summary.note(f"tile {box} skipped: {e}")
            return
        w, s, e_, n = box
        if len(items) >= max_per_query and (e_ - w > min_tile_deg or n - s > min_tile_deg):
            summary.add("tiles_split")
            mx, my = (w + e_) / 2, (s + n) / 2
            for sub in ((w, s, mx, my), (mx, s, e_, my), (w, my, mx, n), (mx, my, e_, n)):
                tile(sub)
            return
        if len(items) >= max_per_query:
            summary.note(f"tile {box} is at the minimum size and still truncated")
        for rec in items:
            if rec["id"] in seen:
                summary.add("duplicates")
                continue
            if max_images is not None and len(found) >= max_images:
                return
            seen.add(rec["id"])
            found.append(rec)

    try:
        for box in _bboxes(bbox):
            tile(box)
    finally:
        client.close()
    summary.counts["images_found"] = len(found)
    return found


def collect(
    out_dir: str | os.PathLike[str],
    bbox: Sequence[float],
    *,
    token: str | None = None,
    token_file: str | os.PathLike[str] | None = None,
    base_url: str = DEFAULT_BASE_URL,
    max_images: int | None = None,
    page_size: int = MAX_PER_QUERY,
    max_per_query: int = MAX_PER_QUERY,
    min_tile_deg: float = 1e-4,
    start_captured_at: str | None = None,
    end_captured_at: str | None = None,
    rate_per_s: float | None = 10.0,
    retries: int = 5,
    backoff_s: float = 0.5,
    timeout_s: float = 30.0,
    progress: bool = True,
) -> tuple[pd.DataFrame, ImportReport]:
    """Find images in ``bbox`` (see :func:`search`), download thumbnails; return the
    manifest and the report (counts and every failure).

    ``location_id`` is the image id; ``heading`` the compass angle. Expired
    thumbnail URLs (HTTP 403/410 from the CDN) are refreshed once via
    ``GET {base}/{id}?fields=thumb_1024_url``.
    """
    api_token = load_secret(
        token, token_file, TOKEN_ENV, what="Mapillary access token", option="token_file"
    )
    query = {
        "bbox": [float(v) for v in bbox],
        "max_images": max_images,
        "page_size": page_size,
        "max_per_query": max_per_query,
        "min_tile_deg": min_tile_deg,
        "start_captured_at": start_captured_at,
        "end_captured_at": end_captured_at,
    }
    client = client_args(rate_per_s, retries, backoff_s, timeout_s)
    # search reads the same secret again: its errors say where it came from
    secret = {"token": token, "token_file": token_file, "base_url": base_url}
    return _Mapillary(Run(out_dir, [api_token], query, client), secret).collect(progress)


class _Mapillary(OnlineSource[dict[str, Any]]):
    name = "mapillary"
    state_file = STATE_FILE
    line_template = LINE

    def __init__(self, run: Run, secret: dict[str, Any]) -> None:
        super().__init__(run)
        self.token, self.secret = str(run.secrets[0]), secret

    def enumerate(self, state: JsonlState) -> list[dict[str, Any]]:
        return search(state=state, summary=self.report, **self.config, **self.secret, **self.client)

    def item_key(self, item: dict[str, Any]) -> str:
        return str(item["id"])

    def download_client(self) -> Client:
        return Client(secrets=[self.token], **self.client)

    def fetch(self, client: Client, item: dict[str, Any], dest: Path) -> str:
        return _download(client, item, dest, self.secret["base_url"], self.token)

    def row(self, item: dict[str, Any], dest: Path, sha1: str) -> dict[str, Any]:
        user = item["creator"]
        return {
            "key": f"mapillary/{item['id']}",
            "source": "mapillary",
            "image": str(dest),
            "latitude": item["lat"],
            "longitude": item["lon"],
            "location_id": item["id"],
            "heading": item["heading"],
            "captured": item["captured"],
            "license": LICENSE,
            "attribution": f"{user}, Mapillary" if user else "Mapillary",
            "sha1": sha1,
        }


def _download(
    client: Client, rec: dict[str, Any], dest: Path, base_url: str, api_token: str
) -> str:
    """SHA-1 of the saved thumbnail; :class:`Skipped` when it cannot be had."""
    url = rec["url"]
    for attempt in range(2):
        if not url:
            raise Skipped(f"image {rec['id']}: no thumbnail URL")
        try:
            return client.download(url, dest)
        except NotAnImageError as e:
            problem: HTTPError = e
            break
        except HTTPError as e:
            problem = e
            if e.status not in (403, 410) or attempt:
                break
        # CDN thumbnail URLs are signed and expire; ask the API for a fresh one.
        try:
            data = client.get_json(
                f"{base_url.rstrip('/')}/{rec['id']}?fields=thumb_1024_url",
                headers={"Authorization": f"OAuth {api_token}"},
            )
            url = str(data.get("thumb_1024_url") or "") if isinstance(data, dict) else ""
        except HTTPError as e:
            problem = e
            break
    raise Skipped(f"image {rec['id']}: {problem}")
