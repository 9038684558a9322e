"""`img2loc train`, `img2loc distill` and `img2loc embed`: the commands that need the train
extra."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from img2loc.cli.common import fail

# The options `train` and `distill` share (both run LightningCLI over the same configs).
ConfigOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "-c", "--config", help="YAML config(s), e.g. configs/lite0.yaml, configs/distill.yaml."
    ),
]
ResumeOpt = Annotated[
    str | None,
    typer.Option(help="Continue a run: 'auto' (its last.ckpt) or a checkpoint path."),
]
HelpAllOpt = Annotated[
    bool,
    typer.Option(
        "--help-all",
        help="Show every --model.*, --data.* and --trainer.* option (LightningCLI) and exit.",
    ),
]


def train_cmd(
    ctx: typer.Context,
    config: ConfigOpt = None,
    resume: ResumeOpt = None,
    help_all: HelpAllOpt = False,
) -> None:
    """Train a model: LightningCLI options --model.*, --data.*, --trainer.* override the YAML.

    Example: img2loc train -c configs/lite0.yaml --data.shards shards/
    --model.cells cells.json --trainer.max_epochs 10

    Every option of the model, the data and Lightning's Trainer: `img2loc train
    --help-all` (with -c CONFIG: its values as defaults). The resolved config:
    `img2loc train -c CONFIG ... --print_config`.
    """
    from img2loc.training.precheck import check_train_args

    configs = list(config or [])
    extra = [*ctx.args, "--help"] if help_all else list(ctx.args)
    args = [a for c in configs for a in ("--config", str(c))] + extra
    check_train_args(configs, extra, resume)  # before seconds of torch imports
    from img2loc.training.cli import train

    ckpt_dir = train(args, resume)
    typer.echo(f"checkpoints in {ckpt_dir}")


def distill_cmd(
    ctx: typer.Context,
    teacher: Annotated[
        list[Path] | None,
        typer.Option(
            help="Teacher checkpoint (.ckpt from `img2loc train`); repeat it for an ensemble "
            "(the mean of their cell probabilities). Replaces --model.teachers."
        ),
    ] = None,
    config: ConfigOpt = None,
    resume: ResumeOpt = None,
    help_all: HelpAllOpt = False,
) -> None:
    """Train a small student (Lite0 by default) on a teacher's cell probabilities.

    Example: img2loc distill -c configs/distill.yaml --teacher big.ckpt
    --data.shards shards/ --model.cells cells.json

    The teachers run on the same augmented views the student sees; validation,
    checkpoints and --resume are `img2loc train`'s, and the student's checkpoint
    exports with `img2loc export`. Options as `img2loc train` (--help-all), plus
    --model.alpha (weight of the true targets) and --model.temperature.
    """
    import json

    from img2loc.training.precheck import check_distill_args

    configs = list(config or [])
    extra = [*ctx.args, "--help"] if help_all else list(ctx.args)
    if teacher:
        extra = ["--model.teachers", json.dumps([str(t) for t in teacher]), *extra]
    args = [a for c in configs for a in ("--config", str(c))] + extra
    check_distill_args(configs, extra, resume)  # before seconds of torch imports
    from img2loc.training.cli import train
    from img2loc.training.distill import DistillTask

    ckpt_dir = train(args, resume, DistillTask, "img2loc distill", "runs/distill")
    typer.echo(f"checkpoints in {ckpt_dir}")


def embed_cmd(
    shards: Annotated[Path, typer.Argument(help="Shard folder from `img2loc data shards`.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Feature folder to write.")],
    backbone: Annotated[
        str, typer.Option(help="timm backbone with pretrained weights.")
    ] = "tf_efficientnet_lite0",
    checkpoint: Annotated[
        Path | None, typer.Option(help="Use this training checkpoint's backbone instead.")
    ] = None,
    weights: Annotated[
        Path | None, typer.Option(help="Backbone state dict file (offline weights).")
    ] = None,
    split: Annotated[
        list[str] | None, typer.Option(help="Splits to embed (default: all); repeatable.")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = 64,
    flip: Annotated[
        bool, typer.Option(help="Also store features of the mirrored image (augmentation).")
    ] = True,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 ...")] = "auto",
) -> None:
    """Frozen-backbone features of a shard set, once; heads then train in seconds.

    Example: img2loc embed shards/ -o feats/ && img2loc train -c configs/lite0-head.yaml
    --data.features feats/ --model.cells cells.json
    """
    try:
        from img2loc.models.embed import embed_shards
    except ImportError as e:
        raise fail(f"embed needs the train extra: pip install 'img2loc[train]' ({e})") from None
    try:
        info = embed_shards(
            shards,
            output,
            backbone=backbone,
            checkpoint=str(checkpoint) if checkpoint else None,
            weights=str(weights) if weights else None,
            splits=split,
            batch_size=batch_size,
            flip=flip,
            device=device,
        )
    except (FileNotFoundError, ValueError) as e:
        raise fail(str(e)) from None
    counts = ", ".join(f"{k} {v['n']}" for k, v in info["splits"].items())
    typer.echo(f"wrote features of {info['backbone']} to {output} ({counts})")
