"""Pick the smallest browser model that keeps fp32's predictions.

Candidates, smallest first: every large weight int8; then mixed int8/fp16, the
weights whose int8 rounding moves the probabilities least (per byte saved,
measured one weight at a time on dev images) going int8 first, with as many
int8 as the gate allows (binary search); fp16 everywhere is the floor. The gate
(:func:`img2loc.export.bundle.passes`): fp32's top cell kept on >= 98% of dev
images and <= 1 point lost at every km threshold. On EfficientNet-Lite0 every
single int8 weight costs a little agreement, so all-int8 rarely passes while
fp16 always has.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray

from img2loc.export.bundle import ExportError, compare, describe, passes
from img2loc.export.compress import compress_weights, quantizable
from img2loc.export.devdata import DevImages
from img2loc.geo.cells import CellSet
from img2loc.inference.predictor import Predictor, make_session
from img2loc.inference.preprocess import PreprocessConfig

#: Dev images used to rank weights by sensitivity (the gate itself uses all of them).
PROBE_IMAGES = 64


def _label(n_int8: int, n_all: int) -> str:
    if n_int8 == n_all:
        return "int8"
    return "fp16" if n_int8 == 0 else f"int8 ({n_int8} of {n_all} weights) + fp16"


def choose_browser_model(
    fp32: onnx.ModelProto,
    ref: NDArray[np.float32],
    dev: DevImages,
    cells: CellSet,
    pre: PreprocessConfig,
    log: Callable[[str], None] = print,
) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """(browser model, its comparison figures against fp32 probabilities ``ref``)."""
    weights = quantizable(fp32)

    def probs(model: onnx.ModelProto, x: NDArray[np.float32]) -> NDArray[np.float32]:
        return Predictor(make_session(model.SerializeToString()), cells, pre).run(x)

    def evaluate(int8: Collection[str]) -> tuple[onnx.ModelProto, dict[str, Any]]:
        model = compress_weights(fp32, int8)
        cmp = compare(ref, probs(model, dev.x), cells, dev.lat, dev.lon)
        cmp.update(weights=_label(len(int8), len(weights)), bytes=model.ByteSize())
        cmp["int8_weights"] = sorted(int8)
        ok = passes(cmp)
        log(f"browser model, {cmp['weights']} ({cmp['bytes'] / 1e6:.2f} MB): {describe(cmp)}"
            + ("" if ok else "  [misses the bar]"))  # fmt: skip
        return model, cmp

    best = evaluate(weights)
    if passes(best[1]):
        return best
    floor = evaluate(())
    if not passes(floor[1]):
        raise ExportError(
            "even the fp16 browser model changes fp32's predictions beyond the bar; "
            "nothing was written"
        )
    x, base = dev.x[:PROBE_IMAGES], ref[:PROBE_IMAGES]
    cost = {
        name: float(np.abs(probs(compress_weights(fp32, [name]), x) - base).mean()) / n
        for name, n in weights.items()
    }
    order = sorted(weights, key=cost.__getitem__)
    log(f"ranked {len(order)} weights by int8 sensitivity on {len(x)} images")
    lo, hi, best = 0, len(order), floor  # `lo` int8 weights pass, `hi` fail
    while hi - lo > 1:
        mid = (lo + hi) // 2
        cand = evaluate(order[:mid])
        if passes(cand[1]):
            lo, best = mid, cand
        else:
            hi = mid
    return best
