"""`img2loc geoguessr`: simulated GeoGuessr games on held-out photos.

A game is ``rounds`` (5) places with known locations; the model guesses each
place and earns ``5000 * exp(-10 d / D)`` points (``D``: the map's size, 14,927 km
for the world map), so a game totals 0-25,000. Four players are compared on the
very same games (a paired comparison: differences have much tighter intervals
than the totals):

* ``hierarchical`` (argmax) vs ``score`` (score-optimal, see
  :func:`img2loc.geo.decode.score_optimal`) guesses;
* 1 view (a random view of the place, as in a no-move round) vs up to N views
  combined (:mod:`img2loc.geo.views`), as a player who looks around.

Places are the photos' ``location_id`` groups (Street View sets), else single
photos; a 360° panorama is one place whose views are rendered from it. Games draw
places without replacement until the pool is used up (so games share no place
while the pool allows), each game's places distinct. Each photo is read and
predicted once; games only re-score stored guesses, so thousands of games cost
nothing extra.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from tqdm import tqdm

from img2loc.data.images import ImageError
from img2loc.data.tables import TableError
from img2loc.evaluation.data import load_data
from img2loc.evaluation.metrics import bootstrap_ci
from img2loc.evaluation.models import EvalModel
from img2loc.evaluation.runner import as_is, decode_threads, read_photo
from img2loc.geo.cells import CellSet
from img2loc.geo.decode import DECODERS
from img2loc.geo.distance import WORLD_MAP_SIZE_KM, geoguessr_score, haversine_km
from img2loc.geo.views import check_aggregate, combine_views
from img2loc.inference.panorama import DEFAULT_PANO_VIEWS
from img2loc.inference.stream import run_stream

#: The two guessing rules compared: argmax of the cell hierarchy, and score-optimal.
RULES = ("hierarchical", "score")
MAX_GAME = 25_000


@dataclass
class Places:
    """Photos grouped into places: ``photos`` rows and, per place, its location and rows."""

    photos: pd.DataFrame
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    names: list[str]
    rows: list[NDArray[np.int64]]  # photo rows of each place
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.names)


def load_places(
    data: Sequence[Path],
    split: str | None = None,
    image_dir: Path | None = None,
    group_by: str | None = "location_id",
) -> Places:
    """Places from shard folders (test, else val split), manifests or CSV tables.

    Photos sharing a non-empty ``group_by`` value (within one DATA argument) are
    views of one place; photos without one are places of their own.
    """
    loaded = load_data(list(data), split, image_dir)
    t = loaded.table
    if group_by is not None and group_by in t:
        g = t[group_by].fillna("").astype(str)
        g = g.where(g != "", "photo:" + t["key"].astype(str))
    else:
        g = "photo:" + t["key"].astype(str)
    place = t["dataset"].astype(str) + "|" + g
    codes, uniq = pd.factorize(place, sort=True)
    order = np.lexsort((t["key"].astype(str).to_numpy(), codes))
    t = t.iloc[order].reset_index(drop=True)
    codes = codes[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    ends = np.r_[starts[1:], codes.size]
    rows = [np.arange(a, b, dtype=np.int64) for a, b in zip(starts, ends, strict=True)]
    names = [str(uniq[codes[a]]).split("|", 1)[1] for a in starts]
    return Places(
        t,
        t["latitude"].to_numpy(np.float64)[starts],
        t["longitude"].to_numpy(np.float64)[starts],
        names,
        rows,
        list(loaded.skipped),
    )


def schedule_games(
    pool: Sequence[int], games: int, rounds: int, rng: np.random.Generator
) -> NDArray[np.int64]:
    """(games, rounds) places: drawn without replacement, refilled when the pool runs out.

    The places of one game are always distinct.
    """
    pool = list(pool)
    if len(pool) < rounds:
        raise TableError(
            f"a {rounds}-round game needs at least {rounds} places; the data has {len(pool)}"
        )
    out = np.empty((games, rounds), np.int64)
    queue: list[int] = []
    for k in range(games):
        if len(queue) < rounds:
            left = set(queue)
            queue += [int(p) for p in rng.permutation(pool) if int(p) not in left]
        out[k] = queue[:rounds]
        queue = queue[rounds:]
    return out


def predict_photos(
    model: EvalModel,
    refs: Sequence[str],
    pano_views: int = DEFAULT_PANO_VIEWS,
    batch_size: int = 32,
    workers: int = 2,
    progress: bool = True,
) -> Iterator[tuple[int, NDArray[np.float32] | None, str | None]]:
    """(index, (V, C) probabilities or None, error) per photo, in order.

    Photos go through the image stream of `img2loc predict` (panoramas rendered
    into views), decoded in threads a bounded window ahead of the model.
    """
    bar = tqdm(total=len(refs), desc="predicting", unit="img", disable=not progress)
    for b, probs in run_stream(
        refs,
        model.preprocess,
        model.run,
        batch_size=batch_size,
        workers=max(1, workers),
        pano_views=pano_views,
        opener=read_photo,
        reason=as_is,
    ):
        for i, (d, p) in enumerate(zip(b.images, probs, strict=True)):
            yield b.start + i, p, str(d) if isinstance(d, ImageError) else None
        bar.update(len(b))
    bar.close()


def decode_rows(
    probs: NDArray[Any], cells: CellSet, rules: Sequence[str] = RULES, chunk: int = 256
) -> dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """Guessed (lat, lon) per row of probabilities for each rule."""
    out: dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]] = {}
    for r in rules:
        lat, lon = np.full(len(probs), np.nan), np.full(len(probs), np.nan)
        for a in range(0, len(probs), chunk):
            _, la, lo = DECODERS[r](probs[a : a + chunk], cells)
            lat[a : a + chunk], lon[a : a + chunk] = la, lo
        out[r] = (lat, lon)
    return out


@dataclass
class Guesses:
    """What the model guesses for each played place, with 1 view and with up to N views."""

    #: rule -> (lat, lon) per place with up to N views combined (NaN: not played).
    multi: dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]
    #: rule -> (lat, lon) per view row; ``view_rows[p]`` are place p's rows.
    single: dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]
    view_rows: dict[int, NDArray[np.int64]]
    n_views: NDArray[np.int64]  # views combined per place (0: not played / unreadable)


def place_guesses(
    places: Places,
    probs: dict[int, NDArray[np.float32]],
    played: Sequence[int],
    cells: CellSet,
    views: int,
    aggregate: str,
    rng: np.random.Generator,
) -> Guesses:
    """Decode every played place: each of its views alone, and up to ``views`` combined.

    A place with more views than ``views`` keeps a random subset (drawn once).
    """
    single_rows: list[NDArray[np.float32]] = []
    multi_rows: list[NDArray[np.float64]] = []
    multi_places: list[int] = []
    view_rows: dict[int, NDArray[np.int64]] = {}
    n_views = np.zeros(len(places), np.int64)
    at = 0
    for p in played:
        parts = [probs[r] for r in places.rows[p] if r in probs]
        if not parts:
            continue
        v = np.concatenate(parts)
        if len(v) > views:
            v = v[np.sort(rng.choice(len(v), views, replace=False))]
        single_rows.append(v)
        view_rows[p] = np.arange(at, at + len(v), dtype=np.int64)
        at += len(v)
        multi_rows.append(combine_views(v, aggregate, len(cells)))
        multi_places.append(p)
        n_views[p] = len(v)
    # Cells, plus the in-domain weight when the model gives one.
    width = single_rows[0].shape[1] if single_rows else len(cells)
    single = decode_rows(
        np.concatenate(single_rows) if single_rows else np.zeros((0, width), np.float32), cells
    )
    m = decode_rows(np.asarray(multi_rows).reshape(-1, width), cells)
    multi = {}
    for r, (la, lo) in m.items():
        lat, lon = np.full(len(places), np.nan), np.full(len(places), np.nan)
        lat[multi_places], lon[multi_places] = la, lo
        multi[r] = (lat, lon)
    return Guesses(multi, single, view_rows, n_views)


def play_games(
    schedule: NDArray[np.int64],
    places: Places,
    guesses: Guesses,
    rng: np.random.Generator,
    map_size_km: float = WORLD_MAP_SIZE_KM,
) -> dict[str, dict[str, NDArray[np.float64]]]:
    """Round scores and distances (G, R) per player ``RULE/VIEWS``, e.g. ``hierarchical/1``.

    The single view of each round is drawn at random and shared by both rules.
    """
    tl, tn = places.lat[schedule], places.lon[schedule]
    pick = np.empty(schedule.shape, np.int64)
    for idx, p in np.ndenumerate(schedule):
        rows = guesses.view_rows[int(p)]
        pick[idx] = rows[rng.integers(len(rows))]
    n = int(guesses.n_views[schedule].max()) if schedule.size else 1
    out: dict[str, dict[str, NDArray[np.float64]]] = {}
    for rule in RULES:
        players = [("1", (guesses.single[rule][0][pick], guesses.single[rule][1][pick]))]
        if n > 1:  # with one view per place the two players are the same
            players.append(
                (str(n), (guesses.multi[rule][0][schedule], guesses.multi[rule][1][schedule]))
            )
        for label, (glat, glon) in players:
            km = haversine_km(glat, glon, tl, tn)
            out[f"{rule}/{label}"] = {"km": km, "score": geoguessr_score(km, map_size_km)}
    return out


def _interval(x: NDArray[np.float64], seed: int) -> dict[str, Any]:
    lo, hi = bootstrap_ci(x, n_boot=2000, seed=seed)
    return {"mean": float(np.mean(x)), "ci95": [lo, hi]}


def summarize_games(
    rounds: dict[str, dict[str, NDArray[np.float64]]], seed: int = 0
) -> dict[str, Any]:
    """Mean game total with a 95% bootstrap interval per player, and paired differences."""
    players: dict[str, Any] = {}
    totals = {k: v["score"].sum(axis=1) for k, v in rounds.items()}
    for k, v in rounds.items():
        players[k] = {
            "game_total": _interval(totals[k], seed),
            "round_mean": float(v["score"].mean()),
            "median_km": float(np.median(v["km"])),
            "rounds_5000": int((v["km"] <= 0.025).sum()),  # within 25 m: a perfect round
        }
    keys = list(rounds)
    multi = next((k.split("/")[1] for k in keys if not k.endswith("/1")), "1")
    diffs: dict[str, Any] = {}
    for nv in ("1", multi):
        a, b = f"score/{nv}", f"hierarchical/{nv}"
        if a in totals and b in totals:
            diffs[f"score - hierarchical ({nv} view{'s' * (nv != '1')})"] = _interval(
                totals[a] - totals[b], seed
            )
    if multi != "1":
        for rule in RULES:
            diffs[f"{multi} views - 1 view ({rule})"] = _interval(
                totals[f"{rule}/{multi}"] - totals[f"{rule}/1"], seed
            )
    return {"players": players, "differences": diffs}


@dataclass
class GameOptions:
    """Everything `img2loc geoguessr` can set besides the model and data."""

    games: int = 100
    rounds: int = 5
    views: int = 4
    seed: int = 0
    aggregate: str = "mean"
    pano_views: int = DEFAULT_PANO_VIEWS
    map_size_km: float = WORLD_MAP_SIZE_KM
    split: str | None = None
    image_dir: Path | None = None
    group_by: str | None = "location_id"
    batch_size: int = 32
    workers: int | None = None
    progress: bool = True


def run_games(
    model: EvalModel,
    data: Sequence[Path],
    opts: GameOptions | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Play ``opts.games`` simulated games; the JSON-ready results (see :func:`summarize_games`)."""
    o = opts or GameOptions()
    check_aggregate(o.aggregate)
    if o.games < 1 or o.rounds < 1 or o.views < 1:
        raise ValueError("--games, --rounds and --views must be at least 1")
    places = load_places(data, o.split, o.image_dir, o.group_by)
    rng = np.random.default_rng(o.seed)
    workers = decode_threads([model], o.workers)
    model.share_cores(workers)
    refs = places.photos["image"].tolist()
    probs: dict[int, NDArray[np.float32]] = {}
    errors: dict[int, str] = {}
    pool = list(range(len(places)))
    # Schedule, predict the photos of the scheduled places, and reschedule without the
    # places none of whose photos could be read (rare), until every round is playable.
    while True:
        schedule = schedule_games(pool, o.games, o.rounds, np.random.default_rng(o.seed))
        played = sorted({int(p) for p in np.unique(schedule)})
        need = [
            int(r) for p in played for r in places.rows[p] if r not in probs and r not in errors
        ]
        for k, pr, err in predict_photos(
            model,
            [refs[r] for r in need],
            o.pano_views,
            o.batch_size,
            workers,
            o.progress,
        ):
            if pr is None:
                errors[need[k]] = err or "unreadable"
            else:
                probs[need[k]] = pr
        dead = {p for p in played if not any(r in probs for r in places.rows[p])}
        if not dead:
            break
        pool = [p for p in pool if p not in dead]
        if log:
            log(f"{len(dead)} place(s) without a readable photo left out")
    guesses = place_guesses(places, probs, played, model.cells, o.views, o.aggregate, rng)
    rounds = play_games(schedule, places, guesses, rng, o.map_size_km)
    summary = summarize_games(rounds, o.seed)
    nv = guesses.n_views[played]
    return {
        "model": str(model.path),
        "model_name": model.name,
        "data": [str(p) for p in data],
        "games": o.games,
        "rounds": o.rounds,
        "views": o.views,
        "aggregate": o.aggregate,
        "seed": o.seed,
        "map_size_km": o.map_size_km,
        "places": len(places),
        "places_played": len(played),
        "views_per_place": {
            str(int(k)): int(c) for k, c in zip(*np.unique(nv, return_counts=True), strict=True)
        },
        "photos_predicted": len(probs),
        "photos_failed": [[refs[r], why] for r, why in sorted(errors.items())],
        "skipped_inputs": [list(s) for s in places.skipped],
        **summary,
        "game_totals": {
            k: [round(float(x), 1) for x in v["score"].sum(axis=1)] for k, v in rounds.items()
        },
    }


