"""`img2loc eval`: run models over evaluation photos, beside baselines, and write a report.

Baselines are computed on the same photos in the same run:

* ``oracle``: every photo guessed at the nearest cell point (the best the cell
  set allows);
* ``constant``: every photo guessed at the one point with the best mean GeoGuessr
  score over the training photos (``--train-data``); without training data the
  evaluation set's own best constant stands in, marked as such (it has seen the
  answers, so it flatters the baseline);
* ``constant_prior``: the same under the model's prior over where people take
  photos (cells built with ``--prior``), the answer of a model that knows nothing
  of the photo — what "worse than a constant" means for everyday photos;
* ``nearest_neighbour``: the location of the most similar training photo by
  cosine similarity of backbone embeddings (checkpoints; exported models only
  when they expose embeddings), over up to ``train_limit`` training photos.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from img2loc.data.places import reverse_geocode
from img2loc.data.tables import TableError
from img2loc.evaluation.data import load_data, subsample
from img2loc.evaluation.metrics import AGGREGATES
from img2loc.evaluation.models import EvalModel, load_model
from img2loc.evaluation.runner import (
    Collector,
    Predictions,
    decode_threads,
    embed_all,
    predict_all,
)
from img2loc.geo.cells import CellSet
from img2loc.geo.decode import DEFAULT_RULE, best_constant, prior_constant
from img2loc.geo.distance import haversine_km

__all__ = ["DEFAULT_RULE", "EvalOptions", "Evaluation", "ModelResult", "run_evaluation"]


@dataclass
class EvalOptions:
    """Everything `img2loc eval` can set besides the models, data and output folder."""

    split: str | None = None
    image_dir: Path | None = None
    train_data: Sequence[Path] = ()
    train_split: str = "train"
    train_limit: int = 10000
    group_by: str | None = None
    aggregate: str = "mean"
    batch_size: int = 32
    workers: int | None = None
    limit: int | None = None
    sheet_size: int = 24
    seed: int = 0
    progress: bool = True


Guess = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]  # lat, lon, km


@dataclass
class ModelResult:
    """A model's predictions turned into locations and errors (NaN: not predicted)."""

    model: EvalModel
    preds: Predictions
    guesses: dict[str, Guess]
    group_guesses: dict[str, Guess]
    nn: Guess | None
    nn_note: str = ""
    #: Best single guess under the model's photo prior (None: its cells carry no prior).
    prior_constant: tuple[float, float] | None = None


@dataclass
class TrainReference:
    """What the baselines know of the training set."""

    lat: float
    lon: float
    source: str  # "train" or "eval"
    n: int = 0
    table: pd.DataFrame | None = None  # photos whose embeddings form the NN index
    embeddings: dict[int, NDArray[np.float32]] = field(default_factory=dict)  # by model
    note: str = ""
    overlap: int = 0  # evaluation photos also in the training data


@dataclass
class Evaluation:
    """Everything a report is made from."""

    table: pd.DataFrame
    results: list[ModelResult]
    errors: list[tuple[str, str]]  # (image, reason): unreadable photos and skipped inputs
    failed: NDArray[np.bool_]
    groups: pd.DataFrame | None
    train: TrainReference
    data: list[str]
    splits: dict[str, str]
    options: EvalOptions
    seconds: float  # all of it
    predict_seconds: float  # decoding photos and running the models
    # Row of ``groups`` per photo (None without --group-by): paired comparisons resample places.
    group_codes: NDArray[np.int64] | None = None


def cell_guesses(cells: CellSet, idx: NDArray[np.int64], lat: Any, lon: Any) -> Guess:
    """Centres of the predicted cells and their distance to the truth (NaN where idx < 0)."""
    ok = idx >= 0
    safe = np.maximum(idx, 0)
    plat = np.where(ok, cells.center_lat[safe], np.nan)
    plon = np.where(ok, cells.center_lon[safe], np.nan)
    return plat, plon, haversine_km(plat, plon, lat, lon)


def point_guesses(
    point: tuple[NDArray[np.float64], NDArray[np.float64]], lat: Any, lon: Any
) -> Guess:
    """Guessed points and their distance to the truth (NaN where not decoded)."""
    return point[0], point[1], haversine_km(point[0], point[1], lat, lon)


def _unique_names(models: list[EvalModel]) -> None:
    seen: dict[str, int] = {}
    for m in models:
        k = seen.get(m.name, 0)
        seen[m.name] = k + 1
        if k:
            m.name = f"{m.name} ({k + 1})"


def _train_reference(
    opts: EvalOptions, table: pd.DataFrame, models: list[EvalModel], workers: int
) -> TrainReference:
    if not opts.train_data:
        lat, lon = best_constant(table["latitude"], table["longitude"], seed=opts.seed)
        return TrainReference(lat, lon, "eval", note="pass --train-data to compute it")
    train = load_data(list(opts.train_data), opts.train_split, opts.image_dir).table
    lat, lon = best_constant(train["latitude"], train["longitude"], seed=opts.seed)
    ref = TrainReference(lat, lon, "train", n=len(train))
    ref.overlap = int(table["key"].isin(set(train["key"])).sum())
    embedders = [k for k, m in enumerate(models) if m.can_embed]
    if not embedders:
        ref.note = "exported models give no embeddings; evaluate the checkpoint for it"
        return ref
    if opts.train_limit <= 0:
        ref.note = "disabled (--train-limit 0)"
        return ref
    sample = subsample(train, opts.train_limit, opts.seed)
    feats, ok = embed_all(
        [models[k] for k in embedders],
        sample["image"].tolist(),
        opts.batch_size,
        workers,
        opts.progress,
    )
    ref.table = sample[ok].reset_index(drop=True)
    if ref.table.empty:
        ref.note = "no training photo could be read"
        return ref
    ref.embeddings = dict(zip(embedders, feats, strict=True))
    return ref


