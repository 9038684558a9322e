"""Distillation: a small student learns a teacher's cell probabilities (``img2loc distill``).

The teacher is any checkpoint ``img2loc train`` writes, or several (an ensemble: the mean
of their cell probabilities). It runs online, in eval mode and without gradients, on the
very views the student trains on (the same augmented crop; in feature mode the same
cached features), so the student learns the teacher's whole distribution over cells, not
just the one true place. Everything else (validation on true coordinates, metrics,
checkpoints, the weight average, resuming) is :class:`~img2loc.training.task.GeoTask`'s:
the student's checkpoint is an ordinary training checkpoint that ``img2loc export`` and
``img2loc eval`` read unchanged. Teachers are held outside the module tree, so none of
their weights enter the student's state dict or checkpoint (only their paths, as
hyperparameters).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from img2loc.geo.cells import CellSet
from img2loc.inference.preprocess import PreprocessConfig
from img2loc.models.checkpoint import load_checkpoint
from img2loc.models.geolocator import GeoLocator
from img2loc.training.datamodule import TrainDataModule
from img2loc.training.precheck import TrainSetupError
from img2loc.training.task import GeoTask


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(
        sa[k].shape == sb[k].shape and torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa
    )


class Teachers:
    """One or more checkpoints whose mean cell probabilities are the student's targets.

    Teachers whose backbones hold the same weights and preprocessing (heads trained on
    one set of ``img2loc embed`` features, say) share one backbone pass per batch.
    Deliberately not an ``nn.Module``: a student holding it keeps none of its weights.
    """

    def __init__(self, paths: list[str], cells: CellSet, temperature: float = 1.0) -> None:
        if not paths:
            raise ValueError("no teacher: pass --teacher CKPT (repeat it for an ensemble)")
        if temperature <= 0:
            raise ValueError(f"--model.temperature must be > 0, got {temperature}")
        self.paths, self.temperature = list(paths), temperature
        self.models: list[GeoLocator] = []
        #: Teachers sharing a backbone pass: (the pass's model, indices into ``models``).
        self.groups: list[tuple[GeoLocator, list[int]]] = []
        tokens = cells.tokens()
        for path in self.paths:
            try:
                model, tcells, _, _ = load_checkpoint(path)
            except (OSError, ValueError, KeyError, RuntimeError) as e:
                msg = " ".join(str(e).split())
                raise ValueError(
                    f"--teacher {path}: not a checkpoint written by `img2loc train` ({msg})"
                ) from None
            if len(tcells) != len(cells) or tcells.tokens() != tokens:
                what = (
                    f"{len(tcells)} cells, --model.cells {len(cells)}"
                    if len(tcells) != len(cells)
                    else f"other cells than the {len(cells)} of --model.cells"
                )
                raise ValueError(
                    f"--teacher {path} predicts over {what}: distill with the cell set the "
                    "teacher was trained with (the cells.json of its run)"
                )
            model.requires_grad_(False)
            self.models.append(model)
            for lead, members in self.groups:
                if lead.preprocess == model.preprocess and _same_weights(
                    lead.backbone, model.backbone
                ):
                    members.append(len(self.models) - 1)
                    break
            else:
                self.groups.append((model, [len(self.models) - 1]))
        self.device: torch.device | None = None  # set by the first `to`

    def to(self, device: torch.device, channels_last: bool = False) -> Teachers:
        """Move the teachers to the student's device (once; a no-op after)."""
        if device != self.device:
            for m in self.models:
                m.to(device)
                if channels_last:
                    m.to(memory_format=torch.channels_last)
            self.device = device
        return self

    def check_features(self, backbone: torch.nn.Module, features: str) -> None:
        """Refuse teachers whose backbone did not compute these features (their heads
        would read another network's features)."""
        for lead, members in self.groups:
            if not _same_weights(lead.backbone, backbone):
                raise TrainSetupError(
                    f"--teacher {self.paths[members[0]]}: its backbone did not compute "
                    f"--data.features {features} (it was fine-tuned, or is another network); "
                    "distill on --data.shards instead"
                )

    @torch.no_grad()
    def probs(self, batch: dict[str, Any], pre: PreprocessConfig) -> torch.Tensor:
        """Mean cell probabilities of the teachers on a batch's views (``pre``: the
        preprocessing the batch's images were normalised with)."""
        total: torch.Tensor | None = None
        for lead, members in self.groups:
            if "feat" in batch:
                feats = batch["feat"].float()
            else:
                feats = lead.forward_features(_views_for(batch["image"], pre, lead.preprocess))
            for i in members:
                logits = self.models[i].forward_head(feats).float()
                p = torch.sigmoid(logits / self.temperature)
                total = p if total is None else total + p
        assert total is not None
        return total / len(self.models)