def _rule_name(rule: str) -> str:
    return {"hierarchical": "argmax (hierarchical)", "score": "score-optimal"}.get(rule, rule)


def format_results(res: dict[str, Any]) -> list[str]:
    """The human-readable table of :func:`run_games` results."""
    players = res["players"]
    cols = sorted({k.split("/")[1] for k in players}, key=int)
    w = 30
    lines = [
        f"GeoGuessr: {res['games']} games x {res['rounds']} rounds on {', '.join(res['data'])}",
        f"  model {res['model_name']}; {res['places_played']} of {res['places']} places played; "
        f"views per place {res['views_per_place']} ({res['aggregate']} of probabilities)",
        "",
        "mean game total (0-25,000) [95% CI]".ljust(w)
        + "".join(f"{c + ' view' + 's' * (c != '1'):>26}" for c in cols),
    ]
    for rule in RULES:
        row = _rule_name(rule).ljust(w)
        for c in cols:
            g = players[f"{rule}/{c}"]["game_total"]
            cell = f"{g['mean']:,.0f} [{g['ci95'][0]:,.0f}, {g['ci95'][1]:,.0f}]"
            row += f"{cell:>26}"
        lines.append(row)
    lines.append("")
    lines.append("median error (km)")
    for rule in RULES:
        row = _rule_name(rule).ljust(w)
        for c in cols:
            row += f"{players[f'{rule}/{c}']['median_km']:>26,.0f}"
        lines.append(row)
    lines.append("")
    lines.append("paired differences of game totals [95% CI]:")
    for name, d in res["differences"].items():
        lines.append(
            f"  {name:<38} {d['mean']:+9,.0f} [{d['ci95'][0]:+,.0f}, {d['ci95'][1]:+,.0f}]"
        )
    if res["photos_failed"]:
        lines.append(f"{len(res['photos_failed'])} photo(s) could not be read (see the JSON)")
    return lines
