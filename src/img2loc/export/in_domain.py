"""The in-domain score in the exported graph: fitted on the training shards, appended in ONNX.

The prototypes are fitted on the *model's own* features of its training photos
(:mod:`img2loc.models.domain`). Computing those with PyTorch on a CPU runs at a few photos
a second; ONNX Runtime runs the same graph several times faster. So the export first
writes a graph whose second output is the pooled features, runs it over the training and
dev photos, fits the score, and then appends the score's few nodes to that graph (cosine
similarity to the prototypes, max, affine, sigmoid) in place of the features output. The
export's parity check then compares the whole graph with PyTorch's
``ProbabilityModel(model, score)``, so the appended nodes prove themselves like the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from img2loc.export.bundle import ExportError
from img2loc.export.devdata import split_batches
from img2loc.inference.model_folder import DOMAIN_NAME
from img2loc.inference.predictor import make_session
from img2loc.inference.preprocess import PreprocessConfig
from img2loc.models.domain import DomainFit, DomainScore, fit_domain

#: Training photos whose features the in-domain prototypes are fitted on, at most.
FIT_PHOTOS = 3000
#: In-domain dev photos the in-domain weight's centre and width are fitted on, at most.
FIT_DEV_PHOTOS = 1000


def _run_features(
    session: Any, batches: Iterator[NDArray[np.float32]], limit: int, desc: str
) -> torch.Tensor:
    from tqdm import tqdm

    inp = session.get_inputs()[0].name
    feats_name = session.get_outputs()[1].name
    out = []
    with tqdm(total=limit, desc=desc, unit="img", leave=False) as bar:
        for x in batches:
            out.append(session.run([feats_name], {inp: x})[0])
            bar.update(len(x))
    if not out:
        raise ExportError(f"{desc}: no readable photos (or pass --no-fallback)")
    return torch.from_numpy(np.concatenate(out).astype(np.float32))


def fit_in_domain(
    features_graph: onnx.ModelProto,
    data: Path,
    pre: PreprocessConfig,
    prototypes: int,
    log: Callable[[str], None],
    photos: int = FIT_PHOTOS,
    dev_photos: int = FIT_DEV_PHOTOS,
) -> tuple[DomainScore, DomainFit]:
    """The in-domain score fitted on the features ``features_graph`` gives (its 2nd output)."""
    t = time.perf_counter()
    session = make_session(features_graph.SerializeToString())
    try:
        src, train = split_batches(data, pre, "train", photos)
        _, dev = split_batches(data, pre, "val", dev_photos)
        train_f = _run_features(session, train, photos, "in-domain score: training photos")
        dev_f = _run_features(session, dev, dev_photos, "in-domain score: dev photos")
        score, fit = fit_domain(train_f, dev_f, prototypes)
    except ValueError as e:
        raise ExportError(f"fitting the in-domain score: {e} (or pass --no-fallback)") from None
    log(
        f"in-domain score: {fit.prototypes} prototypes of {fit.train_photos} training photos' "
        f"features ({src}); centre {fit.centre:.4f}, width {fit.width:.4f} from "
        f"{fit.dev_photos} dev photos, {fit.fallback_share_dev:.1%} of which fall back "
        f"({time.perf_counter() - t:.0f} s)"
    )
    return score, fit


def append_in_domain(proto: onnx.ModelProto, score: DomainScore) -> onnx.ModelProto:
    """``proto`` (outputs: probs, features) with the features replaced by ``in_domain``.

    The nodes compute exactly :meth:`DomainScore.forward`: features normalised as
    ``F.normalize`` does (divided by max(norm, 1e-12)), the largest dot product with the
    unit prototypes, ``sigmoid((s - centre) / width)``.
    """
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    g = out.graph
    if len(g.output) != 2:
        raise ExportError(f"expected a graph with 2 outputs (probs, features), got {len(g.output)}")
    feats = g.output[1].name
    protos_t = score.prototypes.detach().numpy().T.astype(np.float32)  # (D, K)
    inits = [
        numpy_helper.from_array(protos_t, "in_domain.prototypes_t"),
        numpy_helper.from_array(np.array([1], np.int64), "in_domain.axis"),
        numpy_helper.from_array(np.array(1e-12, np.float32), "in_domain.eps"),
        numpy_helper.from_array(np.array(float(score.centre), np.float32), "in_domain.centre"),
        numpy_helper.from_array(np.array(float(score.width), np.float32), "in_domain.width"),
    ]
    nodes = [
        helper.make_node("ReduceL2", [feats, "in_domain.axis"], ["in_domain.norm"], keepdims=1),
        helper.make_node("Max", ["in_domain.norm", "in_domain.eps"], ["in_domain.denom"]),
        helper.make_node("Div", [feats, "in_domain.denom"], ["in_domain.unit"]),
        helper.make_node("MatMul", ["in_domain.unit", "in_domain.prototypes_t"], ["in_domain.sim"]),
        helper.make_node(
            "ReduceMax", ["in_domain.sim", "in_domain.axis"], ["in_domain.best"], keepdims=1
        ),
        helper.make_node("Sub", ["in_domain.best", "in_domain.centre"], ["in_domain.shift"]),
        helper.make_node("Div", ["in_domain.shift", "in_domain.width"], ["in_domain.z"]),
        helper.make_node("Sigmoid", ["in_domain.z"], [DOMAIN_NAME]),
    ]
    g.initializer.extend(inits)
    g.node.extend(nodes)
    batch = g.output[0].type.tensor_type.shape.dim[0]
    new_out = helper.make_tensor_value_info(DOMAIN_NAME, TensorProto.FLOAT, [None, 1])
    new_out.type.tensor_type.shape.dim[0].CopyFrom(batch)
    del g.output[1]
    g.output.append(new_out)
    # Intermediate shape annotations of the dropped output would now be stale.
    keep = [v for v in g.value_info if v.name != feats]
    del g.value_info[:]
    g.value_info.extend(keep)
    return out
