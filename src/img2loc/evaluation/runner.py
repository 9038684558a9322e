"""Run models over photos in one streaming pass.

Photos go through the image stream of `img2loc predict`
(:mod:`img2loc.inference.stream`): threads decode the next photos while the
models run on the current batch; each photo is read once however many models
are compared, and preprocessed once per distinct preprocessing.
Nothing of size photos x cells is kept: every batch is decoded into cells,
F1 counts and (for multi-view) running per-place sums straight away, which
works because the photos of one place are consecutive (the caller sorts).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from img2loc.data.io import read_bytes
from img2loc.evaluation.metrics import (
    multilabel_counts,
    nearest_rows,
    normalize_rows,
    segment_sums,
    view_values,
    views_to_probs,
)
from img2loc.evaluation.models import EvalModel
from img2loc.geo.decode import DECODERS, cell_confidence, leaf_distribution, split_in_domain
from img2loc.inference.images import ImageBytes
from img2loc.inference.preprocess import PreprocessConfig
from img2loc.inference.stream import decoded_batches


@dataclass
class Batch:
    """Rows that decoded, one input array per preprocessing, and the rows that failed."""

    rows: NDArray[np.int64]
    inputs: list[NDArray[np.float32]]
    errors: list[tuple[int, str]]


def read_photo(ref: str) -> ImageBytes:
    """The encoded photo at ``ref`` (a file, URL or shard member), read in a decoding thread."""
    # Read as `img2loc predict` reads a file, so both decode the same pixels; also reads
    # photos inside tar/zip shards.
    return ImageBytes(ref, read_bytes(ref))


def decode_threads(models: Sequence[EvalModel], requested: int | None = None) -> int:
    """Image decoding threads: as many as `img2loc predict` uses (all cores) for exported
    models, whose ONNX Runtime threads do not spin; at most 4 beside torch, whose threads
    do (see :meth:`EvalModel.share_cores`)."""
    if requested:
        return max(1, requested)
    cores = os.cpu_count() or 1
    return cores if all(m.kind == "onnx" for m in models) else min(4, cores)


def as_is(name: str, e: Exception) -> str:
    """An unreadable photo's reason as the error words it (a report lists them so)."""
    return str(e)


def iter_batches(
    refs: Sequence[str],
    configs: list[PreprocessConfig],
    batch_size: int = 32,
    workers: int = 2,
    desc: str = "evaluating",
    progress: bool = True,
) -> Iterator[Batch]:
    """Decoded batches in order, from the image stream `img2loc predict` runs on.

    ``Batch.inputs[k]`` is the input for ``configs[k]``; give each distinct
    preprocessing once (see :func:`distinct`).
    """
    bar = tqdm(total=len(refs), desc=desc, unit="img", disable=not progress)
    workers = max(1, workers)
    stream = decoded_batches(
        refs, configs, batch_size=batch_size, workers=workers, opener=read_photo, reason=as_is
    )
    for b in stream:
        errors = [(r, str(e)) for r, e in b.errors]
        yield Batch(b.rows, [b.inputs(k) for k in range(len(configs))], errors)
        bar.update(len(b))
    bar.close()


def distinct(configs: list[PreprocessConfig]) -> tuple[list[PreprocessConfig], list[int]]:
    """(each preprocessing once, position of every model's in that list)."""
    uniq = list(dict.fromkeys(configs))
    return uniq, [uniq.index(c) for c in configs]


def _nan_points(n: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    return np.full(n, np.nan), np.full(n, np.nan)


@dataclass
class Predictions:
    """One model's guesses: per photo, and per place when views are grouped.

    ``cell[rule]`` holds the predicted cell index per photo (-1: not decoded) and
    ``point[rule]`` the guessed (lat, lon) arrays (NaN: not decoded; a cell centre
    except for the ``score`` rule); ``confidence`` the probability that the photo lies
    in the default rule's cell (as ``img2loc predict`` shows it) and ``in_cell``
    whether it does; ``nn`` the nearest training row per photo (nearest-neighbour
    baseline, -1 when not computed); ``in_domain`` the weight the model's own answer
    kept (NaN for a model without an in-domain score; below 0.5: a fallback answer).
    """

    cell: dict[str, NDArray[np.int64]]
    point: dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]
    confidence: NDArray[np.float32]
    in_cell: NDArray[np.bool_]
    f1_counts: NDArray[np.int64]
    nn: NDArray[np.int64]
    group_cell: dict[str, NDArray[np.int64]] = field(default_factory=dict)
    group_point: dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]] = field(
        default_factory=dict
    )
    group_views: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    group_f1_counts: NDArray[np.int64] = field(default_factory=lambda: np.zeros(3, np.int64))
    in_domain: NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))


