"""The pieces of the model folder that ``img2loc export`` writes (no torch here).

The folder's layout and file names live in :mod:`img2loc.inference.model_folder` (the
contract read by ``Predictor``, evaluation and the browser). ``cells.json`` holds the cell
set (CellSet format) plus per cell ``ancestors`` (tokens, parent first), ``leaf`` and
``place`` (named at the cell's scale: country, region or town; see
:func:`img2loc.data.places.place_at_scale`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from img2loc.data.places import cell_places
from img2loc.errors import Img2locError
from img2loc.files import dir_mode
from img2loc.geo.cells import CellSet
from img2loc.geo.decode import FALLBACK_BELOW, decode, split_in_domain
from img2loc.geo.distance import geo_metrics
from img2loc.inference.model_folder import (
    BROWSER_FILE,
    CELLS_FILE,
    EXPORT_FILE,
    FP32_FILE,
    INPUT_NAME,
    OUTPUT_NAME,
    PREPROCESS_FILE,
)

FORMAT, FORMAT_VERSION = "img2loc-model", 1
#: ONNX Runtime fp32 vs PyTorch: largest allowed probability difference.
FP32_TOLERANCE = 1e-4
#: The browser model must pick fp32's top cell this often ...
MIN_TOP_AGREEMENT = 0.98
#: ... and lose at most this many accuracy points at any km threshold.
MAX_ACC_LOSS = 1.0


class ExportError(Img2locError, RuntimeError):
    """An export failed a check; nothing was written. The message says what and why."""


def cells_document(cells: CellSet) -> dict[str, Any]:
    """``cells.json``: :meth:`CellSet.to_dict` plus ancestors, leaf flag and place name per cell."""
    doc = cells.to_dict(polygons=True)
    places = cell_places(cells.center_lat, cells.center_lon, cells.levels)
    tokens = [c["token"] for c in doc["cells"]]
    for i, rec in enumerate(doc["cells"]):
        rec["ancestors"] = [tokens[j] for j in cells.chain[i, 1:] if j >= 0]
        rec["leaf"] = bool(cells.is_leaf[i])
        rec["place"] = places[i]
    return doc


def compare(
    ref: NDArray[np.float32],
    new: NDArray[np.float32],
    cells: CellSet,
    lat: NDArray[np.float64] | None = None,
    lon: NDArray[np.float64] | None = None,
) -> dict[str, Any]:
    """How far ``new`` probabilities are from ``ref``: top-cell agreement, accuracy changes.

    The top cell is the most probable one (``hierarchical``); accuracies use the
    default decoding rule, as users get them.
    """
    i_ref = decode(ref, cells, "hierarchical")[0]
    i_new = decode(new, cells, "hierarchical")[0]
    _, la_ref, lo_ref = decode(ref, cells)
    _, la_new, lo_new = decode(new, cells)
    out: dict[str, Any] = {
        "n": int(ref.shape[0]),
        "max_abs_diff": float(np.abs(ref.astype(np.float64) - new).max()) if ref.size else 0.0,
        "top_cell_agreement": float(np.mean(i_ref == i_new)) if ref.size else 1.0,
    }
    (_, k_ref), (_, k_new) = split_in_domain(ref, cells), split_in_domain(new, cells)
    if k_ref is not None and k_new is not None and ref.size:
        # The fallback must fire on the same photos (the browser says it in words).
        same = (k_ref < FALLBACK_BELOW) == (k_new < FALLBACK_BELOW)
        out["fallback_agreement"] = float(np.mean(same))
    if lat is not None and lon is not None:
        m_ref = geo_metrics(la_ref, lo_ref, lat, lon)
        m_new = geo_metrics(la_new, lo_new, lat, lon)
        out["metrics_ref"], out["metrics"] = m_ref, m_new
        out["acc_km_delta"] = {k: m_new["acc_km"][k] - v for k, v in m_ref["acc_km"].items()}
    return out


def passes(cmp: dict[str, Any]) -> bool:
    """Whether a compressed model may ship (see MIN_TOP_AGREEMENT and MAX_ACC_LOSS)."""
    loss_ok = all(d >= -MAX_ACC_LOSS for d in cmp.get("acc_km_delta", {}).values())
    fallback_ok = cmp.get("fallback_agreement", 1.0) >= MIN_TOP_AGREEMENT
    return bool(cmp["top_cell_agreement"] >= MIN_TOP_AGREEMENT and loss_ok and fallback_ok)


def describe(cmp: dict[str, Any]) -> str:
    """One line of comparison figures for the export log."""
    s = f"top cell = fp32's on {cmp['top_cell_agreement']:.1%} of {cmp['n']} images"
    if "fallback_agreement" in cmp:
        s += f", same fallback on {cmp['fallback_agreement']:.1%}"
    s += f", max |diff| {cmp['max_abs_diff']:.2e}"
    if "acc_km_delta" in cmp:
        s += "; accuracy change " + ", ".join(
            f"{k} km {d:+.1f}" for k, d in cmp["acc_km_delta"].items()
        )
    return s


def file_info(path: Path) -> dict[str, Any]:
    return {"bytes": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def check_output(out: Path) -> None:
    """Refuse to replace anything but an empty folder or an earlier model folder."""
    if out.exists() and not (
        out.is_dir() and (not any(out.iterdir()) or (out / EXPORT_FILE).exists())
    ):
        raise ExportError(
            f"{out} exists and is not a model folder from `img2loc export`; "
            "choose another -o or remove it"
        )


@contextmanager
def staging_dir(out: Path) -> Iterator[Path]:
    """A temporary folder beside ``out`` that replaces ``out`` when the block succeeds.

    Readers see the old model folder or the new one, never a half-written one; on
    failure the old folder is untouched.
    """
    check_output(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    tmp.chmod(dir_mode())  # mkdtemp makes it private; a model folder is meant to be shared
    try:
        yield tmp
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _table(metrics: dict[str, dict[str, Any]]) -> list[str]:
    first = next(iter(metrics.values()))
    keys = list(first["acc_km"])
    lines = [
        "| model | " + " | ".join(f"{k} km" for k in keys) + " | median km | GeoGuessr |",
        "|---|" + "---:|" * (len(keys) + 2),
    ]
    for name, m in metrics.items():
        acc = " | ".join(f"{m['acc_km'][k]:.1f}%" for k in keys)
        lines.append(f"| {name} | {acc} | {m['median_km']:.0f} | {m['geoguessr_mean']:.0f} |")
    return lines


def model_card(info: dict[str, Any], hparams: dict[str, Any], cells: CellSet) -> str:
    """``README.md`` of a model folder: what the model is, how it was trained, how it scores."""
    model, parity = info["model"], info["parity"]
    pre = model["preprocess"]
    summ = cells.summary()
    lines = [
        f"# img2loc model: {model['backbone']} over {len(cells)} S2 cells",
        "",
        "Guesses where a photo was taken from its pixels: one sigmoid probability per adaptive",
        "S2 cell (a split cell stays beside its children). Use it with `img2loc predict --model",
        f"THIS_FOLDER` or `Predictor.load('THIS_FOLDER')`; the browser loads `{BROWSER_FILE}`.",
        "",
        "## Files",
        "",
        "| file | what | size |",
        "|---|---|---:|",
    ]
    what = {
        FP32_FILE: f"fp32 ONNX, input `{INPUT_NAME}` (N,3,S,S), output `{OUTPUT_NAME}` (N,cells)",
        BROWSER_FILE: f"{parity['browser']['weights']} weights, fp32 compute",
        CELLS_FILE: "cells: token, level, centre, polygon, ancestors, place",
        PREPROCESS_FILE: "resize, crop, mean/std applied before the model",
        EXPORT_FILE: "versions, checksums, parity figures",
    }
    if info.get("in_domain"):
        what[FP32_FILE] += f" and `{info['in_domain']['name']}` (N,1)"
    for name, meta in info["files"].items():
        lines.append(f"| `{name}` | {what.get(name, '')} | {meta['bytes'] / 1e6:.2f} MB |")
    if fit := info.get("in_domain"):
        lines += [
            "",
            "## In-domain score: the fallback to where photos are taken",
            "",
            "Per photo the model also gives the weight its own answer keeps: "
            f"`sigmoid((s - {fit['centre']:.4f}) / {fit['width']:.4f})`, where `s` is the "
            f"cosine similarity of the photo's features to the nearest of {fit['prototypes']} "
            f"prototypes (spherical k-means of {fit['train_photos']} training photos' "
            "features). The answer is `w * model + (1 - w) * photo prior` (the cells' prior in "
            "`cells.json`); below w = 0.5 `img2loc predict`, the API and the web app say the "
            "photo is unlike the photos the model learned from. Calibration: the centre is the "
            f"{100 * fit['quantile']:g}% quantile of {fit['dev_photos']} in-domain dev photos' "
            f"scores ({100 * fit['fallback_share_dev']:.1f}% of them fall back).",
        ]
    lines += [
        "",
        "## Model",
        "",
        f"- Backbone `{model['backbone']}`, head `{model['head']}`, "
        f"{model['num_features']} features.",
        f"- Input: resize the shorter side to {pre['resize_size']} px ({pre['interpolation']}), "
        f"{pre['crop']} crop {pre['input_size']}x{pre['input_size']}, scale to [0, 1], "
        f"mean {pre['mean']}, std {pre['std']}, {pre['layout']}.",
        f"- Cells: {summ['n_cells']} ({summ['n_leaves']} finest), per level "
        + ", ".join(f"L{k}: {v}" for k, v in summ["cells_per_level"].items())
        + f"; built with {cells.params or 'unrecorded parameters'}.",
        f"- Trained {info.get('trained', 'for an unrecorded number of steps')}.",
        "",
        "## Training configuration",
        "",
    ]
    # Private entries (LightningCLI's ``_instantiator``) are plumbing, not training settings.
    lines += [
        f"- `{k}`: {v!r}"
        for k, v in sorted(hparams.items())
        if k != "cells" and not k.startswith("_")
    ]
    lines += ["", "## Data", "", info.get("data") or "Not recorded with the checkpoint.", ""]
    lines += ["## Metrics", ""]
    if "metrics" in info:
        lines += [f"On {info['metrics']['n']} images of {parity['images']}:", ""]
        lines += _table({k: v for k, v in info["metrics"].items() if k != "n"})
    else:
        lines.append("No dev data with coordinates was given at export (`--data`).")
    b = parity["browser"]
    lines += [
        "",
        "## Export checks",
        "",
        f"- ONNX Runtime fp32 vs PyTorch on {parity['n']} images of {parity['images']}: "
        f"max |diff| {parity['fp32_max_abs_diff']:.2e} (limit {FP32_TOLERANCE:g}).",
        f"- Browser model ({b['weights']} weights): {describe(b)}.",
        "- The browser model stores weights as int8/fp16 behind constant Cast/Mul nodes that",
        "  ONNX Runtime folds at load: it computes in fp32, at fp32 speed, with no options.",
        "",
        f"Exported {info['created']} by img2loc {info['img2loc']} (torch {info['torch']}, "
        f"onnx {info['onnx']}, onnxruntime {info['onnxruntime']}, opset {info['opset']}).",
        "",
    ]
    return "\n".join(lines)
