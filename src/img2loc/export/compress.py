"""Weight-only compression of an fp32 ONNX model for the browser download.

Activations stay fp32: int8 activation quantisation (static QDQ) was measured
slower in WebAssembly (38 ms vs 27 ms) and changed predictions often. Here only
the stored weights shrink: each large weight is stored as fp16 (``Cast``) or as
int8 per output channel (``Cast`` + ``Mul`` by the channel scales). Both are
constant expressions that ONNX Runtime folds when it loads the model, so every
runtime computes the same fp32 graph at fp32 speed, with no session options.
(``DequantizeLinear`` was avoided on purpose: ONNX Runtime keeps it unfolded for
its QDQ fusions and then dequantises the weights at every run, 3x slower.)
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: Tensors smaller than this stay fp32 (biases, tiny kernels: no gain, some risk).
MIN_ELEMENTS = 1024


def _channel_axes(model: onnx.ModelProto) -> dict[str, int]:
    """Weight initializer name -> its output-channel axis, for Conv/Gemm/MatMul weights."""
    axes: dict[str, int] = {}
    for node in model.graph.node:
        if len(node.input) < 2:
            continue
        w = node.input[1]
        if node.op_type == "Conv":
            axes[w] = 0
        elif node.op_type == "Gemm":
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            axes[w] = 0 if trans_b else 1
        elif node.op_type == "MatMul":
            axes[w] = -1
    return axes


def _big_floats(model: onnx.ModelProto) -> dict[str, int]:
    return {
        i.name: int(np.prod(i.dims))
        for i in model.graph.initializer
        if i.data_type == TensorProto.FLOAT and np.prod(i.dims) >= MIN_ELEMENTS
    }


def quantizable(model: onnx.ModelProto) -> dict[str, int]:
    """Weights that may be stored as int8 (large Conv/Gemm/MatMul weights) -> element count."""
    axes = _channel_axes(model)
    return {name: n for name, n in _big_floats(model).items() if name in axes}


#: Clipping ratios tried per channel: the scale keeping the smallest squared error wins.
CLIP_RATIOS = np.linspace(0.5, 1.0, 26)


def int8_per_channel(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8: (q, scale) with ``w ~= q * scale``; ``scale`` broadcasts along ``axis``.

    Each channel's range is clipped where that minimises its squared rounding error
    (a few outliers otherwise stretch the scale and blur every other weight).
    """
    axis = axis % w.ndim
    wc = np.moveaxis(w.astype(np.float32), axis, 0).reshape(w.shape[axis], -1)
    amax = np.abs(wc).max(axis=1)
    best_err = np.full(amax.shape, np.inf, np.float32)
    best_scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    for r in CLIP_RATIOS:
        scale = np.where(amax > 0, amax * r / 127.0, 1.0).astype(np.float32)
        deq = np.clip(np.rint(wc / scale[:, None]), -127, 127) * scale[:, None]
        err = ((deq - wc) ** 2).sum(axis=1)
        better = err < best_err
        best_err, best_scale = np.where(better, err, best_err), np.where(better, scale, best_scale)
    shape = [1] * w.ndim
    shape[axis] = w.shape[axis]
    scale_b = best_scale.reshape(shape)
    q = np.clip(np.rint(w / scale_b), -127, 127).astype(np.int8)
    return q, scale_b


def compress_weights(model: onnx.ModelProto, int8: Collection[str] = ()) -> onnx.ModelProto:
    """A copy of ``model`` whose large float weights are stored as fp16, or as int8 for ``int8``.

    ``int8`` names weights from :func:`quantizable` (``quantizable(model)`` for all of
    them: about 4x smaller than fp32; none: fp16 only, 2x smaller and near lossless).
    """
    axes = _channel_axes(model)
    unknown = set(int8) - set(quantizable(model))
    if unknown:
        raise ValueError(f"not quantizable weights: {sorted(unknown)[:5]}")
    big = _big_floats(model)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    keep, new_nodes = [], []
    for init in g.initializer:
        name = init.name
        if name not in big:
            keep.append(init)
            continue
        w = numpy_helper.to_array(init)
        if name in int8:
            q, scale = int8_per_channel(w, axes[name])
            keep += [
                numpy_helper.from_array(q, name + "_int8"),
                numpy_helper.from_array(scale, name + "_scale"),
            ]
            new_nodes += [
                helper.make_node("Cast", [name + "_int8"], [name + "_q"], to=TensorProto.FLOAT),
                helper.make_node("Mul", [name + "_q", name + "_scale"], [name]),
            ]
        else:
            keep.append(numpy_helper.from_array(w.astype(np.float16), name + "_fp16"))
            new_nodes.append(
                helper.make_node("Cast", [name + "_fp16"], [name], to=TensorProto.FLOAT)
            )
    del g.initializer[:]
    g.initializer.extend(keep)
    # Decompression nodes first: the graph stays topologically sorted.
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(new_nodes + nodes)
    n8 = sum(big[n] for n in int8)
    out.doc_string = (
        model.doc_string + f" Weights stored as fp16, {n8} of {sum(big.values())} as int8."
    ).strip()
    return out
