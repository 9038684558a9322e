"""`img2loc train`: LightningCLI over GeoTask + ShardDataModule.

    img2loc train -c configs/lite0.yaml --data.shards shards/ --model.cells cells.json \\
        [--trainer.devices 2 --trainer.strategy ddp] [--resume auto|PATH]

Every ``__init__`` argument of the task (``--model.*``), the datamodule
(``--data.*``) and Lightning's Trainer (``--trainer.*``) can be set in YAML or on
the command line; the resolved config is saved beside the checkpoints.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningCLI

from img2loc.training.data import ShardDataModule
from img2loc.training.task import GeoTask


class _CLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.set_defaults(
            {
                "trainer.reload_dataloaders_every_n_epochs": 1,
                "trainer.default_root_dir": "runs/default",
                "trainer.log_every_n_steps": 10,
            }
        )


def _callbacks() -> list[object]:
    # Lightning 2.6 writes last.ckpt only when a top-k checkpoint is written, so "last" is
    # a checkpoint callback of its own, overwritten at every validation.
    return [
        ModelCheckpoint(
            monitor="val/geoguessr",
            mode="max",
            save_top_k=1,
            filename="best-{epoch}-{step}",
            auto_insert_metric_name=False,
        ),
        ModelCheckpoint(monitor=None, save_top_k=1, filename="last", enable_version_counter=False),
        LearningRateMonitor(logging_interval="step"),
    ]


def _loggers(root: str) -> list[object]:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    return [CSVLogger(root, name="logs"), TensorBoardLogger(root, name="tb")]


def train(args: list[str], resume: str | None = None) -> Path:
    """Run training with LightningCLI arguments; return the checkpoint folder."""
    argv0, sys.argv = sys.argv, sys.argv[:1]  # LightningCLI reads `args`, not our argv
    cli = _CLI(
        GeoTask,
        ShardDataModule,
        run=False,
        args=args,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"callbacks": _callbacks()},
        seed_everything_default=0,
    )
    trainer = cli.trainer
    sys.argv = argv0
    if not trainer.loggers or type(trainer.logger).__name__ == "TensorBoardLogger":
        trainer.loggers = _loggers(trainer.default_root_dir)  # type: ignore[misc]
    ckpt_dir = Path(trainer.default_root_dir) / "checkpoints"
    for cb in trainer.callbacks:  # type: ignore[attr-defined]
        if isinstance(cb, ModelCheckpoint):
            cb.dirpath = str(ckpt_dir)
    ckpt_path = None
    if resume == "auto":
        last = ckpt_dir / "last.ckpt"
        ckpt_path = str(last) if last.exists() else None
    elif resume:
        ckpt_path = resume
    trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt_path)
    return ckpt_dir
