"""Train the paper's RPN head on a whole box file — the recipe that made the shipped head.

The paper's recipe (Ren et al., section 3.1.3), on torchvision's parts through
:class:`rpn_viz.training.session.TrainingSession`:

* one photo per step, in a seeded shuffle per epoch (:func:`rpn_viz.training.session.example_order`), each photo
  also mirrored left–right (the paper's only augmentation) and, beyond the paper, seen in ``jitter``
  random views (:func:`rpn_viz.training.examples.jittered`: a crop or a zoom-out with the boxes moved and
  clipped, colour jitter, a mirror in half of them), each seeded by the run's seed, the photo and the view;
* 256 anchors sampled per step, at most half positive (torchvision's
  ``BalancedPositiveNegativeSampler``), loss from ``RegionProposalNetwork.compute_loss``; labels from
  torchvision's ``Matcher(0.45, 0.3)`` (``positive_iou`` = :data:`rpn_viz.model.paper.TRAIN_POSITIVE_IOU`,
  set by :func:`rpn_viz.model.paper.labelled_at`): an anchor is positive from IoU 0.45 with a box, not
  the paper's 0.7 — recall counts a box as found from IoU 0.5, and this was measured to find more;
* SGD with momentum 0.9 and weight decay 5e-4; the learning rate drops tenfold for the last quarter
  of the steps (the paper: 0.001 then 0.0001; a fresh head on frozen features takes a larger rate);
* the backbone's last three stride-16 blocks are fine-tuned with the head (``tune_from`` =
  :data:`rpn_viz.model.paper.TUNED_FROM`), as the paper fine-tunes its backbone's upper layers with the
  RPN: :func:`rpn_viz.model.paper.split_for_tuning` moves them from the backbone into the trained part.
  The blocks below are frozen (ImageNet MobileNetV2), so their features are computed once per view
  (photo, mirror, jittered views), before the first step. ``tune_from=CUT`` trains the head alone.

``rpn-viz train --dataset assets/dataset --steps N --seed S --save HEAD.pt`` (:mod:`rpn_viz.commands.train`)
runs it and prints the losses and the time; ``--save`` writes what was trained (the blocks and the head,
about 3 MB; :func:`rpn_viz.model.paper.trained_state`) and a JSON of facts beside it. The shipped ``rpn_viz/trained/paper_rpn_head.pt`` is such a file (its README
gives the exact command).
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from .dataset import AnnotatedPhoto, box_count, load_photos
from .examples import example_from_trace, examples_for, views
from .session import TrainingSession
from .config import StepResult, TrainConfig
from ..model.models import LoadedModel
from ..model.paper import (CUT, TRAIN_POSITIVE_IOU, TUNED_FROM, block_count, labelled_at, split_for_tuning,
                           trained_state)
from ..io.paths import app_root
from ..pipeline.tracing import trace

DEFAULT_STEPS = 4000
DEFAULT_SEED = 0
DEFAULT_LR = 0.01
DEFAULT_JITTER = 4  # jittered views per photo, besides the photo and its mirror
DECAY_AT = 0.75  # fraction of the steps after which the learning rate is divided by 10


@dataclass
class SetRun:
    """A finished (or stopped) training run on a set of photos."""

    session: TrainingSession
    photos: list[AnnotatedPhoto]
    prepare_seconds: float  # backbone features, labels and targets of every photo and its mirror
    train_seconds: float  # the optimisation steps alone

    @property
    def steps(self) -> int:
        return self.session.steps_done

    def loss_means(self, window: int = 50) -> tuple[float, float]:
        """Mean total loss over the first and the last ``window`` steps."""
        losses = [r.total_loss for r in self.session.history]
        if not losses:
            return float("nan"), float("nan")
        return statistics.fmean(losses[:window]), statistics.fmean(losses[-window:])


def start_session(
    start: LoadedModel,
    photos: Sequence[AnnotatedPhoto],
    seed: int = DEFAULT_SEED,
    lr: float = DEFAULT_LR,
    flips: bool = True,
    jitter: int = DEFAULT_JITTER,
    tune_from: int = TUNED_FROM,
    positive_iou: float = TRAIN_POSITIVE_IOU,
) -> tuple[TrainingSession, float]:
    """A :class:`TrainingSession` whose steps go through every photo, its mirror and ``jitter``
    jittered views of it (:func:`rpn_viz.training.examples.jittered`); its setup seconds.

    ``start`` is the paper's RPN; the session trains its blocks ``features[tune_from:CUT]`` with the
    head (:func:`rpn_viz.model.paper.split_for_tuning`; ``CUT``: the head alone). The first photo is the
    session's "own" photo (what a page would draw); the others, the mirrors and the jittered views are
    its extra examples. Anchors are labelled positive from IoU ``positive_iou``
    (:func:`rpn_viz.model.paper.labelled_at`).
    """
    if not photos:
        raise ValueError("no photos to train on")
    clock = time.perf_counter()
    if tune_from != CUT:
        start = split_for_tuning(start, tune_from)
    if positive_iou != start.model.rpn.proposal_matcher.high_threshold:
        start = labelled_at(start, positive_iou)
    loaded = load_photos(photos)  # every photo decoded and checked before any work
    (first, first_image), rest = loaded[0], loaded[1:]
    before = trace(start, first_image)  # the session's own photo: its trace is also its example
    extra = [  # the first photo's other views: the photo itself is the session's own example
        example_from_trace(start.model.rpn, trace(start, image), boxes, first.name, mirrored=flipped)
        for flipped, image, boxes in views(first_image, first.box_tensor(), flips, jitter, seed, 0)[1:]
    ]
    extra += examples_for(start, [(e.name, image, e.box_tensor()) for e, image in rest], flips, jitter, seed, first=1)
    config = TrainConfig("sgd", lr, seed=seed)
    session = TrainingSession(start, first_image, first.box_tensor(), config, before=before, extra=extra,
                              name=first.name)
    return session, time.perf_counter() - clock


def train(
    session: TrainingSession,
    steps: int,
    lr: float = DEFAULT_LR,
    on_progress: Callable[[TrainingSession, StepResult], None] | None = None,
    every: int = 100,
) -> float:
    """``steps`` steps with the tenfold drop after :data:`DECAY_AT` of them; returns the seconds taken."""
    clock = time.perf_counter()
    decay_step = int(steps * DECAY_AT)
    session.set_lr(lr)
    session.run(decay_step, every, on_progress)
    session.set_lr(lr / 10)
    session.run(steps - decay_step, every, on_progress)
    return time.perf_counter() - clock


def head_state(session: TrainingSession) -> dict[str, torch.Tensor]:
    """What the session trained (blocks and head, or the head alone), on the CPU: what ``--save`` writes."""
    return trained_state(session.head)


def _shown(path: Path) -> str:
    """A path relative to the project when it is inside it (so the facts file is the same everywhere)."""
    try:
        return str(path.resolve().relative_to(app_root()))
    except ValueError:
        return str(path)


def save_head(run: SetRun, path: str | Path, box_file: Path, command: str, lr: float,
              jitter: int = DEFAULT_JITTER) -> dict[str, object]:
    """Write the head (``torch.save`` of its state dict) and ``<path>.json`` with the run's facts."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = head_state(run.session)
    torch.save(state, path)
    first, last = run.loss_means()
    facts = {
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "photos": len(run.photos),
        "boxes": box_count(run.photos),
        "steps": run.steps,
        "seed": run.session.config.seed,
        "lr": lr,
        "lr_drop": f"÷10 after {DECAY_AT:.0%} of the steps",
        "flips": any(e.mirrored for e in run.session.examples),
        "jitter": jitter,
        "tuned_blocks": block_count(state),  # backbone blocks fine-tuned with the head (0: the head alone)
        "positive_iou": run.session.rpn.proposal_matcher.high_threshold,  # an anchor's IoU to be labelled positive
        "examples": len(run.session.examples),
        "box_file": _shown(box_file),
        "box_file_sha256": hashlib.sha256(box_file.read_bytes()).hexdigest(),
        "loss_first_50": round(first, 4),
        "loss_last_50": round(last, 4),
        "train_seconds": round(run.train_seconds, 1),
        "prepare_seconds": round(run.prepare_seconds, 1),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "command": command,
    }
    path.with_suffix(".json").write_text(json.dumps(facts, indent=1, ensure_ascii=False) + "\n")
    return facts
