"""Train an RPN head on your own boxes, one visible step at a time.

:class:`TrainingSession` runs the backbone **once** (through :func:`rpn_viz.trace`, which also gives
the "before" proposals), keeps the feature maps, and then trains only the head. Everything that
decides what is learned is torchvision's own, called on the session's copy of ``model.rpn``:

* anchors from the model's ``AnchorGenerator`` (the trace's anchors);
* labels from ``RegionProposalNetwork.assign_targets_to_anchors`` with the model's own matcher, the
  paper's ``Matcher(0.7, 0.3, allow_low_quality_matches=True)``: IoU ≥ 0.7 with a box is positive,
  < 0.3 with every box negative, each box's best anchor(s) positive too, the rest ignored
  (``rpn-viz train`` starts from a copy that is positive from a lower IoU:
  :func:`rpn_viz.model.paper.labelled_at`);
* regression targets from ``BoxCoder.encode`` (the deltas that would move each anchor onto its box);
* the loss from ``RegionProposalNetwork.compute_loss``: ``BalancedPositiveNegativeSampler`` draws
  256 labelled anchors, at most half positive; binary cross-entropy on their objectness logits plus
  smooth-L1 (beta 1/9) on the positives' deltas, divided by the mini-batch size.

The sampler draws with torch's global generator. Each step seeds it with :meth:`sampling_seed`
inside ``torch.random.fork_rng`` (so the caller's random state is left as it was) and records the
sampler's own output while ``compute_loss`` runs — the mini-batch a step reports *is* the one its
loss was computed on.

Labels and targets are computed once: the anchors and boxes never change, only the head does.
Unlike the paper (which ignores anchors crossing the image border while training), torchvision keeps
them; we follow torchvision, whose loss this is.

The cached, shared models are never touched: a session deep-copies ``model.rpn`` and shares the rest
(transform, backbone — frozen, never written). ``rpn-viz learn`` is the command-line form
(:mod:`rpn_viz.commands.learn`); its settings, starting model and the results it reports are
:mod:`rpn_viz.training.config`; what one photo gives the loss is :mod:`rpn_viz.training.examples`; training on a
whole box file is :mod:`rpn_viz.training.train_set`.
"""

from __future__ import annotations

import copy
import functools
import math
import threading
import time
from typing import Callable, Sequence

import torch
from torch import Tensor, nn
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.rpn import RegionProposalNetwork, concat_box_prediction_layers
from torchvision.ops import box_iou

from ..pipeline.boxes import best_iou
from ..model.device import to_cpu
from .examples import (TOP_K, Example, TopProposals, best_iou_top_k, check_boxes, example_from_trace, example_order,
                       top_proposals)
from ..pipeline.filtering import FilterResult, FilterSettings, filter_stages
from ..model.models import LoadedModel, WeightsInfo
from ..model.paper import PAPER_SPEC, PaperRPNHead
from ..pipeline.tracing import ImageInput, Trace, as_loaded_image, head_parts, trace
from .config import AnchorExplanation, LabelSummary, LiveView, StepResult, TrainConfig, optimizer_for

_RNG_LOCK = threading.Lock()  # guards the seeded draw of a step's mini-batch (torch's global generator)


