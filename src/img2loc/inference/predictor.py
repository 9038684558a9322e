"""`Predictor`: an exported model folder run with ONNX Runtime (no torch).

A model folder (written by ``img2loc export``; its files and their checks live in
:mod:`img2loc.inference.model_folder`) holds the ONNX model, its cells with place names
and its preprocessing. Images go through the one image stream
(:mod:`img2loc.inference.stream`): decoded in threads while ONNX Runtime runs the
previous batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np
from numpy.typing import NDArray

from img2loc.data.images import ImageError
from img2loc.geo.cells import CellSet
from img2loc.geo.decode import (
    DEFAULT_RULE,
    FALLBACK_BELOW,
    cell_confidence,
    check_rule,
    decode,
    leaf_distribution,
    split_in_domain,
)
from img2loc.geo.distance import haversine_km
from img2loc.geo.views import check_aggregate, combine_views
from img2loc.inference.images import ImageInput, LoadedImage

# DEFAULT_MODEL_DIR and ModelError are re-exported: the CLI and older callers import them here.
from img2loc.inference.model_folder import DEFAULT_MODEL_DIR as DEFAULT_MODEL_DIR
from img2loc.inference.model_folder import DOMAIN_NAME, OUTPUT_NAME, ModelFolder
from img2loc.inference.model_folder import ModelError as ModelError
from img2loc.inference.panorama import DEFAULT_PANO_VIEWS
from img2loc.inference.preprocess import PreprocessConfig
from img2loc.inference.stream import run_stream

#: What a fallback answer says (see :attr:`Prediction.fallback`). One home: the predict
#: table, the API's ``note`` and the web app (web/src/answer.js) show these words.
FALLBACK_NOTE = (
    "unlike the street photos this model learned from: guessing where photos are usually taken"
)


@dataclass(frozen=True)
class TopCell:
    """One of the most probable cells: its centre, probability, S2 token and place name."""

    lat: float
    lon: float
    probability: float
    cell: str
    place: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "lat": round(self.lat, 6),
            "lon": round(self.lon, 6),
            "probability": round(self.probability, 6),
            "cell": self.cell,
            "place": self.place,
        }


@dataclass(frozen=True)
class Prediction:
    """Where one image was taken, or why it could not be read (``error``).

    ``confidence`` is the probability that the photo lies in the guessed cell;
    ``top`` lists the most probable finest cells (probabilities over finest cells
    sum to 1). ``exif`` is the GPS position in the photo's EXIF and ``error_km``
    the distance from it to the guess. ``views`` names every view whose
    probabilities were combined into the answer (one for an ordinary photo; the
    rendered headings of a 360° panorama, e.g. ``pano.jpg@h90``; the photos given
    to :meth:`Predictor.predict_views`); ``view_errors`` the views that could not
    be read (the place is answered from the others). ``in_domain`` is the weight the
    model's own answer keeps (None for a model without an in-domain score); below 0.5
    the answer is a ``fallback``: the photo is unlike the photos the model learned
    from, and the guess leans on where photos are usually taken.
    """

    image: str
    lat: float | None = None
    lon: float | None = None
    place: str | None = None
    confidence: float | None = None
    top: list[TopCell] = field(default_factory=list)
    exif: tuple[float, float] | None = None
    error_km: float | None = None
    error: str | None = None
    views: list[str] = field(default_factory=list)
    view_errors: list[str] = field(default_factory=list)
    in_domain: float | None = None

    @property
    def fallback(self) -> bool:
        """True when the answer leans on the photo prior more than on the model."""
        return self.in_domain is not None and self.in_domain < FALLBACK_BELOW

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def n_views(self) -> int:
        """Views combined into the answer (0 when it failed)."""
        return len(self.views) if self.ok else 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (the ``--json`` output of ``img2loc predict``)."""

        def r(v: float | None, nd: int) -> float | None:
            return None if v is None else round(v, nd)

        return {
            "image": self.image,
            "lat": r(self.lat, 6),
            "lon": r(self.lon, 6),
            "place": self.place,
            "confidence": r(self.confidence, 6),
            "top": [t.to_dict() for t in self.top],
            "exif": None if self.exif is None else {"lat": self.exif[0], "lon": self.exif[1]},
            "error_km": r(self.error_km, 3),
            "error": self.error,
            "views": list(self.views),
            "view_errors": list(self.view_errors),
            "in_domain": r(self.in_domain, 4),
            "fallback": self.fallback,
            "note": FALLBACK_NOTE if self.fallback else None,
        }