class Collector:
    """Turns one model's batches of probabilities into :class:`Predictions`."""

    def __init__(
        self,
        model: EvalModel,
        lat: NDArray[np.float64],
        lon: NDArray[np.float64],
        default_rule: str,
        group_codes: NDArray[np.int64] | None = None,
        aggregate: str = "mean",
        train_embeddings: NDArray[np.float32] | None = None,
    ) -> None:
        n = lat.size
        self.model, self.lat, self.lon = model, lat, lon
        self.default_rule = default_rule
        self.out = Predictions(
            cell={r: np.full(n, -1, np.int64) for r in DECODERS},
            point={r: _nan_points(n) for r in DECODERS},
            confidence=np.full(n, np.nan, np.float32),
            in_cell=np.zeros(n, bool),
            f1_counts=np.zeros(3, np.int64),
            nn=np.full(n, -1, np.int64),
            in_domain=np.full(n, np.nan, np.float32),
        )
        self.codes = group_codes
        self.aggregate = aggregate
        self.index = None if train_embeddings is None else normalize_rows(train_embeddings)
        if group_codes is not None:
            g = int(group_codes.max()) + 1 if group_codes.size else 0
            # First row of each group gives the place's true location.
            self.group_first = np.full(g, -1, np.int64)
            uniq, first = np.unique(group_codes, return_index=True)
            self.group_first[uniq] = first
            self.out.group_cell = {r: np.full(g, -1, np.int64) for r in DECODERS}
            self.out.group_point = {r: _nan_points(g) for r in DECODERS}
            self.out.group_views = np.zeros(g, np.int64)
        # Largest in-domain weight of each place's views (a model with an in-domain score).
        self.group_keep: NDArray[np.float64] | None = None
        self._carry: tuple[int, NDArray[np.float64], int] | None = None

    def add(self, rows: NDArray[np.int64], x: NDArray[np.float32]) -> None:
        """Run the model on one batch and record what it says."""
        if rows.size == 0:
            return
        want_emb = self.index is not None
        probs, emb = self.model.run_embed(x) if want_emb else (self.model.run(x), None)
        if want_emb and emb is None:
            emb = self.model.embed(x)
        o = self.out
        for rule, fn in DECODERS.items():
            o.cell[rule][rows], o.point[rule][0][rows], o.point[rule][1][rows] = fn(
                probs, self.model.cells
            )
        best = o.cell[self.default_rule][rows]
        # The confidence `img2loc predict` shows, and whether it came true.
        leaves, dist = leaf_distribution(probs, self.model.cells)
        o.confidence[rows] = cell_confidence(leaves, dist, self.model.cells, best)
        labels = self.model.cells.labels(self.lat[rows], self.lon[rows])
        o.in_cell[rows] = (labels == best[:, None]).any(axis=1)
        targets = self.model.cells.multi_hot(self.lat[rows], self.lon[rows])
        cell_probs, keep = split_in_domain(probs, self.model.cells)
        o.f1_counts += multilabel_counts(cell_probs, targets)
        if keep is not None:
            o.in_domain[rows] = keep
        if emb is not None and self.index is not None:
            o.nn[rows] = nearest_rows(emb, self.index)
        if self.codes is not None:
            self._add_views(self.codes[rows], probs)

    def _add_views(self, codes: NDArray[np.int64], probs: NDArray[np.float32]) -> None:
        n = len(self.model.cells)
        if probs.shape[1] == n + 1:
            # A place keeps its views' largest in-domain weight (see img2loc.geo.views);
            # codes index places globally, so a place split across batches needs no carry.
            if self.group_keep is None:
                self.group_keep = np.zeros(self.group_first.size)
            np.maximum.at(self.group_keep, codes, probs[:, n])
        seg, sums, counts = segment_sums(view_values(probs[:, :n], self.aggregate), codes)
        if self._carry is not None:
            code, s, c = self._carry
            if seg[0] == code:
                sums[0] += s
                counts[0] += c
            else:
                self._finish_groups(np.array([code]), s[None], np.array([c]))
        # The batch's last place may go on in the next batch.
        self._carry = (int(seg[-1]), sums[-1], int(counts[-1]))
        if seg.size > 1:
            self._finish_groups(seg[:-1], sums[:-1], counts[:-1])

    def _finish_groups(
        self, codes: NDArray[np.int64], sums: NDArray[np.float64], counts: NDArray[np.int64]
    ) -> None:
        p = views_to_probs(sums, counts, self.aggregate)
        if self.group_keep is not None:
            p = np.c_[p, self.group_keep[codes]]
        o = self.out
        for rule, fn in DECODERS.items():
            (
                o.group_cell[rule][codes],
                o.group_point[rule][0][codes],
                o.group_point[rule][1][codes],
            ) = fn(p, self.model.cells)
        o.group_views[codes] = counts
        first = self.group_first[codes]
        o.group_f1_counts += multilabel_counts(
            split_in_domain(p, self.model.cells)[0],
            self.model.cells.multi_hot(self.lat[first], self.lon[first]),
        )

    def finish(self) -> Predictions:
        """Close the last open place and return the predictions."""
        if self._carry is not None:
            code, s, c = self._carry
            self._finish_groups(np.array([code]), s[None], np.array([c]))
            self._carry = None
        return self.out


def embed_all(
    models: list[EvalModel],
    refs: Sequence[str],
    batch_size: int,
    workers: int,
    progress: bool = True,
) -> tuple[list[NDArray[np.float32]], NDArray[np.bool_]]:
    """Embeddings of every photo for each model, and which photos decoded."""
    configs, which = distinct([m.preprocess for m in models])
    feats: list[list[NDArray[np.float32]]] = [[] for _ in models]
    ok = np.zeros(len(refs), bool)
    for b in iter_batches(refs, configs, batch_size, workers, "embedding train photos", progress):
        ok[b.rows] = True
        for k, m in enumerate(models):
            if b.rows.size:
                feats[k].append(m.embed(b.inputs[which[k]]))
    return [np.concatenate(f) if f else np.zeros((0, 0), np.float32) for f in feats], ok


def predict_all(
    collectors: list[Collector],
    refs: Sequence[str],
    batch_size: int,
    workers: int,
    progress: bool = True,
) -> tuple[list[Predictions], list[tuple[int, str]]]:
    """Every model over every photo; returns predictions and (row, reason) per failure."""
    configs, which = distinct([c.model.preprocess for c in collectors])
    errors: list[tuple[int, str]] = []
    for b in iter_batches(refs, configs, batch_size, workers, "evaluating", progress):
        errors.extend(b.errors)
        for c, k in zip(collectors, which, strict=True):
            c.add(b.rows, b.inputs[k])
    return [c.finish() for c in collectors], errors