def reverse_places(lat: NDArray[np.float64], lon: NDArray[np.float64]) -> list[dict[str, str]]:
    """Nearest town of each point (``city``, ``cc``, ``continent``): evaluation's one geocoder."""
    return reverse_geocode(lat, lon) if len(lat) else []


def place_labels(places: list[dict[str, str]]) -> list[str]:
    """``"town, CC"`` per place, as the report names guesses and truths."""
    return [f"{p['city']}, {p['cc']}" for p in places]


def _places(table: pd.DataFrame) -> pd.DataFrame:
    places = reverse_places(table["latitude"].to_numpy(), table["longitude"].to_numpy())
    table["country"] = [p["cc"] for p in places]
    table["continent"] = [p["continent"] for p in places]
    return table


def run_evaluation(
    model: str | Path | None,
    data: Sequence[Path],
    compare: Sequence[str | Path] = (),
    options: EvalOptions | None = None,
) -> Evaluation:
    """Load models and photos, run every model once over every photo, locate the guesses."""
    t0 = time.perf_counter()
    opts = options or EvalOptions()
    if opts.aggregate not in AGGREGATES:
        raise ValueError(f"--aggregate must be one of {AGGREGATES}, got {opts.aggregate!r}")
    models = [load_model(model), *(load_model(m) for m in compare)]
    workers = decode_threads(models, opts.workers)
    _unique_names(models)
    for m in models:
        m.share_cores(workers)
    loaded = load_data(list(data), opts.split, opts.image_dir)
    table = loaded.table
    gcol = opts.group_by
    if gcol is not None and gcol not in table:
        raise TableError(f"--group-by {gcol}: no such column (columns: {list(table.columns)})")
    table = subsample(table, opts.limit, opts.seed, gcol)
    codes = None
    if gcol is not None:
        # Views of one place must be consecutive for the streaming aggregation; places of
        # different DATA arguments never merge, even when their names collide.
        place = ["dataset", gcol]
        table = table.sort_values([*place, "key"], kind="stable").reset_index(drop=True)
        codes = table.groupby(place, sort=False).ngroup().to_numpy(np.int64)
    table = _places(table)
    lat, lon = table["latitude"].to_numpy(), table["longitude"].to_numpy()
    train = _train_reference(opts, table, models, workers)
    collectors = [
        Collector(m, lat, lon, DEFAULT_RULE, codes, opts.aggregate, train.embeddings.get(k))
        for k, m in enumerate(models)
    ]
    t1 = time.perf_counter()
    preds, errors = predict_all(
        collectors, table["image"].tolist(), opts.batch_size, workers, opts.progress
    )
    predict_seconds = time.perf_counter() - t1
    groups = None
    if codes is not None:
        first = np.unique(codes, return_index=True)[1]
        cols = [gcol, "dataset", "latitude", "longitude", "country", "continent"]
        groups = table.iloc[first][cols]
        groups = groups.reset_index(drop=True)
    results = [
        _locate(k, m, p, table, groups, train)
        for k, (m, p) in enumerate(zip(models, preds, strict=True))
    ]
    failed = np.zeros(len(table), bool)
    failed[[r for r, _ in errors]] = True
    return Evaluation(
        table=table,
        results=results,
        errors=[(table["image"].iat[r], why) for r, why in errors] + loaded.skipped,
        failed=failed,
        groups=groups,
        train=train,
        data=[str(p) for p in data],
        splits=loaded.splits,
        options=opts,
        seconds=time.perf_counter() - t0,
        predict_seconds=predict_seconds,
        group_codes=codes,
    )


def _locate(
    k: int,
    model: EvalModel,
    preds: Predictions,
    table: pd.DataFrame,
    groups: pd.DataFrame | None,
    train: TrainReference,
) -> ModelResult:
    lat, lon = table["latitude"].to_numpy(), table["longitude"].to_numpy()
    guesses = {r: point_guesses(pt, lat, lon) for r, pt in preds.point.items()}
    group_guesses = {}
    if groups is not None:
        glat, glon = groups["latitude"].to_numpy(), groups["longitude"].to_numpy()
        group_guesses = {r: point_guesses(pt, glat, glon) for r, pt in preds.group_point.items()}
    nn, note = None, train.note
    if k in train.embeddings and train.table is not None:
        hit = preds.nn >= 0
        rows = train.table.iloc[np.maximum(preds.nn, 0)]
        nlat = np.where(hit, rows["latitude"].to_numpy(), np.nan)
        nlon = np.where(hit, rows["longitude"].to_numpy(), np.nan)
        nn = (nlat, nlon, haversine_km(nlat, nlon, lat, lon))
    elif train.embeddings:
        note = "this model gives no embeddings"
    return ModelResult(model, preds, guesses, group_guesses, nn, note, prior_constant(model.cells))
