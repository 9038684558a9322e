"""The one image stream under predict, evaluation and GeoGuessr: decode → batch → run → split.

Threads decode and preprocess images a bounded window ahead (Pillow releases
the GIL) while the model runs on the current batch; every image becomes one
model input row, or several for a 360° panorama rendered into views
(:attr:`~img2loc.inference.images.LoadedImage.inputs`), and the model's output
rows are split back per image. An unreadable image becomes an
:class:`~img2loc.data.images.ImageError` in its place: it never stops the stream.

Each image is decoded once and preprocessed once per preprocessing given
(evaluation compares models with different input sizes on the same photos).
No torch here: what runs the batch is a callable (an ONNX session, or a
checkpoint's forward pass supplied by evaluation).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from img2loc.data.images import ImageError
from img2loc.inference.images import ImageInput, LoadedImage, load_input, source_name
from img2loc.inference.preprocess import PreprocessConfig

#: One image's inputs, one per preprocessing, or why it could not be read.
Loaded = tuple[LoadedImage, ...] | ImageError


def unreadable(name: str, e: Exception) -> str:
    """How an unexpected decoding failure is reported (a bad input must not stop the run)."""
    return f"{name}: unreadable ({type(e).__name__}: {e})"


@dataclass
class ImageBatch:
    """Consecutive images of the stream: names, what decoded, and their stacked inputs.

    ``start`` is the position of the first image in the whole input; ``images[i]``
    holds image ``start + i`` (one :class:`LoadedImage` per preprocessing) or its
    :class:`ImageError`.
    """

    start: int
    names: list[str]
    images: list[Loaded]
    sizes: Sequence[int]  # input sizes per preprocessing, for empty batches

    def __len__(self) -> int:
        return len(self.names)

    @property
    def ok(self) -> NDArray[np.bool_]:
        """Which images of the batch decoded."""
        return np.array([not isinstance(d, ImageError) for d in self.images], bool)

    @property
    def rows(self) -> NDArray[np.int64]:
        """Positions in the whole input of the images that decoded."""
        return self.start + np.flatnonzero(self.ok).astype(np.int64)

    @property
    def errors(self) -> list[tuple[int, ImageError]]:
        """(position in the whole input, error) of the images that did not decode."""
        return [(self.start + i, d) for i, d in enumerate(self.images) if isinstance(d, ImageError)]

    def inputs(self, k: int = 0) -> NDArray[np.float32]:
        """Model input (R, 3, S, S) under preprocessing ``k``: all views of readable images."""
        xs = [d[k].inputs for d in self.images if not isinstance(d, ImageError)]
        if not xs:
            s = self.sizes[k]
            return np.zeros((0, 3, s, s), np.float32)
        return xs[0] if len(xs) == 1 else np.concatenate(xs)

    def split(self, out: NDArray[Any] | None, k: int = 0) -> list[NDArray[Any] | None]:
        """Per image, its rows of ``out`` (output of :meth:`inputs` ``k``); None: unreadable."""
        parts: list[NDArray[Any] | None] = []
        at = 0
        for d in self.images:
            if isinstance(d, ImageError):
                parts.append(None)
                continue
            assert out is not None
            v = d[k].inputs.shape[0]
            parts.append(out[at : at + v])
            at += v
        return parts


def decoded_batches(
    sources: Iterable[Any],
    configs: Sequence[PreprocessConfig],
    *,
    batch_size: int = 32,
    workers: int | None = None,
    pano_views: int = 0,
    opener: Callable[[Any], ImageInput] | None = None,
    reason: Callable[[str, Exception], str] = unreadable,
) -> Iterator[ImageBatch]:
    """Images decoded in a thread pool, in input order, in batches of ``batch_size``.

    ``2 * batch_size`` images are decoded ahead of the consumer, by ``workers``
    threads (default: all cores). ``opener`` turns a source into an image input
    inside the decoding thread (e.g. reads its bytes); ``reason`` words a failure
    that is not an :class:`ImageError` (an ImageError keeps its own message).
    """
    batch_size = max(1, batch_size)
    sizes = [c.input_size for c in configs]

    def load(src: Any) -> Loaded:
        try:
            img = src if opener is None else opener(src)
            return tuple(load_input(img, c, pano_views) for c in configs)
        except ImageError as e:
            return e
        except Exception as e:  # a bad input must never stop the batch
            return ImageError(reason(source_name(src), e))

    window: deque[tuple[str, Future[Loaded]]] = deque()
    ahead = 2 * batch_size
    pool = ThreadPoolExecutor(workers or os.cpu_count() or 1, thread_name_prefix="img2loc-decode")
    batch = ImageBatch(0, [], [], sizes)
    try:

        def take() -> Iterator[ImageBatch]:
            nonlocal batch
            name, fut = window.popleft()
            batch.names.append(name)
            batch.images.append(fut.result())
            if len(batch) == batch_size:
                yield batch
                batch = ImageBatch(batch.start + batch_size, [], [], sizes)

        for src in sources:
            window.append((source_name(src), pool.submit(load, src)))
            if len(window) > ahead:
                yield from take()
        while window:
            yield from take()
        if len(batch):
            yield batch
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_stream(
    sources: Iterable[Any],
    config: PreprocessConfig,
    run: Callable[[NDArray[np.float32]], NDArray[np.float32]],
    *,
    batch_size: int = 32,
    workers: int | None = None,
    pano_views: int = 0,
    opener: Callable[[Any], ImageInput] | None = None,
    reason: Callable[[str, Exception], str] = unreadable,
) -> Iterator[tuple[ImageBatch, list[NDArray[np.float32] | None]]]:
    """Decoded batches with each image's (V, C) output rows (None: unreadable).

    ``run`` maps a (R, 3, S, S) input to (R, C) outputs; it is not called for a
    batch in which no image decoded.
    """
    for b in decoded_batches(
        sources,
        [config],
        batch_size=batch_size,
        workers=workers,
        pano_views=pano_views,
        opener=opener,
        reason=reason,
    ):
        x = b.inputs()
        yield b, b.split(run(x) if x.shape[0] else None)
