"""The one image stream: order, batching, errors in place, outputs split per image."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from img2loc.data.images import ImageError
from img2loc.inference.images import BadInput, ImageBytes
from img2loc.inference.preprocess import PreprocessConfig
from img2loc.inference.stream import decoded_batches, run_stream

SMALL = PreprocessConfig(input_size=8, resize_size=8)
BIG = PreprocessConfig(input_size=16, resize_size=16)


def _photo(value: int) -> NDArray[np.uint8]:
    return np.full((20, 30, 3), value, np.uint8)


def _sources(n: int, bad: set[int]) -> list[Any]:
    return [BadInput(f"bad{i}", "gone") if i in bad else _photo(10 * i) for i in range(n)]


def _mean_run(x: NDArray[np.float32]) -> NDArray[np.float32]:
    # One output row per input row that identifies it (its mean pixel).
    return x.reshape(len(x), -1).mean(axis=1, keepdims=True).astype(np.float32)


@pytest.mark.parametrize("workers", [1, 3])
def test_order_batches_and_errors_in_place(workers: int) -> None:
    src = _sources(11, {0, 4, 10})
    batches = list(decoded_batches(src, [SMALL], batch_size=4, workers=workers))
    assert [len(b) for b in batches] == [4, 4, 3]
    assert [b.start for b in batches] == [0, 4, 8]
    assert [e[0] for b in batches for e in b.errors] == [0, 4, 10]
    assert all(isinstance(e, ImageError) for b in batches for _, e in b.errors)
    assert np.concatenate([b.rows for b in batches]).tolist() == [1, 2, 3, 5, 6, 7, 8, 9]
    assert batches[0].inputs().shape == (3, 3, 8, 8)
    assert [b.names[0] for b in batches] == ["bad0", "bad4", "<array 20x30x3 uint8>"]


def test_outputs_split_back_to_their_images() -> None:
    src = _sources(7, {2})
    got: list[float | None] = []
    for _, outs in run_stream(src, SMALL, _mean_run, batch_size=3, workers=2):
        got += [None if o is None else float(o[0, 0]) for o in outs]
    ref = [float(_mean_run(run_one(s))[0, 0]) if not isinstance(s, BadInput) else None for s in src]
    assert got == ref
    assert got[2] is None and len(set(got)) == 7  # every image its own row


def run_one(photo: NDArray[np.uint8]) -> NDArray[np.float32]:
    [(b, _)] = list(run_stream([photo], SMALL, _mean_run))
    return b.inputs()


def test_all_unreadable_batch_is_not_run() -> None:
    calls: list[int] = []

    def run(x: NDArray[np.float32]) -> NDArray[np.float32]:
        calls.append(len(x))
        return _mean_run(x)

    out = list(run_stream(_sources(4, {0, 1, 2, 3}), SMALL, run, batch_size=2))
    assert calls == []
    assert [o for _, outs in out for o in outs] == [None] * 4
    assert out[0][0].inputs().shape == (0, 3, 8, 8)


def test_several_preprocessings_from_one_decode() -> None:
    [b] = list(decoded_batches(_sources(3, set()), [SMALL, BIG], batch_size=8))
    assert b.inputs(0).shape == (3, 3, 8, 8)
    assert b.inputs(1).shape == (3, 3, 16, 16)


def test_opener_and_reason() -> None:
    def opener(ref: str) -> ImageBytes:
        if ref == "boom":
            raise OSError("no such photo")
        return ImageBytes(ref, b"not an image")

    [b] = list(
        decoded_batches(["boom", "x.jpg"], [SMALL], opener=opener, reason=lambda n, e: str(e))
    )
    (_, e0), (_, e1) = b.errors
    assert str(e0) == "no such photo"
    assert "x.jpg" in str(e1)
