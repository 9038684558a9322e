"""`img2loc export`: a training checkpoint -> a model folder (ONNX + cells + card).

The graph is produced by torch's dynamo exporter (``torch.onnx.export(...,
dynamo=True)``, which needs ``onnxscript``): it resolves timm's TF-"same"
padding to static pads, which makes the model about 1.4x faster in ONNX Runtime
than the legacy TorchScript exporter's graph. Every export proves itself before
it is written: ``onnx.checker``, ONNX Runtime vs PyTorch on real images, and the
compressed browser model against fp32 (see :mod:`img2loc.export.bundle`).
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from numpy.typing import NDArray
from torch import nn

from img2loc import __version__
from img2loc.data.io import portable_paths
from img2loc.data.shard_reader import is_shard_folder, read_info
from img2loc.export.browser import choose_browser_model
from img2loc.export.bundle import (
    FORMAT,
    FORMAT_VERSION,
    FP32_TOLERANCE,
    ExportError,
    cells_document,
    check_output,
    compare,
    describe,
    file_info,
    model_card,
    passes,
    staging_dir,
)
from img2loc.export.devdata import DevImages, generated_images, load_dev_images
from img2loc.export.in_domain import append_in_domain, fit_in_domain
from img2loc.inference.model_folder import (
    CARD_FILE,
    CELLS_FILE,
    DOMAIN_NAME,
    EXPORT_FILE,
    INPUT_NAME,
    MODEL_FILES,
    OUTPUT_NAME,
    PREPROCESS_FILE,
    VARIANTS,
)
from img2loc.inference.predictor import Predictor
from img2loc.models.checkpoint import load_checkpoint, read_checkpoint
from img2loc.models.domain import DEFAULT_PROTOTYPES, DomainScore
from img2loc.models.geolocator import GeoLocator

OPSET = 18


class ProbabilityModel(nn.Module):
    """A GeoLocator whose output is per-cell sigmoid probabilities (what the ONNX graph outputs).

    With an in-domain score, a second output: the weight (N, 1) the answer keeps; with
    ``features=True`` instead the pooled features (to fit that score on).
    """

    def __init__(
        self, model: GeoLocator, domain: DomainScore | None = None, features: bool = False
    ) -> None:
        super().__init__()
        self.model = model
        self.domain = domain
        self.features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        feats = self.model.forward_features(x)
        probs = torch.sigmoid(self.model.forward_head(feats).float())
        if self.features:
            return probs, feats.float()
        if self.domain is None:
            return probs
        return probs, self.domain(feats)


def output_names(model: nn.Module) -> list[str]:
    """The ONNX outputs of a :class:`ProbabilityModel`."""
    if isinstance(model, ProbabilityModel) and model.features:
        return [OUTPUT_NAME, "features"]
    has_domain = isinstance(model, ProbabilityModel) and model.domain is not None
    return [OUTPUT_NAME, DOMAIN_NAME] if has_domain else [OUTPUT_NAME]


def to_onnx(model: nn.Module, example: torch.Tensor, opset: int = OPSET) -> onnx.ModelProto:
    """fp32 ONNX graph: input ``image``, output ``probs`` (and ``in_domain``), dynamic batch."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter chatter about internal torch.export details
        program = torch.onnx.export(
            model,
            (example,),
            input_names=[INPUT_NAME],
            output_names=output_names(model),
            opset_version=opset,
            dynamo=True,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        )
    if program is None:  # pragma: no cover - returned whenever no file is given
        raise ExportError("torch.onnx.export returned no program")
    proto: onnx.ModelProto = program.model_proto
    # The exporter annotates every node with debugging metadata (Python stack traces with
    # this machine's paths and line numbers, module names): it would ship local paths in
    # the model and tie the model's bytes to where source lines sit. Drop it.
    for node in proto.graph.node:
        del node.metadata_props[:]
    del proto.graph.metadata_props[:]
    return proto


def torch_probs(model: nn.Module, x: NDArray[np.float32], batch: int = 32) -> NDArray[np.float32]:
    """What :meth:`Predictor.run` gives for the exported graph: probabilities [+ weight]."""
    outs = []
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            out = model(torch.from_numpy(x[i : i + batch]))
            parts = out if isinstance(out, tuple) else (out,)
            outs.append(np.concatenate([p.numpy() for p in parts], axis=1))
    return np.concatenate(outs).astype(np.float32)


