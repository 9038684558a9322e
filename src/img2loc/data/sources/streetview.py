"""Google Street View Static API: sample points, find panoramas, download views.

Steps of :func:`collect`:

1. points: the given ``points`` or ``n_points`` sampled in ``bbox`` (seeded);
2. metadata (free) per point: ``/maps/api/streetview/metadata`` → panorama id,
   its location and date; ZERO_RESULTS/NOT_FOUND points are skipped and counted;
3. panoramas are deduplicated by id (first point wins) and each gets
   ``headings`` view directions (evenly spaced with a random offset, or random);
4. the cost is printed before paying; ``budget_usd`` caps the number of images
   (the first ``floor(budget / price * 1000)`` views, so reruns never exceed it);
5. images (paid) from ``/maps/api/streetview``, signed when a secret is given.

Everything finished is journaled in ``OUT/streetview_state.jsonl``; rerunning
the same call after an interruption (even ``kill -9``) skips finished work and
returns the same manifest. Images land in ``OUT/images/``; the manifest's
``image`` column holds absolute paths. The key comes from ``key``, ``key_file``
or ``$GOOGLE_MAPS_API_KEY`` and never appears in output, logs or errors.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from tqdm.auto import tqdm

from img2loc.data.http import (
    Client,
    HTTPError,
    JsonlState,
    NotAnImageError,
    load_secret,
    secret_origin,
)
from img2loc.data.sources.base import (
    ImportReport,
    OnlineSource,
    Run,
    Skipped,
    client_args,
    safe_name,
)
from img2loc.geo.coords import normalize_lon, validate_coords

DEFAULT_BASE_URL = "https://maps.googleapis.com"
KEY_ENV = "GOOGLE_MAPS_API_KEY"
SECRET_ENV = "GOOGLE_MAPS_URL_SIGNING_SECRET"
STATE_FILE = "streetview_state.jsonl"
LICENSE = "Google Maps Platform Terms of Service"
_FATAL_STATUS = {"REQUEST_DENIED"}
_SKIP_STATUS = {"ZERO_RESULTS", "NOT_FOUND"}


class StreetViewError(RuntimeError):
    """The API refused the whole run (bad key, quota); the message is secret-free."""


LINE = (
    "Street View: {points} points -> {ok} with a panorama "
    "({zero_results} ZERO_RESULTS, {not_found} NOT_FOUND, "
    "{invalid} INVALID_REQUEST, {errors} errors), "
    "{panoramas} unique panoramas ({duplicate_panoramas} duplicates); "
    "images: {images_planned} planned, {images_allowed} within budget, "
    "{downloaded} downloaded now, {already_done} already done, "
    "{failed} failed"
)


def sign_url(url: str, secret: str) -> str:
    """``url`` with Google's ``signature`` param: HMAC-SHA1 of path+query, urlsafe base64.

    ``secret`` is the urlsafe-base64 URL-signing secret from the Cloud console.
    """
    parts = urlsplit(url)
    to_sign = parts.path + ("?" + parts.query if parts.query else "")
    padded = secret.strip() + "=" * (-len(secret.strip()) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded)
    except ValueError:
        raise ValueError("the URL-signing secret is not valid urlsafe base64") from None
    digest = hmac.new(raw, to_sign.encode("utf-8"), hashlib.sha1).digest()
    signature = base64.urlsafe_b64encode(digest).decode("ascii")
    return f"{url}{'&' if parts.query else '?'}signature={signature}"


def sample_points(
    n: int,
    bbox: Sequence[float],
    *,
    seed: int | np.random.Generator = 0,
    weights: ArrayLike | None = None,
    equal_area: bool = True,
) -> NDArray[np.float64]:
    """``n`` (lat, lon) points in ``bbox = (min_lon, min_lat, max_lon, max_lat)``.

    ``equal_area`` samples uniformly on the sphere's surface (so high latitudes
    are not oversampled); otherwise uniformly in degrees. ``weights``, a 2-D grid
    over the bbox (row 0 = southern edge, column 0 = western edge), gives each
    cell's relative sampling density (e.g. population, road length). A bbox with
    ``min_lon > max_lon`` crosses the antimeridian.
    """
    min_lon, min_lat, max_lon, max_lat = (float(v) for v in bbox)
    if not (-90 <= min_lat < max_lat <= 90):
        raise ValueError(f"bad bbox latitudes {min_lat}, {max_lat}: need -90 <= min < max <= 90")
    if not (-180 <= min_lon <= 180 and -180 <= max_lon <= 180) or min_lon == max_lon:
        raise ValueError(f"bad bbox longitudes {min_lon}, {max_lon}")
    span = max_lon - min_lon if max_lon > min_lon else max_lon + 360.0 - min_lon
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if weights is None:
        w = np.ones((1, 1))
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 2 or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ValueError("weights must be a 2-D grid of finite, non-negative, not all zero")
    ny, nx = w.shape
    lat_edges = np.linspace(min_lat, max_lat, ny + 1)
    s = np.sin(np.radians(lat_edges))
    row_area = np.diff(s) if equal_area else np.diff(lat_edges)
    p = (w * row_area[:, None]).ravel()
    cells = rng.choice(p.size, size=n, p=p / p.sum())
    row, col = np.divmod(cells, nx)
    u, v = rng.random(n), rng.random(n)
    if equal_area:
        lat = np.degrees(np.arcsin(s[row] + u * (s[row + 1] - s[row])))
    else:
        lat = lat_edges[row] + u * (lat_edges[row + 1] - lat_edges[row])
    lon = normalize_lon(min_lon + (col + v) * span / nx)
    return np.column_stack([lat, lon])


# How choose_headings spreads a panorama's views (the CLI's --heading-mode choices).
HEADING_MODES = ("even", "random")


def choose_headings(pano_id: str, n: int, *, seed: int = 0, mode: str = "even") -> list[float]:
    """``n`` headings for one panorama, deterministic in (seed, pano_id).

    ``even``: evenly spaced with a random offset (full coverage, no fixed north
    bias); ``random``: independent uniform headings.
    """
    if n < 1:
        raise ValueError("need at least one heading")
    tag = int.from_bytes(hashlib.sha1(pano_id.encode()).digest()[:8], "big")
    rng = np.random.default_rng([seed, tag])
    if mode == "even":
        step = 360.0 / n
        raw = rng.random() * step + step * np.arange(n)
    elif mode == "random":
        raw = rng.random(n) * 360.0
    else:
        raise ValueError(f"unknown heading mode {mode!r}; use 'even' or 'random'")
    return [round(float(h) % 360.0, 2) for h in raw]


def collect(
    out_dir: str | os.PathLike[str],
    *,
    points: ArrayLike | None = None,
    bbox: Sequence[float] | None = None,
    n_points: int | None = None,
    weights: ArrayLike | None = None,
    equal_area: bool = True,
    headings: int = 4,
    heading_mode: str = "even",
    radius_m: int = 50,
    size: str = "640x640",
    fov: float = 90,
    pitch: float = 0,
    outdoor_only: bool = True,
    budget_usd: float | None = None,
    price_per_1000: float = 7.0,
    key: str | None = None,
    key_file: str | os.PathLike[str] | None = None,
    secret: str | None = None,
    base_url: str = DEFAULT_BASE_URL,
    rate_per_s: float | None = 20.0,
    retries: int = 5,
    backoff_s: float = 0.5,
    timeout_s: float = 30.0,
    seed: int = 0,
    progress: bool = True,
) -> tuple[pd.DataFrame, ImportReport]:
    """Collect Street View images into ``out_dir``; return their manifest and the report.

    ``points`` are (lat, lon) rows; otherwise ``n_points`` are sampled in
    ``bbox = (min_lon, min_lat, max_lon, max_lat)`` (see :func:`sample_points`).
    ``budget_usd`` (None: no cap; 0: estimate only) limits the paid image
    requests to the first ``floor(budget_usd / price_per_1000 * 1000)`` views.
    ``secret`` is the URL-signing secret (also read from
    ``$GOOGLE_MAPS_URL_SIGNING_SECRET``).
    """
    api_key = load_secret(
        key, key_file, KEY_ENV, what="Google Maps API key", option="key_file (CLI: --key-file)"
    )
    secret = secret or os.environ.get(SECRET_ENV) or None
    secrets = [api_key, secret]
    if not re.fullmatch(r"\d{1,4}x\d{1,4}", size):
        raise ValueError(f"size must look like 640x640, got {size!r}")
    if price_per_1000 <= 0:
        raise ValueError("price_per_1000 must be positive")
    pts = _points(points, bbox, n_points, weights, equal_area, seed)
    config = {
        "points_sha1": hashlib.sha1(np.ascontiguousarray(pts).tobytes()).hexdigest(),
        "n_points": len(pts),
        "headings": headings,
        "heading_mode": heading_mode,
        "radius_m": radius_m,
        "size": size,
        "fov": fov,
        "pitch": pitch,
        "outdoor_only": outdoor_only,
        "seed": seed,
    }
    client = client_args(rate_per_s, retries, backoff_s, timeout_s)
    budget = (budget_usd, price_per_1000)
    source = _StreetView(Run(out_dir, secrets, config, client), pts, base_url, budget)
    try:
        return source.collect(progress)
    except StreetViewError as e:
        # The key itself never reaches a message; where it came from does.
        raise StreetViewError(f"{e} (key from {secret_origin(key, key_file, KEY_ENV)})") from None
    finally:
        source.http.close()


Job = tuple[dict[str, Any], float]  # a panorama's metadata, a heading


class _StreetView(OnlineSource[Job]):
    """Metadata of every point (free), one job per panorama and heading within the budget,
    then the images (paid); metadata and images share one rate-limited client."""

    name = "streetview"
    state_file = STATE_FILE
    line_template = LINE

    def __init__(
        self,
        run: Run,
        pts: NDArray[np.float64],
        base_url: str,
        budget: tuple[float | None, float],  # USD (None: no cap), USD per 1000 images
    ) -> None:
        super().__init__(run)
        self.api_key, self.secret = str(run.secrets[0]), run.secrets[1]
        self.pts, self.base, self.budget = pts, base_url.rstrip("/"), budget
        self.http = Client(secrets=run.secrets, **run.client)
        self.report.counts["points"] = len(pts)

    def enumerate(self, state: JsonlState) -> list[Job]:
        c = self.config
        metas = _metadata_phase(
            self.http,
            state,
            self.pts,
            self.base,
            self.api_key,
            c["radius_m"],
            c["outdoor_only"],
            self.client["retries"],
            self.client["backoff_s"],
            self.report,
            self.progress,
        )
        jobs = _plan(metas, c["headings"], c["heading_mode"], c["seed"], self.report)
        return _budget(jobs, state, *self.budget, self.report)

    def item_key(self, item: Job) -> str:
        return _job_key(item[0]["pano_id"], item[1])

    def image_path(self, item: Job) -> Path:
        return self.out / "images" / f"{safe_name(item[0]['pano_id'])}_{item[1]:06.2f}.jpg"

    def download_client(self) -> Client:
        return self.http

    def fetch(self, client: Client, item: Job, dest: Path) -> str:
        (m, heading), c = item, self.config
        pano = m["pano_id"]
        params = {
            "size": c["size"],
            "pano": pano,
            "heading": f"{heading:.2f}",
            "fov": f"{c['fov']:g}",
            "pitch": f"{c['pitch']:g}",
            "key": self.api_key,
        }
        url = f"{self.base}/maps/api/streetview?{urlencode(params)}"
        if self.secret:
            url = sign_url(url, self.secret)
        try:
            return client.download(url, dest)
        except NotAnImageError as e:
            raise Skipped(f"panorama {pano} heading {heading}: {e}") from None
        except HTTPError as e:
            if e.status in (401, 403):
                raise StreetViewError(
                    f"Street View refused the image request (HTTP {e.status}): wrong key, "
                    f"signature or API not enabled. {e}"
                ) from None
            raise Skipped(f"panorama {pano} heading {heading}: {e}") from None

    def row(self, item: Job, dest: Path, sha1: str) -> dict[str, Any]:
        m, heading = item
        return {
            "key": f"streetview/{m['pano_id']}/{heading:.2f}",
            "source": "streetview",
            "image": str(dest),
            "latitude": m["lat"],
            "longitude": m["lng"],
            "location_id": m["pano_id"],
            "heading": heading,
            "captured": m.get("date", ""),
            "license": LICENSE,
            "attribution": m.get("copyright", "") or "© Google",
            "sha1": sha1,
        }


def _points(
    points: ArrayLike | None,
    bbox: Sequence[float] | None,
    n_points: int | None,
    weights: ArrayLike | None,
    equal_area: bool,
    seed: int,
) -> NDArray[np.float64]:
    if points is not None:
        if bbox is not None:
            raise ValueError("give either points or bbox/n_points, not both")
        arr = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        lat, lon = validate_coords(arr[:, 0], arr[:, 1])
        return np.column_stack([lat, lon])
    if bbox is None or not n_points:
        raise ValueError(
            "give points=[(lat, lon), ...] or bbox=(min_lon, min_lat, ...) and n_points"
        )
    return sample_points(n_points, bbox, seed=seed, weights=weights, equal_area=equal_area)


def _metadata_phase(
    client: Client,
    state: JsonlState,
    pts: NDArray[np.float64],
    base: str,
    api_key: str,
    radius_m: int,
    outdoor_only: bool,
    retries: int,
    backoff_s: float,
    summary: ImportReport,
    progress: bool,
) -> list[dict[str, Any]]:
    """One metadata record per point with a panorama, in point order."""
    found: list[dict[str, Any]] = []
    for i, (lat, lon) in enumerate(tqdm(pts, desc="metadata", disable=not progress)):
        rec = state.get("meta", str(i))
        if rec is None:
            params = {"location": f"{lat:.6f},{lon:.6f}", "radius": radius_m, "key": api_key}
            if outdoor_only:
                params["source"] = "outdoor"
            url = f"{base}/maps/api/streetview/metadata?{urlencode(params)}"
            try:
                rec = _metadata(client, url, retries, backoff_s)
            except HTTPError as e:
                if e.status in (401, 403):
                    raise StreetViewError(f"Street View metadata refused: {e}") from None
                summary.add("errors")
                summary.note(f"point {i} ({lat:.5f}, {lon:.5f}) skipped: {e}")
                continue
            state.put("meta", str(i), rec)
        status = rec["status"]
        if status == "OK":
            summary.add("ok")
            found.append(rec)
        elif status == "ZERO_RESULTS":
            summary.add("zero_results")
        elif status == "NOT_FOUND":
            summary.add("not_found")
        else:
            summary.add("invalid")
    return found


def _metadata(client: Client, url: str, retries: int, backoff_s: float) -> dict[str, Any]:
    """The useful part of one metadata answer; quota answers are retried, denial raises."""
    for attempt in range(retries + 1):
        data = client.get_json(url)
        if not isinstance(data, dict) or "status" not in data:
            raise HTTPError(f"unexpected answer from GET {client.redact(url)}", status=200)
        status = str(data["status"])
        if status == "OK":
            try:
                loc = data["location"]
                return {
                    "status": "OK",
                    "pano_id": str(data["pano_id"]),
                    "lat": float(loc["lat"]),
                    "lng": float(loc["lng"]),
                    "date": str(data.get("date", "")),
                    "copyright": str(data.get("copyright", "")),
                }
            except (KeyError, TypeError, ValueError):
                raise HTTPError(
                    f"OK answer without pano_id/location from GET {client.redact(url)}", status=200
                ) from None
        if status in _SKIP_STATUS or status == "INVALID_REQUEST":
            return {"status": status}
        detail = client.redact(str(data.get("error_message", "")))
        if status in _FATAL_STATUS:
            raise StreetViewError(
                f"Street View denied the request ({status}): {detail or 'check the API key'}. "
                "Is the Street View Static API enabled for this key?"
            )
        if status in ("OVER_QUERY_LIMIT", "UNKNOWN_ERROR") and attempt < retries:
            client.sleep(min(backoff_s * 2**attempt, client.max_wait_s))
            continue
        if status == "OVER_QUERY_LIMIT":
            raise StreetViewError(
                f"Street View quota exceeded (OVER_QUERY_LIMIT) after {retries + 1} tries: "
                f"{detail}. Rerun later with the same arguments to resume."
            )
        raise HTTPError(f"status {status} from GET {client.redact(url)}: {detail}", status=200)
    raise AssertionError("unreachable")


def _plan(
    metas: list[dict[str, Any]], headings: int, mode: str, seed: int, summary: ImportReport
) -> list[tuple[dict[str, Any], float]]:
    seen: set[str] = set()
    jobs = []
    for m in metas:
        if m["pano_id"] in seen:
            summary.add("duplicate_panoramas")
            continue
        seen.add(m["pano_id"])
        jobs += [(m, h) for h in choose_headings(m["pano_id"], headings, seed=seed, mode=mode)]
    summary.counts["panoramas"] = len(seen)
    summary.counts["images_planned"] = len(jobs)
    return jobs


def _job_key(pano_id: str, heading: float) -> str:
    return f"{pano_id}@{heading:.2f}"


def _budget(
    jobs: list[tuple[dict[str, Any], float]],
    state: JsonlState,
    budget_usd: float | None,
    price: float,
    summary: ImportReport,
) -> list[tuple[dict[str, Any], float]]:
    """The jobs within budget; prints the cost estimate before anything is paid."""
    n = len(jobs)
    if budget_usd is None:
        allowed = jobs
    else:
        cap = max(0, math.floor(budget_usd / price * 1000 + 1e-9))
        allowed = jobs[:cap]
    summary.counts["images_allowed"] = len(allowed)
    done = sum(state.has("img", _job_key(m["pano_id"], h)) for m, h in allowed)
    to_pay = len(allowed) - done
    print(
        f"Street View: {n} images planned ({summary['panoramas']} panoramas x headings); "
        f"estimated cost ${n * price / 1000:.2f} at ${price:.2f} per 1000 images"
    )
    if len(allowed) < n:
        print(
            f"Budget ${budget_usd:.2f} covers {len(allowed)} of {n} images: "
            f"stopping after the first {len(allowed)}"
        )
    print(
        f"Street View: {done} already downloaded, {to_pay} to download now, "
        f"estimated cost ${to_pay * price / 1000:.2f}"
    )
    return allowed
