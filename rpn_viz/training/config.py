"""What a training session is started with and what it reports, as plain data.

:class:`~rpn_viz.training.session.TrainingSession` takes a starting model (:func:`load_start`: the paper's fresh
head, or a trained model's head to fine-tune) and a :class:`TrainConfig` (the optimiser, with the
paper's momentum and weight decay); it gives back a :class:`StepResult` per step, the
:class:`LabelSummary` of its anchors, a :class:`LiveView` of the current head and one anchor's whole
story (:class:`AnchorExplanation`). :func:`generalisation` judges a trained head on a photo it never
saw, against the head it started from — numbers and a verdict code; ``ui`` says it in words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Sequence

import torch
from torch import Tensor, nn

from ..pipeline.filtering import FilterResult
from ..model.models import LoadedModel, load_model
from ..model.paper import load_paper_model
from ..model.download import Progress

# --------------------------------------------------------------------------------------------------
# how a session starts
# --------------------------------------------------------------------------------------------------

OptimizerName = Literal["sgd", "adam"]

#: Defaults that train the paper's fresh head on one photo in ~100 steps (see tests/test_learn.py).
DEFAULT_STEPS = 100
DEFAULT_LR = {"sgd": 0.01, "adam": 1e-3}
MOMENTUM = 0.9  # the paper's SGD momentum
WEIGHT_DECAY = 5e-4  # the paper's weight decay


@dataclass(frozen=True)
class TrainConfig:
    """How the head is optimised. ``lr=None`` means the default for the optimizer."""

    optimizer: OptimizerName = "sgd"
    lr: float | None = None
    momentum: float = MOMENTUM
    weight_decay: float = WEIGHT_DECAY
    seed: int = 0

    @property
    def learning_rate(self) -> float:
        return DEFAULT_LR[self.optimizer] if self.lr is None else float(self.lr)

    def as_json(self) -> dict[str, object]:
        return {
            "optimizer": self.optimizer,
            "lr": self.learning_rate,
            "momentum": self.momentum if self.optimizer == "sgd" else None,
            "weight_decay": self.weight_decay,
            "seed": self.seed,
        }


def optimizer_for(params: list[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """SGD with the paper's momentum and weight decay, or Adam."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.learning_rate, momentum=config.momentum, weight_decay=config.weight_decay
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}; choose sgd or adam")


START_PAPER = "paper"


def load_start(
    start: str = START_PAPER,
    *,
    weights_dir: str | None = None,
    checkpoint: str | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    allow_download: bool = True,
    progress: Callable[[Progress], None] | None = None,
) -> LoadedModel:
    """The model whose head is trained: ``"paper"`` (fresh head on ImageNet MobileNetV2, seeded) or a
    registry name (its COCO head — or ``checkpoint``'s — is fine-tuned)."""
    if start == START_PAPER:
        if checkpoint is not None:
            raise ValueError("--checkpoint is for fine-tuning a Faster R-CNN; choose --start <model name>")
        return load_paper_model(weights_dir, seed=seed, device=device, allow_download=allow_download,
                                progress=progress)
    return load_model(start, weights_dir=weights_dir, checkpoint=checkpoint, device=device,
                      allow_download=allow_download, progress=progress)


# --------------------------------------------------------------------------------------------------
# what a session reports
# --------------------------------------------------------------------------------------------------


@dataclass
class StepResult:
    """One optimisation step: its losses (before the update) and the mini-batch they were computed on."""

    step: int  # 1 for the first step
    objectness_loss: float
    box_loss: float
    total_loss: float
    positive: Tensor  # (P,) flat anchor rows (trace order) sampled as positives, CPU int64
    negative: Tensor  # (256 - P,) flat anchor rows sampled as negatives
    ms: float  # wall time of the step
    example: int = 0  # which of the session's examples the step trained on (0: the session's own photo)

    def as_json(self) -> dict[str, float | int]:
        return {
            "step": self.step,
            "objectness": self.objectness_loss,
            "box": self.box_loss,
            "total": self.total_loss,
            "positives": int(self.positive.numel()),
            "negatives": int(self.negative.numel()),
        }


@dataclass(frozen=True)
class LabelSummary:
    """How the anchors were labelled for the user's boxes (the numbers the page explains)."""

    anchors: int
    positive: int  # label 1
    positive_by_iou: int  # IoU ≥ fg threshold with some box
    positive_best_match: int  # positive only because it is a box's best anchor
    negative: int  # label 0: IoU < bg threshold with every box
    ignored: int  # label -1: in between
    fg_iou: float
    bg_iou: float
    best_anchor_iou: tuple[float, ...]  # per box: IoU of its best anchor

    def as_json(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self).items()}


@dataclass
class LiveView:
    """The current head's outputs on the cached features — what a page redraws between steps."""

    step: int
    objectness: list[Tensor]  # per level A×H×W logits (CPU)
    result: FilterResult  # post-processing with the model's own test settings (== trace's result)
    top_boxes: Tensor  # (≤TOP_K, 4) best proposals, original-photo pixels
    top_scores: Tensor  # their objectness probabilities
    best_iou: list[float]  # per user box: best IoU among ``top_boxes``


@dataclass(frozen=True)
class AnchorExplanation:
    """One anchor's whole story, for the page's plain-language explanation (network-input pixels)."""

    index: int  # row in the flat anchor list
    level: str
    cell: tuple[int, int]  # (row, col)
    shape: str  # e.g. "256px · 1:1"
    box: tuple[float, float, float, float]
    label: int  # 1 positive, 0 negative, -1 ignored
    iou: float  # best IoU with a user box
    box_index: int  # which user box that is
    target: tuple[float, float, float, float]  # BoxCoder.encode: deltas that move it onto that box
    predicted: tuple[float, float, float, float]  # what the head outputs now
    logit: float  # objectness logit now
    probability: float  # sigmoid(logit)
    scores: tuple[float, float] | None  # the paper head's (background, object) scores; None for RPNHead
    softmax: float | None  # softmax of those scores, "object" — equals ``probability``


@dataclass(frozen=True)
class Generalisation:
    """How a trained head did on a photo it never saw, against the head it started from."""

    kind: Literal["carries over", "improved", "memorised"]
    gain: float  # mean change of the best top-k IoU per box
    good_iou: float  # the IoU every box must reach for "carries over"


GOOD_IOU = 0.7  # the paper's positive-anchor threshold: a box found this well is found
REAL_GAIN = 0.05  # a mean best-IoU gain smaller than this is noise on a handful of boxes


def generalisation(before: Sequence[float], after: Sequence[float]) -> Generalisation:
    """Verdict from per-box best top-k IoUs on an unseen photo, before and after training.

    "carries over": every box has a proposal with IoU ≥ :data:`GOOD_IOU`; "improved": the mean best
    IoU rose by more than :data:`REAL_GAIN`; otherwise "memorised".
    """
    if not after:
        raise ValueError("no boxes to judge on")
    gain = sum(b - a for a, b in zip(before, after)) / len(after)
    kind = "carries over" if min(after) >= GOOD_IOU else "improved" if gain > REAL_GAIN else "memorised"
    return Generalisation(kind, gain, GOOD_IOU)