def make_session(model: Path | bytes, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session for a model file (or its bytes), tuned for :class:`Predictor`."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or os.cpu_count() or 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    # Decoder threads run beside ONNX Runtime: spinning intra-op threads would steal their cores.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(
            model if isinstance(model, bytes) else str(model),
            so,
            providers=["CPUExecutionProvider"],
        )
    except Exception as e:
        name = "model" if isinstance(model, bytes) else str(model)
        raise ModelError(
            f"{name}: ONNX Runtime cannot load it ({e}); re-export the model"
        ) from None


class Predictor:
    """Geolocate photos with an exported model. Build one with :meth:`load`."""

    def __init__(
        self,
        session: Any,
        cells: CellSet,
        preprocess: PreprocessConfig,
        places: list[str] | None = None,
        *,
        model_path: Path | None = None,
        batch_size: int = 32,
        workers: int | None = None,
        pano_views: int = DEFAULT_PANO_VIEWS,
    ) -> None:
        self.session = session
        self.cells = cells
        self.preprocess = preprocess
        self.model_path = model_path
        self.batch_size = max(1, batch_size)
        self.workers = workers or os.cpu_count() or 1
        #: Views rendered from a 360° panorama (0: treat panoramas as plain photos).
        self.pano_views = max(0, pano_views)
        self._places = places
        self._input = session.get_inputs()[0].name
        outputs = [o.name for o in session.get_outputs()]
        # probs first, then the in-domain weight when the model has one (older models: none).
        self._outputs = [OUTPUT_NAME, DOMAIN_NAME] if DOMAIN_NAME in outputs else [outputs[0]]
        if DOMAIN_NAME in outputs and OUTPUT_NAME not in outputs:
            raise ModelError(f"model has {DOMAIN_NAME} but no {OUTPUT_NAME} output: re-export it")
        if DOMAIN_NAME in outputs and cells.prior is None:
            raise ModelError(
                f"model has an {DOMAIN_NAME} output but its cells.json has no photo prior: "
                "the folder mixes files of different exports; re-export it"
            )
        n_out = session.get_outputs()[0].shape[-1]
        if isinstance(n_out, int) and n_out != len(cells):
            raise ModelError(
                f"model outputs {n_out} cells but cells.json has {len(cells)}; the folder mixes "
                "files of different exports: re-export it"
            )
        self._leaves = np.flatnonzero(cells.is_leaf)
        self._tokens = cells.tokens()

    @classmethod
    def load(
        cls,
        model_dir: str | os.PathLike[str] | None = None,
        variant: str = "auto",
        *,
        batch_size: int = 32,
        threads: int | None = None,
        workers: int | None = None,
        pano_views: int = DEFAULT_PANO_VIEWS,
    ) -> Predictor:
        """Load a model folder (default: the bundled model).

        Args:
            model_dir: folder written by ``img2loc export`` (or an ``.onnx`` file in one).
            variant: ``auto`` (fp32 when present), ``fp32`` or ``browser``.
            batch_size: images per ONNX Runtime run.
            threads: ONNX Runtime intra-op threads (default: all cores).
            workers: image decoding threads (default: all cores).
            pano_views: perspective views rendered from a 360° panorama, which is
                then answered as one multi-view place (0: no panorama handling).
        """
        folder = ModelFolder.open(model_dir, variant)
        return cls(
            make_session(folder.onnx, threads),
            folder.cells,
            folder.preprocess,
            folder.places,
            model_path=folder.onnx,
            batch_size=batch_size,
            workers=workers,
            pano_views=pano_views,
        )

    # ------------------------------------------------------------------ model
    @property
    def places(self) -> list[str]:
        """Place name of every cell, at the cell's scale (country, region or town)."""
        if self._places is None:
            # Older cells.json without names: look them up once (about a second).
            from img2loc.data.places import cell_places

            self._places = cell_places(
                self.cells.center_lat, self.cells.center_lon, self.cells.levels
            )
        return self._places

    @property
    def has_fallback(self) -> bool:
        """Whether the model gives an in-domain weight (answers may fall back to the prior)."""
        return len(self._outputs) == 2

    def run(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        """Per-cell probabilities (N, n_cells) of preprocessed images (N, 3, S, S).

        With an in-domain score (:attr:`has_fallback`) each row has one more value, the
        weight the answer keeps; every decoder in :mod:`img2loc.geo.decode` reads it.
        """
        s = self.preprocess.input_size
        if batch.ndim != 4 or batch.shape[1:] != (3, s, s):
            raise ValueError(
                f"expected a float32 batch of shape (N, 3, {s}, {s}), got {batch.shape}; "
                "prepare images with img2loc.inference.preprocess.preprocess"
            )
        x = np.ascontiguousarray(batch, dtype=np.float32)
        outs = [
            np.concatenate(
                self.session.run(self._outputs, {self._input: x[i : i + self.batch_size]}), axis=1
            )
            for i in range(0, x.shape[0], self.batch_size)
        ]
        if not outs:
            return np.zeros((0, self.width), np.float32)
        probs: NDArray[np.float32] = np.concatenate(outs).astype(np.float32, copy=False)
        return probs

    @property
    def width(self) -> int:
        """Values per row of :meth:`run`: the cells, plus one with an in-domain weight."""
        return len(self.cells) + int(self.has_fallback)

    # ------------------------------------------------------------------ images
    def _stream(
        self, images: Iterable[ImageInput]
    ) -> Iterator[list[tuple[str, LoadedImage | ImageError, NDArray[np.float32]]]]:
        """Per batch: (name, loaded image or error, (V, C) probabilities of its views)."""
        for b, probs in run_stream(
            images,
            self.preprocess,
            self.run,
            batch_size=self.batch_size,
            workers=self.workers,
            pano_views=self.pano_views,
        ):
            empty = np.zeros((0, self.width), np.float32)
            yield [
                (n, d if isinstance(d, ImageError) else d[0], empty if p is None else p)
                for n, d, p in zip(b.names, b.images, probs, strict=True)
            ]

    def probabilities(
        self, images: Iterable[ImageInput], aggregate: str = "mean"
    ) -> NDArray[np.float32]:
        """Per-cell probabilities (N, n_cells) of images (paths, URLs, bytes, PIL, arrays).

        A 360° panorama's views are combined with ``aggregate`` (``mean`` or ``product``).
        Raises :class:`~img2loc.data.images.ImageError` naming the first unreadable image.
        """
        check_aggregate(aggregate)
        out = []
        for batch in self._stream(images):
            for _, d, p in batch:
                if isinstance(d, ImageError):
                    raise d
                out.append(_one_place(p, aggregate, len(self.cells))[None])
        if not out:
            return np.zeros((0, self.width), np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    # ------------------------------------------------------------------ results
    def results(
        self, probs: NDArray[np.float32], top_k: int = 5, rule: str = DEFAULT_RULE
    ) -> list[tuple[float, float, int, float, list[TopCell]]]:
        """(lat, lon, cell index, confidence, top cells) per row of :meth:`run`."""
        return [r[:5] for r in self._results(probs, top_k, rule)]

    def _results(
        self, probs: NDArray[np.float32], top_k: int = 5, rule: str = DEFAULT_RULE
    ) -> list[tuple[float, float, int, float, list[TopCell], float | None]]:
        """:meth:`results` plus the in-domain weight of each row (None without one)."""
        check_rule(rule)
        if probs.shape[0] == 0:
            return []
        _, keep = split_in_domain(probs, self.cells)
        idx, lat, lon = decode(probs, self.cells, rule)
        leaves, dist = leaf_distribution(probs, self.cells)
        conf = cell_confidence(leaves, dist, self.cells, idx)
        k = max(0, min(top_k, self._leaves.size))
        order = np.argsort(-dist, axis=1, kind="stable")[:, :k]
        places = self.places
        out = []
        for r in range(len(idx)):
            top = []
            for j in order[r]:
                c = int(self._leaves[j])
                top.append(
                    TopCell(
                        float(self.cells.center_lat[c]),
                        float(self.cells.center_lon[c]),
                        float(dist[r, j]),
                        self._tokens[c],
                        places[c],
                    )
                )
            w = None if keep is None else float(keep[r])
            out.append((float(lat[r]), float(lon[r]), int(idx[r]), float(conf[r]), top, w))
        return out

    def predict_iter(
        self,
        images: Iterable[ImageInput],
        top_k: int = 5,
        decode: str = DEFAULT_RULE,
        aggregate: str = "mean",
    ) -> Iterator[Prediction]:
        """:meth:`predict` as a stream: results come batch by batch, in input order."""
        # ``decode`` (the --decode flag's name in the public API) is the decoding rule.
        check_aggregate(aggregate)
        return self._predict_iter(images, top_k, check_rule(decode), aggregate)

    def _prediction(
        self,
        name: str,
        res: tuple[float, float, int, float, list[TopCell], float | None],
        decoded: list[tuple[str, LoadedImage]],
        view_errors: list[str] | None = None,
    ) -> Prediction:
        lat, lon, c, conf, top, keep = res
        exif = None
        for _, d in decoded:  # the first view with EXIF GPS stands for the place
            if d.gps.lat is not None and d.gps.lon is not None:
                exif = (d.gps.lat, d.gps.lon)
                break
        err = None if exif is None else float(haversine_km(lat, lon, exif[0], exif[1]))
        views = [v for n, d in decoded for v in _view_names(n, d)]
        return Prediction(
            name,
            lat,
            lon,
            self.places[c],
            conf,
            top,
            exif,
            err,
            None,
            views,
            view_errors or [],
            keep,
        )

    def _predict_iter(
        self, images: Iterable[ImageInput], top_k: int, rule: str, aggregate: str
    ) -> Iterator[Prediction]:
        for items in self._stream(images):
            rows = [
                _one_place(p, aggregate, len(self.cells))
                for _, d, p in items
                if isinstance(d, LoadedImage)
            ]
            per_image = np.asarray(rows, np.float32).reshape(len(rows), self.width)
            res = iter(self._results(per_image, top_k, rule))
            for name, d, _ in items:
                if isinstance(d, ImageError):
                    yield Prediction(name, error=str(d))
                else:
                    yield self._prediction(name, next(res), [(name, d)])

    def predict_views(
        self,
        images: Iterable[ImageInput],
        top_k: int = 5,
        decode: str = DEFAULT_RULE,
        aggregate: str = "mean",
        name: str | None = None,
    ) -> Prediction:
        """One answer for several views of ONE place (photos around one spot, panoramas).

        The views' per-cell probabilities are combined (``aggregate``: ``mean`` or
        ``product``, see :mod:`img2loc.geo.views`) before decoding. Unreadable views
        are listed in ``view_errors`` and left out; only when none can be read does
        the result carry ``error``. ``name`` labels the place (default: the first
        view's name, with the number of other views).
        """
        check_rule(decode)
        check_aggregate(aggregate)
        decoded: list[tuple[str, LoadedImage]] = []
        errors: list[str] = []
        parts: list[NDArray[np.float32]] = []
        names: list[str] = []
        for batch in self._stream(images):
            for n, d, p in batch:
                names.append(n)
                if isinstance(d, ImageError):
                    errors.append(str(d))
                else:
                    decoded.append((n, d))
                    parts.append(p)
        label = name or (
            "<no views>" if not names else names[0] + (f" +{len(names) - 1}" * (len(names) > 1))
        )
        if not decoded:
            why = "; ".join(errors) if errors else "no views given"
            return Prediction(label, error=f"no readable view ({why})", view_errors=errors)
        place = combine_views(np.concatenate(parts), aggregate, len(self.cells))[None]
        [res] = self._results(place.astype(np.float32), top_k, decode)
        return self._prediction(label, res, decoded, errors)

    @overload
    def predict(
        self,
        images: list[Any] | tuple[Any, ...],
        top_k: int = ...,
        decode: str = ...,
        aggregate: str = ...,
    ) -> list[Prediction]: ...

    @overload
    def predict(
        self, images: ImageInput, top_k: int = ..., decode: str = ..., aggregate: str = ...
    ) -> Prediction: ...

    def predict(
        self,
        images: ImageInput | list[Any] | tuple[Any, ...],
        top_k: int = 5,
        decode: str = DEFAULT_RULE,
        aggregate: str = "mean",
    ) -> Prediction | list[Prediction]:
        """Where photos were taken: one :class:`Prediction` per image, in order.

        ``images``: a path, URL, bytes, PIL image or numpy array (HxWxC), or a list
        of them (then a list comes back). ``decode``: ``score`` (default), ``hierarchical`` or
        ``seed``. A 360° panorama is answered from its rendered views, combined with
        ``aggregate``; for several photos of one place use :meth:`predict_views`.
        An unreadable image gets a record with ``error`` set; it never raises.
        """
        if isinstance(images, list | tuple):
            return list(self.predict_iter(images, top_k, decode, aggregate))
        return next(self.predict_iter([images], top_k, decode, aggregate))


def _one_place(views: NDArray[np.float32], aggregate: str, n_cells: int) -> NDArray[Any]:
    """(C,) probabilities of an image from its (V, C) views: a photo's own, or combined."""
    return views[0] if views.shape[0] == 1 else combine_views(views, aggregate, n_cells)


def _view_names(name: str, d: LoadedImage) -> list[str]:
    """One name per view of an image: the image itself, or ``name@h<heading>`` per panorama view."""
    if d.views is None:
        return [name]
    return [f"{name}@h{h:g}" for h in d.headings]
