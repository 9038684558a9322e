"""Evaluation: standard geolocation figures, baselines on the same photos, reports.

    from img2loc.evaluation import EvalOptions, evaluate
    report = evaluate("run/checkpoints/last.ckpt", ["shards/"], "report/",
                      options=EvalOptions(group_by="location_id", train_data=["shards/"]))

Layering: this package may import geo, data, viz, inference and models (models only for
checkpoints, inside functions), never training/; only the CLI imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from img2loc.evaluation.pipeline import DEFAULT_RULE, EvalOptions, run_evaluation

__all__ = ["DEFAULT_RULE", "EvalOptions", "evaluate", "run_evaluation"]


def evaluate(
    model: str | Path | None,
    data: Sequence[Path],
    out_dir: str | Path,
    compare: Sequence[str | Path] = (),
    options: EvalOptions | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` (and ``compare``) on ``data``; write the report into ``out_dir``."""
    from img2loc.evaluation.report import write_report

    return write_report(run_evaluation(model, data, compare, options), Path(out_dir))
