"""`img2loc train`: LightningCLI over GeoTask + TrainDataModule.

    img2loc train -c configs/lite0.yaml --data.shards shards/ --model.cells cells.json \\
        [--trainer.devices 2 --trainer.strategy ddp] [--resume auto|PATH]

Every ``__init__`` argument of the task (``--model.*``), the datamodule
(``--data.*``) and Lightning's Trainer (``--trainer.*``) can be set in YAML or on
the command line; the resolved config is saved beside the checkpoints.
"""

from __future__ import annotations

import sys
from argparse import ArgumentError
from pathlib import Path

from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningCLI

from img2loc.training.datamodule import TrainDataModule
from img2loc.training.precheck import OPTIONS_TIP, TrainSetupError
from img2loc.training.task import GeoTask


class _CLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:  # type: ignore[no-untyped-def]
        # The data gets the model's transforms (preprocessing, size per epoch) when both
        # are built, as open_clip's create_model_and_transforms hands them over.
        parser.link_arguments("model.transforms", "data.transforms", apply_on="instantiate")
        parser.link_arguments("model.cell_targets", "data.targets", apply_on="instantiate")
        parser.set_defaults(
            {
                # Not needed by the datamodules (they read the epoch themselves); kept because
                # a resumed run repeats an uninterrupted one exactly only with it.
                "trainer.reload_dataloaders_every_n_epochs": 1,
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


def train(
    args: list[str],
    resume: str | None = None,
    task: type[GeoTask] = GeoTask,
    prog: str = "img2loc train",
    root: str = "runs/default",
) -> Path:
    """Run training with LightningCLI arguments; return the checkpoint folder.

    ``task`` is the LightningModule class (``img2loc distill`` passes its subclass),
    ``root`` the default ``--trainer.default_root_dir``.

    A bad option or input raises :class:`TrainSetupError` (one line), not LightningCLI's
    usage text.
    """
    argv0, sys.argv = sys.argv, sys.argv[:1]  # LightningCLI reads `args`, not our argv
    try:
        cli = _CLI(
            task,
            TrainDataModule,
            run=False,
            args=args,
            save_config_kwargs={"overwrite": True},
            trainer_defaults={"callbacks": _callbacks(), "default_root_dir": root},
            seed_everything_default=0,
            parser_kwargs={"prog": prog, "exit_on_error": False},
        )
    except ArgumentError as e:
        raise TrainSetupError(f"{' '.join(str(e).split())} ({OPTIONS_TIP})") from None
    except (FileNotFoundError, ValueError) as e:  # the model or data refused its inputs
        raise TrainSetupError(str(e)) from None
    finally:
        sys.argv = argv0
    trainer = cli.trainer
    if not trainer.loggers or type(trainer.logger).__name__ == "TensorBoardLogger":
        trainer.loggers = _loggers(trainer.default_root_dir)  # type: ignore[assignment]
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