def wants_fallback(fallback: bool | None, data: Path | None, has_prior: bool) -> bool:
    """Whether to fit the fallback: asked for, or by default when shards and a prior allow."""
    if fallback is False:
        return False
    usable = data is not None and is_shard_folder(data) and has_prior
    if fallback and not usable:
        why = (
            "the cells carry no photo prior (build them with `img2loc cells build --prior`)"
            if not has_prior
            else "it needs the training shards as --data (train and val splits)"
        )
        raise ExportError(f"--fallback: {why}")
    if usable and data is not None:
        splits = read_info(data).get("splits", {})
        usable = all(splits.get(s, {}).get("n") for s in ("train", "val"))
        if fallback and not usable:
            raise ExportError(f"--fallback: {data} needs a train and a val split")
    return usable


def _training_info(checkpoint: Path) -> tuple[str | None, str | None]:
    """(how long it trained, the data it trained on) from the checkpoint and its run folder."""
    ckpt = read_checkpoint(checkpoint, mmap=True)
    trained = None
    if "global_step" in ckpt:
        trained = f"{ckpt['global_step']} steps ({ckpt.get('epoch', 0) + 1} epochs)"
        for state in ckpt.get("callbacks", {}).values():
            if isinstance(state, dict) and state.get("best_model_score") is not None:
                score = float(state["best_model_score"])
                trained += f"; best {state.get('monitor')} {score:.4g}"
                break
    # Lightning layout: RUN/checkpoints/X.ckpt beside RUN/config.yaml or RUN/logs/version_N/.
    ckpt_dir = checkpoint.resolve().parent
    run = ckpt_dir.parent
    found = [run / "config.yaml", *run.glob("*/version_*/config.yaml")]
    found = [p for p in found if ckpt_dir.name == "checkpoints" and p.is_file()]
    configs = sorted(found, key=lambda p: p.stat().st_mtime)
    if not configs:
        return trained, None
    import yaml

    cfg = yaml.safe_load(configs[-1].read_text()) or {}
    data = cfg.get("data") or {}
    text = f"Training config `{configs[-1].name}`: data " + ", ".join(
        f"`{k}`={v!r}" for k, v in sorted(data.items())
    )
    shards = Path(str(data.get("shards", "")))
    if is_shard_folder(shards):
        info = read_info(shards)
        splits = ", ".join(f"{k} {v.get('n', '?')}" for k, v in info.get("splits", {}).items())
        text += f". Shards: {splits} photos"
        if info.get("source_weights"):
            text += f"; source weights {info['source_weights']}"
    return trained, text + "."