class _RecordingSampler:
    """Wraps ``BalancedPositiveNegativeSampler`` and keeps its last output (the masks ``compute_loss`` used)."""

    def __init__(self, sampler: det_utils.BalancedPositiveNegativeSampler) -> None:
        self.sampler = sampler
        self.last: tuple[list[Tensor], list[Tensor]] | None = None

    def __call__(self, labels: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        self.last = self.sampler(labels)
        return self.last


def copy_for_training(model: nn.Module) -> nn.Module:
    """A copy of a first-stage model with its own ``rpn`` (deep copy) and everything else shared.

    Transform, backbone (and a detector's ROI heads) stay the very same objects — frozen and never
    written — so a session costs the size of one RPN head, and the cached models stay bit-identical.
    """
    memo: dict[int, object] = {id(child): child for name, child in model.named_children() if name != "rpn"}
    return copy.deepcopy(model, memo)


def _locked(method: Callable) -> Callable:
    """Run a :class:`TrainingSession` method under the session's lock (see the class docstring)."""

    @functools.wraps(method)
    def wrapper(self: "TrainingSession", *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


class TrainingSession:
    """Train one model's RPN head on one photo's boxes, step by step.

    ``step()`` does one update and returns its :class:`StepResult`; a page calls it repeatedly and
    redraws from :meth:`live` between steps (Stop is simply not calling it again). ``history`` keeps
    every step. :meth:`trained_model` freezes the current head into a model ``rpn_viz.trace`` can
    show anywhere in the app.

    ``start`` is never modified: the session trains a deep copy of its ``rpn``.

    Thread-safe: a step, and every read of the head (``live``, ``trained_model``, ``trace``, …), holds
    the session's lock. Streamlit starts a new script thread on a click while the old one finishes
    its current step; the lock keeps a step's parameters, loss and recorded mini-batch together.
    """

    def __init__(
        self,
        start: LoadedModel,
        image: ImageInput,
        boxes: Sequence[Sequence[float]] | Tensor,
        config: TrainConfig | None = None,
        *,
        before: Trace | None = None,
        extra: Sequence[Example] = (),
        name: str = "this photo",
    ) -> None:
        """``boxes`` are in the original photo's pixels. ``before`` may pass a trace of ``start`` on
        ``image`` that the caller already has (an app's cached one): the backbone then does not run again.
        ``extra`` are more photos (see :func:`examples_for`, made with the same ``start``): the steps
        then go through this photo and the extras, one photo per step (:func:`example_order`);
        ``name`` names this photo among them (a mirrored extra of the same name is the same photo).
        """
        self.start = start
        self.config = config or TrainConfig()
        self.device = start.device
        clock = time.perf_counter()

        # One trace: the "before" picture, the backbone's features and the anchors, all at once.
        self.source = as_loaded_image(image)
        if before is not None and before.model is not start:
            raise ValueError("`before` must be a trace of the starting model")
        self.before: Trace = before if before is not None else trace(start, self.source)
        self.image = self.before.image
        self.boxes = check_boxes(boxes, self.before.preprocess.original_size)  # original pixels
        own = example_from_trace(start.model.rpn, self.before, self.boxes, name)
        self.examples: list[Example] = [own, *extra]
        self.features, self.anchors, self.boxes_input = own.features, own.anchors, own.boxes_input
        self.labels: list[Tensor] = [own.labels]
        self.regression_targets: list[Tensor] = [own.targets]
        self.num_anchors_per_level = self.before.num_anchors_per_level
        self.input_hw = (self.before.preprocess.input_size[1], self.before.preprocess.input_size[0])
        with torch.no_grad():
            self.anchor_iou = box_iou(own.boxes_input, own.anchors)  # (boxes, anchors), for the explanations

        self.model = copy_for_training(start.model)
        self.rpn: RegionProposalNetwork = self.model.rpn
        self.head = self.rpn.head
        for parameter in self.head.parameters():
            parameter.requires_grad_(True)
        self.settings = FilterSettings.from_rpn(self.rpn)

        self._sampler = _RecordingSampler(self.rpn.fg_bg_sampler)
        self._loss_rpn = copy.copy(self.rpn)  # shares every module; only its sampler is the recorder
        self._loss_rpn.fg_bg_sampler = self._sampler

        self.optimizer = optimizer_for([p for p in self.head.parameters() if p.requires_grad], self.config)
        self.history: list[StepResult] = []
        self._lock = threading.RLock()
        self.recall_before = best_iou_top_k(self.before, self.boxes)
        self.setup_ms = (time.perf_counter() - clock) * 1000.0

    # --- training ---------------------------------------------------------------------------

    @property
    @_locked
    def steps_done(self) -> int:
        """Steps taken so far (waits for a step in progress in another thread)."""
        return len(self.history)

    def sampling_seed(self, step: int) -> int:
        """The seed torch's generator gets before step ``step`` (1-based) samples its mini-batch."""
        return self.config.seed * 1_000_003 + step

    def forward_head(self, example: int = 0) -> tuple[Tensor, Tensor]:
        """The head on an example's cached features: flat objectness logits (N, 1) and deltas (N, 4), trace order."""
        logits, deltas = self.head(self.examples[example].features)
        return concat_box_prediction_layers(logits, deltas)

    @_locked
    def step(self) -> StepResult:
        """One SGD/Adam step on the head; returns the losses it minimised and its sampled mini-batch."""
        start = time.perf_counter()
        step = self.steps_done + 1
        index = example_order(len(self.examples), step, self.config.seed)
        example = self.examples[index]
        objectness, deltas = self.forward_head(index)
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        # The lock keeps another thread's session (an app serves many) from reseeding mid-sample.
        with _RNG_LOCK, torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.sampling_seed(step))
            objectness_loss, box_loss = self._loss_rpn.compute_loss(
                objectness, deltas, [example.labels], [example.targets]
            )
        positive_mask, negative_mask = self._sampler.last
        total = objectness_loss + box_loss
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)  # no gradients kept between steps: a head's size per session
        # what the step reports, in one transfer from the model's device (rpn_viz.model.device.to_cpu)
        losses, positive, negative = to_cpu([torch.stack([objectness_loss, box_loss, total]).detach(),
                                              positive_mask[0], negative_mask[0]])
        objectness_value, box_value, total_value = losses.tolist()
        result = StepResult(
            step=step,
            objectness_loss=objectness_value,
            box_loss=box_value,
            total_loss=total_value,
            positive=torch.where(positive)[0],
            negative=torch.where(negative)[0],
            ms=(time.perf_counter() - start) * 1000.0,
            example=index,
        )
        self.history.append(result)
        return result

    def run(
        self,
        steps: int,
        every: int = 0,
        on_progress: Callable[["TrainingSession", StepResult], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[StepResult]:
        """``steps`` more steps; ``on_progress`` after every ``every``-th step and the last; stops early
        when ``should_stop()`` says so (checked before each step)."""
        done: list[StepResult] = []
        for i in range(steps):
            if should_stop is not None and should_stop():
                break
            done.append(self.step())
            last = i == steps - 1
            if on_progress is not None and (last or (every > 0 and len(done) % every == 0)):
                on_progress(self, done[-1])
        return done

    # --- what the page shows ----------------------------------------------------------------

    def label_summary(self) -> LabelSummary:
        """Counts of positive / negative / ignored anchors and each box's best anchor IoU."""
        labels = self.labels[0]
        matcher = self.rpn.proposal_matcher
        max_iou = self.anchor_iou.max(dim=0).values
        positive = labels == 1
        by_iou = positive & (max_iou >= matcher.high_threshold)
        return LabelSummary(
            anchors=int(labels.numel()),
            positive=int(positive.sum()),
            positive_by_iou=int(by_iou.sum()),
            positive_best_match=int((positive & ~by_iou).sum()),
            negative=int((labels == 0).sum()),
            ignored=int((labels == -1).sum()),
            fg_iou=float(matcher.high_threshold),
            bg_iou=float(matcher.low_threshold),
            best_anchor_iou=tuple(self.anchor_iou.max(dim=1).values.tolist()),
        )

    @_locked
    @torch.no_grad()
    def live(self, k: int = TOP_K) -> LiveView:
        """The current head's heatmaps and proposals from the cached features (no backbone run).

        Runs the same ops as ``rpn_viz.trace`` after the backbone, so ``result`` equals the trace
        of :meth:`current_model` (tests check it); costs a head forward plus NMS.
        """
        logits, result = self._propose(self.features, self.anchors, self.num_anchors_per_level, self.input_hw)
        top = self.before.to_original(result.boxes[:k])
        return LiveView(
            step=self.steps_done,
            objectness=to_cpu([logit[0] for logit in logits]),
            result=result,
            top_boxes=top,
            top_scores=result.scores[:k],
            best_iou=best_iou(self.boxes, top).tolist(),
        )

    def _propose(self, features: list[Tensor], anchors: Tensor, per_level: list[int],
                 input_hw: tuple[int, int]) -> tuple[list[Tensor], FilterResult]:
        """The current head on backbone features: its per-level logits and the filtered proposals
        (the ops of ``rpn_viz.trace`` after the backbone)."""
        logits, deltas = self.head(features)
        flat_logits, flat_deltas = concat_box_prediction_layers(logits, deltas)
        decoded = self.rpn.box_coder.decode(flat_deltas, [anchors]).view(-1, 4)
        return logits, filter_stages(decoded, flat_logits.flatten(), per_level, input_hw, self.settings)

    @_locked
    @torch.no_grad()
    def top_on(self, traced: Trace, k: int = TOP_K) -> TopProposals:
        """The current head's top-``k`` proposals on another photo, from the *starting* model's trace of it.

        The backbone is the start's, frozen and shared, so its features there are this model's too: only
        the head and the post-processing run, no backbone pass (which is ~150 MB at its peak on a server
        where a class trains). Equals ``top_proposals(self.trace(photo), k)`` (tests check it).
        """
        if traced.model is not self.start:
            raise ValueError("`traced` must be a trace of the starting model")
        features = [level.features[None].to(self.device) for level in traced.levels]
        iw, ih = traced.preprocess.input_size
        _, result = self._propose(features, traced.anchors.to(self.device), traced.num_anchors_per_level, (ih, iw))
        return top_proposals(traced, k, result)

    @property
    def photo_count(self) -> int:
        """How many different photos the steps go through (a mirrored copy is the same photo)."""
        return len({example.name for example in self.examples})

    @_locked
    def weights_info(self) -> WeightsInfo:
        """Honest label of the current head: the start's own label until a step has been taken."""
        if self.steps_done == 0:
            return self.start.weights
        steps, photos = self.steps_done, self.photo_count
        if self.start.spec.name == PAPER_SPEC.name and self.start.weights.kind == "untrained":
            start = f"the paper's fresh head, seed {self.start.weights.seed}, on ImageNet MobileNetV2"
        elif self.start.spec.name == PAPER_SPEC.name:
            start = self.start.weights.label
        else:
            start = f"{self.start.spec.title}, {self.start.weights.label}"
        return WeightsInfo(
            "trained here",
            f"your RPN: trained on {photos} photo{'s' if photos != 1 else ''} for {steps} "
            f"step{'s' if steps != 1 else ''} (from {start})",
            self.start.weights.path,
            self.start.weights.sha256,
            self.config.seed,
        )

    def current_model(self) -> LoadedModel:
        """The live model (its head keeps changing while training goes on) — for a quick trace."""
        return LoadedModel(self.start.spec, self.model, self.weights_info(), self.device, self.start.num_classes)

    @_locked
    def trained_model(self) -> LoadedModel:
        """A frozen snapshot of the current head as a model of its own: "your RPN" for the whole app.

        Later steps do not change it; the shared backbone is not copied.
        """
        snapshot = copy_for_training(self.model)
        for parameter in snapshot.rpn.parameters():
            parameter.requires_grad_(False)
        return LoadedModel(self.start.spec, snapshot, self.weights_info(), self.device, self.start.num_classes)

    @_locked
    def trace(self, image: ImageInput | None = None) -> Trace:
        """``rpn_viz.trace`` of the current head on the session's photo (or another one)."""
        return trace(self.current_model(), self.source if image is None else image)

    def recall_now(self, k: int = TOP_K) -> list[float]:
        """Per box: best IoU among the current top-``k`` proposals (original-photo pixels)."""
        return self.live(k).best_iou

    @_locked
    def set_lr(self, lr: float) -> None:
        """Change the learning rate for the following steps (the optimizer's state is kept)."""
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError("the learning rate must be a positive number")
        for group in self.optimizer.param_groups:
            group["lr"] = float(lr)
        self.config = TrainConfig(self.config.optimizer, float(lr), self.config.momentum,
                                  self.config.weight_decay, self.config.seed)

    @_locked
    def minibatch_boxes(self, result: StepResult | None = None) -> tuple[Tensor, Tensor]:
        """(positive, negative) anchor boxes of a step's mini-batch (the last step's by default), input pixels
        of the photo that step trained on (``result.example``)."""
        result = result or (self.history[-1] if self.history else None)
        if result is None:
            empty = torch.zeros(0, 4)
            return empty, empty
        anchors = self.examples[result.example].anchors.cpu()
        return anchors[result.positive], anchors[result.negative]

    def best_anchor(self, box_index: int = 0) -> int:
        """The anchor with the highest IoU with user box ``box_index`` (always labelled positive)."""
        return int(self.anchor_iou[box_index].argmax())

    @_locked
    @torch.no_grad()
    def explain_anchor(self, index: int) -> AnchorExplanation:
        """Label, IoU, regression target, current deltas and objectness of one anchor (flat row ``index``).

        For the paper's head it also gives the two softmax scores, whose "object" probability equals
        the sigmoid of the logit that torchvision's loss sees.
        """
        level, row, col, a = self.before.locate(index)
        feature = self.features[level.index]
        _, logits, deltas = head_parts(self.head, feature)
        logit = float(logits[0, a, row, col])
        scores = softmax = None
        if isinstance(self.head, PaperRPNHead):
            background, obj = self.head.scores(self.head.conv(feature))
            scores = (float(background[0, a, row, col]), float(obj[0, a, row, col]))
            softmax = float(torch.softmax(torch.tensor(scores, dtype=torch.float64), dim=0)[1])
        ious = self.anchor_iou[:, index]
        box_index = int(ious.argmax())
        return AnchorExplanation(
            index=index,
            level=level.name,
            cell=(row, col),
            shape=level.anchor_shapes[a].label,
            box=tuple(self.anchors[index].tolist()),
            label=int(self.labels[0][index]),
            iou=float(ious[box_index]),
            box_index=box_index,
            target=tuple(self.regression_targets[0][index].tolist()),
            predicted=tuple(deltas[0].view(-1, 4, *deltas.shape[-2:])[a, :, row, col].tolist()),
            logit=logit,
            probability=float(torch.sigmoid(torch.tensor(logit, dtype=torch.float64))),
            scores=scores,
            softmax=softmax,
        )

    @_locked
    def losses(self) -> dict[str, list[float]]:
        """Loss curves so far: ``{"objectness": [...], "box": [...], "total": [...]}``, one value per step."""
        return {
            "objectness": [r.objectness_loss for r in self.history],
            "box": [r.box_loss for r in self.history],
            "total": [r.total_loss for r in self.history],
        }

