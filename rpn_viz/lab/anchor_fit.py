"""Which boxes do my anchors miss, and which anchors would fit my boxes better?

The questions people who train detectors keep asking, answered with the RPN's own rules:

* **Unmatched boxes.** Training labels anchors with ``Matcher(0.7, 0.3, allow_low_quality_matches=
  True)`` (:func:`rpn_viz.pipeline.anchors.assign_labels`). A box is *matched* when at least one anchor is
  positive for it at IoU ≥ 0.7, *best match only* when its positives come only from the rule "each
  box's best anchor is positive", and has *no positive anchor* when even its best anchor went to
  another box it overlaps more (the rule keeps each anchor's own best box).
* **Best possible recall** (YOLOv5's autoanchor "BPR"): the fraction of boxes whose best anchor
  reaches a chosen IoU, and the mean best IoU — what a perfect head could reach by picking anchors.
* **Fitted anchors**: k-means on the boxes' shapes with the distance 1 − IoU
  (:mod:`rpn_viz.lab.shape_kmeans`), an anchor source like the others (:class:`ShapeAnchors`).

Everything is in network-input pixels: the boxes of a photo are scaled the way the model's
``GeneralizedRCNNTransform`` resizes that photo, and the anchors come from torchvision's
``AnchorGenerator`` (sizes = √(w·h), aspect ratio = h / w) through :mod:`rpn_viz.pipeline.anchors`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor
from torchvision.ops import box_iou

from ..pipeline.anchors import POSITIVE, AnchorSpec, anchors_for_grids, assign_labels, grid_size, tile_anchors
from ..io.box_files import ImageBoxes
from .custom_anchors import model_anchor_set
from ..pipeline.tracing import Trace

MATCHED = "matched at IoU ≥ 0.7"
BEST_MATCH_ONLY = "positive only as a box's best anchor"
UNMATCHED = "no positive anchor"
CATEGORIES = (MATCHED, BEST_MATCH_ONLY, UNMATCHED)


# --------------------------------------------------------------------------------------------------
# the network-input frame of a photo, and anchor sets that can be tiled over any photo
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """One photo as the network sees it: resized to ``input_size``, padded to ``padded_size`` (w, h)."""

    input_size: tuple[int, int]
    padded_size: tuple[int, int]
    scale: tuple[float, float]  # (sx, sy) network-input pixels per photo pixel


@dataclass(frozen=True)
class Resize:
    """The model's resize rule (``GeneralizedRCNNTransform``'s ``min_size``, ``max_size``, ``size_divisible``)."""

    min_size: int = 800
    max_size: int = 1333
    size_divisible: int = 32

    @classmethod
    def of(cls, trace: Trace) -> "Resize":
        transform = trace.model.model.transform
        return cls(int(transform.min_size[-1]), int(transform.max_size), int(transform.size_divisible))

    def frame(self, image_size: tuple[int, int]) -> Frame:
        """The photo of (w, h) pixels after the transform: scale so the short side is ``min_size`` unless the
        long side would pass ``max_size``; each side floor(side · scale) as ``interpolate`` gives with
        ``recompute_scale_factor=True``; the batch padded up to a multiple of ``size_divisible``."""
        w, h = image_size
        scale = min(self.min_size / min(w, h), self.max_size / max(w, h))
        iw, ih = math.floor(w * scale), math.floor(h * scale)
        d = self.size_divisible
        return Frame((iw, ih), (math.ceil(iw / d) * d, math.ceil(ih / d) * d), (iw / w, ih / h))


@dataclass(frozen=True)
class ModelAnchors:
    """A model's multi-level anchor set, tiled over any frame as its ``AnchorGenerator`` does.

    ``strides`` are the backbone's nominal strides per level; a level's grid is ceil(padded / stride)
    (the backbone's padded stride-2 layers round up), and the generator then derives the stride it
    uses as padded // grid, exactly as inside the model.
    """

    sizes: tuple[tuple[float, ...], ...]
    ratios: tuple[tuple[float, ...], ...]
    strides: tuple[int, ...]
    name: str = "the model's anchors"

    @classmethod
    def of(cls, trace: Trace) -> "ModelAnchors":
        sizes, ratios = model_anchor_set(trace)
        pw, ph = trace.preprocess.padded_size
        strides = tuple(2 ** round(math.log2(max(ph / level.grid[0], pw / level.grid[1]))) for level in trace.levels)
        return cls(tuple(sizes), tuple(ratios), strides)

    @property
    def per_cell(self) -> list[int]:
        return [len(s) * len(r) for s, r in zip(self.sizes, self.ratios)]

    def anchors(self, frame: Frame) -> Tensor:
        pw, ph = frame.padded_size
        grids = [(math.ceil(ph / s), math.ceil(pw / s)) for s in self.strides]
        return torch.cat(anchors_for_grids(self.sizes, self.ratios, frame.padded_size, grids))


@dataclass(frozen=True)
class GridAnchors:
    """A one-level lab anchor set (every size with every ratio), tiled over the network input as L1 does."""

    spec: AnchorSpec
    name: str = "custom anchors"

    @property
    def per_cell(self) -> list[int]:
        return [self.spec.k]

    def anchors(self, frame: Frame) -> Tensor:
        return tile_anchors(frame.input_size, self.spec).anchors


@dataclass(frozen=True)
class ShapeAnchors:
    """k anchor shapes, each its own (size, ratio) pair — what k-means fits — at one stride.

    Each pair goes through ``AnchorGenerator`` on its own (so its rounding is torchvision's), on the
    grid :func:`rpn_viz.pipeline.anchors.tile_anchors` uses for the same stride.
    """

    sizes: tuple[float, ...]
    ratios: tuple[float, ...]
    stride: int = 16
    name: str = "fitted anchors"

    @property
    def per_cell(self) -> list[int]:
        return [len(self.sizes)]

    def anchors(self, frame: Frame) -> Tensor:
        rows, cols = grid_size(frame.input_size, self.stride)
        padded = (cols * self.stride, rows * self.stride)
        parts = anchors_for_grids([(s,) for s in self.sizes], [(r,) for r in self.ratios], padded,
                                      [(rows, cols)] * len(self.sizes))
        return torch.cat(parts)


AnchorSource = ModelAnchors | GridAnchors | ShapeAnchors


# --------------------------------------------------------------------------------------------------
# unmatched boxes
# --------------------------------------------------------------------------------------------------


@dataclass
class BoxMatch:
    """How the RPN's training rule treats each of M boxes, given N anchors (network-input pixels)."""

    boxes: Tensor  # (M, 4)
    anchors: Tensor  # (N, 4)
    best_iou: Tensor  # (M,) the box's highest IoU with any anchor considered
    best_anchor: Tensor  # (M,) row in ``anchors`` of that anchor (-1 when no anchor is considered)
    num_matched: Tensor  # (M,) anchors positive for this box at IoU ≥ fg
    num_best_match: Tensor  # (M,) anchors positive for this box only through the best-anchor rule
    fg_iou: float = 0.7

    @property
    def categories(self) -> list[str]:
        """Each box's category: :data:`MATCHED`, :data:`BEST_MATCH_ONLY` or :data:`UNMATCHED`."""
        return [MATCHED if m > 0 else BEST_MATCH_ONLY if b > 0 else UNMATCHED
                for m, b in zip(self.num_matched.tolist(), self.num_best_match.tolist())]

    @property
    def best_anchor_boxes(self) -> Tensor:
        """(M, 4) each box's best anchor (zeros where none)."""
        out = torch.zeros(self.boxes.shape[0], 4)
        ok = self.best_anchor >= 0
        out[ok] = self.anchors[self.best_anchor[ok]].float()
        return out

    def counts(self) -> dict[str, int]:
        cats = self.categories
        return {c: cats.count(c) for c in CATEGORIES}


def match_boxes(anchors: Tensor, boxes: Tensor, image_size: tuple[int, int] | None = None,
                ignore_cross_boundary: bool = False, fg_iou: float = 0.7, bg_iou: float = 0.3) -> BoxMatch:
    """Label ``anchors`` from ``boxes`` with the RPN's rule (:func:`rpn_viz.pipeline.anchors.assign_labels`, torchvision's
    ``Matcher`` with ``allow_low_quality_matches``) and read, per box, what it got.

    A positive anchor belongs to the box it overlaps most (Matcher keeps each anchor's own best box,
    even when the anchor became positive as another box's best anchor), so a box can end with no
    positive anchor at all. With ``ignore_cross_boundary`` (the paper's training) anchors crossing
    the (w, h) image are left out, as in L1.
    """
    boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    anchors = anchors.float()
    m = boxes.shape[0]
    labels = assign_labels(anchors, boxes, image_size, ignore_cross_boundary, fg_iou, bg_iou)
    considered = torch.where(~labels.cross_boundary)[0]
    best_anchor = torch.full((m,), -1, dtype=torch.int64)
    best_iou = torch.zeros(m)
    if m and considered.numel():
        best_iou, arg = box_iou(boxes, anchors[considered]).max(dim=1)
        best_anchor = considered[arg]
    positive = labels.labels == POSITIVE
    owner = labels.matched_gt
    matched = torch.bincount(owner[positive & ~labels.best_anchor_rule], minlength=m)[:m]
    best_only = torch.bincount(owner[positive & labels.best_anchor_rule], minlength=m)[:m]
    return BoxMatch(boxes, anchors, best_iou, best_anchor, matched, best_only, fg_iou)


# --------------------------------------------------------------------------------------------------
# statistics over a set of photos
# --------------------------------------------------------------------------------------------------


@dataclass
class SetStats:
    """Best anchor IoU and category of every box of a set, for one anchor source."""

    source: AnchorSource
    best_iou: Tensor  # (M,)
    categories: list[str]
    labels: list[str]
    num_images: int
    num_anchors: int  # summed over the photos

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def per_cell(self) -> list[int]:
        return self.source.per_cell

    @property
    def num_boxes(self) -> int:
        return int(self.best_iou.numel())

    def best_possible_recall(self, iou: float) -> float:
        """Fraction of boxes with at least one anchor at IoU ≥ ``iou`` (NaN without boxes)."""
        return float((self.best_iou >= iou).float().mean()) if self.num_boxes else float("nan")

    @property
    def mean_best_iou(self) -> float:
        return float(self.best_iou.mean()) if self.num_boxes else float("nan")

    def counts(self) -> dict[str, int]:
        return {c: self.categories.count(c) for c in CATEGORIES}

    def counts_by_label(self) -> dict[str, dict[str, int]]:
        """Per object label (e.g. 'bicycle'): how many of its boxes fall in each category."""
        out: dict[str, dict[str, int]] = {}
        for label, cat in zip(self.labels, self.categories):
            out.setdefault(label, dict.fromkeys(CATEGORIES, 0))[cat] += 1
        return out


def scaled_boxes(image: ImageBoxes, frame: Frame) -> Tensor:
    """A photo's boxes (its own pixels) in network-input pixels."""
    sx, sy = frame.scale
    boxes = torch.tensor(image.boxes, dtype=torch.float32).reshape(-1, 4)
    return boxes * torch.tensor([sx, sy, sx, sy])


def set_stats(source: AnchorSource, images: Sequence[ImageBoxes], resize: Resize,
              ignore_cross_boundary: bool = False, fg_iou: float = 0.7, bg_iou: float = 0.3) -> SetStats:
    """Match every photo's boxes against ``source``'s anchors tiled over that photo's network input.

    Photos whose box file gives no size are skipped (the resize depends on it).
    """
    best, cats, labels = [], [], []
    used = anchors_total = 0
    for image in images:
        if image.size is None or not image.boxes:
            continue
        frame = resize.frame(image.size)
        anchors = source.anchors(frame)
        match = match_boxes(anchors, scaled_boxes(image, frame), frame.input_size, ignore_cross_boundary, fg_iou, bg_iou)
        best.append(match.best_iou)
        cats += match.categories
        labels += list(image.labels)
        used += 1
        anchors_total += int(anchors.shape[0])
    return SetStats(source, torch.cat(best) if best else torch.zeros(0), cats, labels, used, anchors_total)


def photo_stats(source: AnchorSource, frame: Frame, boxes: Tensor, ignore_cross_boundary: bool = False,
                fg_iou: float = 0.7, bg_iou: float = 0.3, name: str = "this photo") -> tuple[SetStats, BoxMatch]:
    """The statistics of one photo whose ``boxes`` are already in network-input pixels, and its match."""
    anchors = source.anchors(frame)
    match = match_boxes(anchors, boxes, frame.input_size, ignore_cross_boundary, fg_iou, bg_iou)
    stats = SetStats(source, match.best_iou, match.categories, [name] * match.boxes.shape[0], 1,
                     int(anchors.shape[0]))
    return stats, match


def trace_frame(trace: Trace) -> Frame:
    """The frame of the traced photo (its boxes are converted with ``rpn_viz.lab.custom_anchors.working_to_input``)."""
    return Frame(trace.preprocess.input_size, trace.preprocess.padded_size, (1.0, 1.0))