def _views_for(x: torch.Tensor, have: PreprocessConfig, want: PreprocessConfig) -> torch.Tensor:
    """The student's normalised views as a teacher with preprocessing ``want`` expects
    them: renormalised, and resized to its input size."""
    if have.mean != want.mean or have.std != want.std:
        shape = (1, 3, 1, 1)

        def t(v: tuple[float, float, float]) -> torch.Tensor:
            return torch.tensor(v, dtype=x.dtype, device=x.device).view(shape)

        x = (x * t(have.std) + t(have.mean) - t(want.mean)) / t(want.std)
    s = want.input_size
    if x.shape[-1] != s or x.shape[-2] != s:
        x = F.interpolate(x, size=(s, s), mode="bilinear", antialias=True, align_corners=False)
    return x


def distill_targets(
    teacher: torch.Tensor, labels: torch.Tensor, pos_weight: torch.Tensor, alpha: float = 0.0
) -> torch.Tensor:
    """The BCE targets whose optimum, under GeoTask's positive weight, is the teacher.

    With positive weight ``w``, BCE against a target ``q`` is minimised at
    ``sigmoid(z) = w q / (w q + 1 - q)``: GeoTask's models learn that inflated
    probability, and so did the teachers. Feeding the teacher's probability ``p`` as
    ``q`` would inflate it a second time; ``q = p / (w (1 - p) + p)`` makes the optimum
    ``p`` itself, so the student's probabilities mean what a trained model's do. On a
    certain teacher (p in {0, 1}) q = p, so the loss is GeoTask's; elsewhere its gradient
    is plain BCE's, ``sigmoid(z) - p``, times ``w / (w (1 - p) + p)`` (the weight of
    cells the teacher believes in grows towards ``w``, as for true positives).
    ``alpha`` mixes in the true (multi-label) targets: BCE is linear in its target.
    """
    p = teacher.float().clamp(0.0, 1.0)
    q = p / (pos_weight * (1.0 - p) + p).clamp_min(1e-12)
    return alpha * labels.float() + (1.0 - alpha) * q if alpha else q


class DistillTask(GeoTask):
    """GeoTask whose training loss follows teachers' cell probabilities.

    Every other argument is :class:`GeoTask`'s (the student: any timm backbone by name,
    its head, optimiser, weight average, staged unfreezing...).
    """

    def __init__(
        self,
        cells: str | dict[str, Any],
        teachers: list[str],
        alpha: float = 0.0,
        temperature: float = 1.0,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            cells: cell set JSON path: the one the teachers were trained with.
            teachers: training checkpoints (``.ckpt``) whose mean cell probabilities
                the student learns; ``img2loc distill --teacher CKPT`` (repeatable).
            alpha: weight of the true multi-label targets mixed into the teacher's
                (0 = the teacher alone, 1 = plain ``img2loc train``).
            temperature: divides the teachers' logits (> 1 softens them).
            **kwargs: the student's :class:`GeoTask` arguments.
        """
        super().__init__(cells, **kwargs)
        if self.hparams["loss"] != "bce":
            raise ValueError("distillation trains the multi-label loss: drop --model.loss ce")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"--model.alpha must be in [0, 1], got {alpha}")
        self.teachers = Teachers(list(teachers), self.cells, temperature)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if self._frozen_backbone:  # feature mode: teachers' heads read the same features
            dm = getattr(self.trainer, "datamodule", None)
            dm = dm.data if isinstance(dm, TrainDataModule) else dm
            self.teachers.check_features(self.model.backbone, str(getattr(dm, "features", "")))

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        self.teachers.to(self.device, self.hparams["channels_last"])
        views = batch
        if "image" in batch and self.hparams["channels_last"]:
            views = {**batch, "image": batch["image"].contiguous(memory_format=torch.channels_last)}
        batch = {**batch, "teacher": self.teachers.probs(views, self.model.preprocess)}
        return super().training_step(batch, batch_idx)

    def compute_loss(self, logits: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        if "teacher" not in batch:  # validation: the true coordinates, as `img2loc train`
            return super().compute_loss(logits, batch)
        alpha = float(self.hparams["alpha"])
        teacher = batch["teacher"]
        labels = teacher  # unused when alpha is 0
        if alpha:
            labels = batch.get("target")
            if labels is None:
                labels = self.targets(batch["lat"], batch["lon"])
        y = distill_targets(teacher, labels.to(self.device), self.pos_weight, alpha)
        return F.binary_cross_entropy_with_logits(logits.float(), y, pos_weight=self.pos_weight)