def export_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    data: str | Path | None = None,
    limit: int = 256,
    fallback: bool | None = None,
    prototypes: int = DEFAULT_PROTOTYPES,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Export a training checkpoint to a model folder; returns what ``export.json`` holds.

    ``fallback``: fit the in-domain score on the training shards ``data`` (their train
    and val splits) so that answers to photos unlike the training photos move towards
    the cells' photo prior; None (default) does so when the shards and a prior allow.
    Raises :class:`ExportError` (and writes nothing) when a parity check fails.
    """
    checkpoint, out = Path(checkpoint), Path(out_dir)
    if not checkpoint.is_file():
        raise ExportError(f"checkpoint {checkpoint} not found")
    check_output(out)  # before minutes of work, not after
    t0 = time.perf_counter()
    try:
        model, cells, pre, hp = load_checkpoint(checkpoint)
    except (ValueError, KeyError, RuntimeError) as e:
        raise ExportError(f"{checkpoint}: cannot load it as an img2loc checkpoint ({e})") from None
    try:
        dev: DevImages = load_dev_images(data, pre, limit) if data else generated_images(pre)
    except (ValueError, OSError) as e:
        raise ExportError(str(e)) from None
    log(
        f"{checkpoint.name}: {hp.get('backbone')} / {hp.get('head')} head, {len(cells)} cells; "
        f"checking on {dev.n} images of {dev.source}"
        + (f" ({dev.skipped} unreadable skipped)" if dev.skipped else "")
    )
    example = torch.from_numpy(dev.x[: min(2, dev.n)].copy())
    fit = None
    if wants_fallback(fallback, Path(data) if data else None, cells.prior is not None):
        with_feats = to_onnx(ProbabilityModel(model, features=True).eval(), example)
        domain, fit = fit_in_domain(with_feats, Path(str(data)), pre, prototypes, log)
        wrapper = ProbabilityModel(model, domain).eval()
        proto = append_in_domain(with_feats, domain)
    else:
        wrapper = ProbabilityModel(model).eval()
        proto = to_onnx(wrapper, example)
    proto.doc_string = (
        f"img2loc {__version__}: per-cell sigmoid probabilities of {len(cells)} cells"
    )
    onnx.helper.set_model_props(
        proto,
        {"img2loc": __version__, "cells": str(len(cells)), "preprocess": json.dumps(pre.to_dict())},
    )
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"the exported graph is not valid ONNX: {e}") from None
    ref = torch_probs(wrapper, dev.x)

    with staging_dir(out) as tmp:
        onnx.save(proto, tmp / VARIANTS["fp32"])
        (tmp / CELLS_FILE).write_text(json.dumps(cells_document(cells), separators=(",", ":")))
        pre.save(tmp / PREPROCESS_FILE)
        fp32 = Predictor.load(tmp, "fp32")
        got = fp32.run(dev.x)
        fp32.batch_size = 1  # the batch axis is dynamic: one image alone gives the same answer
        got1 = fp32.run(dev.x[:2])
        diff = float(max(np.abs(got - ref).max(), np.abs(got1 - ref[:2]).max()))
        if not diff <= FP32_TOLERANCE:
            raise ExportError(
                f"ONNX Runtime and PyTorch disagree: max |diff| {diff:.3g} > {FP32_TOLERANCE:g} "
                f"on {dev.n} images; the graph is not faithful (an op exported wrongly?). "
                "Nothing was written."
            )
        log(
            f"fp32 {VARIANTS['fp32']}: checker ok; ONNX Runtime vs PyTorch max |diff| {diff:.2e} "
            f"(limit {FP32_TOLERANCE:g}) on {dev.n} images, batches of 1 and up to 32"
        )
        browser, cmp = choose_browser_model(proto, got, dev, cells, pre, log)
        onnx.save(browser, tmp / VARIANTS["browser"])
        # The figures recorded are those of the file as written, loaded the way users load it.
        cmp.update(compare(got, Predictor.load(tmp, "browser").run(dev.x), cells, dev.lat, dev.lon))
        if not passes(cmp):
            raise ExportError(f"{VARIANTS['browser']} read back fails the bar: {describe(cmp)}")
        trained, data_text = _training_info(checkpoint)
        info: dict[str, Any] = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "img2loc": __version__,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": __import__("onnxruntime").__version__,
            "opset": OPSET,
            # Its name only: a model folder carries no path of the machine that made it.
            "checkpoint": checkpoint.name,
            "model": model.config(),
            "input": {
                "name": INPUT_NAME,
                "shape": ["batch", 3, pre.input_size, pre.input_size],
                "dtype": "float32",
            },
            "output": {
                "name": OUTPUT_NAME,
                "shape": ["batch", len(cells)],
                "dtype": "float32",
                "meaning": f"per-cell sigmoid probability, cells in {CELLS_FILE} order",
            },
            "in_domain": None
            if fit is None
            else {
                "name": DOMAIN_NAME,
                "shape": ["batch", 1],
                "dtype": "float32",
                "meaning": "weight the answer keeps; the rest goes to the cells' photo prior",
                **vars(fit),
            },
            "parity": {
                "images": dev.source,
                "n": dev.n,
                "fp32_max_abs_diff": diff,
                "fp32_tolerance": FP32_TOLERANCE,
                "browser": {k: v for k, v in cmp.items() if not k.startswith("metrics")},
            },
        }
        if trained:
            info["trained"] = trained
        if data_text:
            info["data"] = data_text
        if "metrics_ref" in cmp:
            info["metrics"] = {
                "n": dev.n,
                "fp32": cmp["metrics_ref"],
                f"browser ({cmp['weights']})": cmp["metrics"],
            }
        info["files"] = {name: file_info(tmp / name) for name in MODEL_FILES}
        # A model folder travels (and is served to browsers): no local paths inside.
        card = portable_paths(model_card(info, hp, cells))
        (tmp / CARD_FILE).write_text(str(card))
        portable = portable_paths(json.loads(json.dumps(info, default=str)))
        (tmp / EXPORT_FILE).write_text(json.dumps(portable, indent=2))
    log(
        f"wrote {out} in {time.perf_counter() - t0:.1f} s: "
        + ", ".join(f"{n} {m['bytes'] / 1e6:.2f} MB" for n, m in info["files"].items())
    )
    return info
