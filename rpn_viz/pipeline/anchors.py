"""Anchor geometry: the k shapes of a level, inside the image, tiling, the paper's labels and mini-batch.

Faster R-CNN (Ren et al., 2015, §3.1) places k anchors — every combination of a few *scales*
(√area, in input pixels) and *aspect ratios* — at every cell of a stride-s feature map. Training
labels each anchor from its IoU with the ground-truth boxes: ≥ 0.7 positive, < 0.3 negative, in
between ignored, plus the best anchor(s) of each ground-truth box as positives so that no object is
left without one; a 256-anchor mini-batch, at most half positive, is sampled per image. Anchors
that cross the image border are ignored in the paper's training.

Everything here is torchvision's own machinery, on a fake image/feature map of the right size where
no model is at hand: ``AnchorGenerator`` gives the shapes (a shape's width and height are those of
its cell anchors, after the generator's rounding, in its order: ratio-major, then size) and tiles
them; ``box_iou`` + ``Matcher(0.7, 0.3, allow_low_quality_matches=True)`` label them
(``RegionProposalNetwork.assign_targets_to_anchors`` does exactly this);
``BalancedPositiveNegativeSampler``'s draws sample them. Boxes are (x1, y1, x2, y2) in
network-input pixels throughout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import torch
from torch import Tensor
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import box_iou

from ..model import paper

POSITIVE, NEGATIVE, IGNORED = 1, 0, -1
Rounding = Literal["ceil", "floor"]


# --------------------------------------------------------------------------------------------------
# the shapes of a level, and "inside the image"
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnchorShape:
    """One of the A anchors every cell of a level gets, as ``AnchorGenerator`` defines it."""

    index: int  # position among the A anchors of a cell
    size: float  # sqrt(area) asked for, in input pixels
    ratio: float  # height / width (torchvision's aspect_ratio)
    width: float  # after AnchorGenerator's rounding
    height: float

    @property
    def label(self) -> str:
        return f"{self.size:g}px · {_ratio_label(self.ratio)}"


def _ratio_label(ratio: float) -> str:
    """'1:2' style label for height/width ratio (1:2 = wide, 2:1 = tall)."""
    if ratio >= 1:
        return f"{ratio:g}:1 (tall)" if ratio > 1 else "1:1"
    return f"1:{1 / ratio:g} (wide)"


def anchor_shapes(generator: torch.nn.Module, level: int = 0) -> list[AnchorShape]:
    """The A anchor shapes of a level, in ``AnchorGenerator``'s order (ratio-major, then size)."""
    sizes, ratios = generator.sizes[level], generator.aspect_ratios[level]
    cell = generator.cell_anchors[level].cpu()
    shapes = []
    for i, (x1, y1, x2, y2) in enumerate(cell.tolist()):
        ratio, size = ratios[i // len(sizes)], sizes[i % len(sizes)]
        shapes.append(AnchorShape(i, float(size), float(ratio), x2 - x1, y2 - y1))
    return shapes


def inside_image(anchors: Tensor, image_size: tuple[int, int], border: float = 0.0) -> Tensor:
    """Bool mask of the boxes (…, 4) lying entirely inside the (w, h) image, allowing ``border`` pixels outside.

    The paper's training check (py-faster-rcnn's ``allowed_border = 0``): an anchor is kept only if
    x1 ≥ 0, y1 ≥ 0, x2 ≤ w and y2 ≤ h.
    """
    w, h = image_size
    return (
        (anchors[..., 0] >= -border) & (anchors[..., 1] >= -border)
        & (anchors[..., 2] <= w + border) & (anchors[..., 3] <= h + border)
    )


# --------------------------------------------------------------------------------------------------
# an anchor set, tiled over an image
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnchorSpec:
    """One level's anchor set: k = len(sizes) · len(ratios) anchors at every cell, ``stride`` px apart.

    ``sizes`` are √(area) in input pixels; ``ratios`` are height / width (torchvision's
    ``aspect_ratio``: 0.5 = wide, 2 = tall).
    """

    sizes: tuple[float, ...] = tuple(float(s) for s in paper.ANCHOR_SIZES)
    ratios: tuple[float, ...] = paper.ASPECT_RATIOS
    stride: int = 16

    def __post_init__(self) -> None:
        # sliders hand over lists and ints; keep the spec hashable and its numbers floats
        object.__setattr__(self, "sizes", tuple(float(s) for s in self.sizes))
        object.__setattr__(self, "ratios", tuple(float(r) for r in self.ratios))
        if not self.sizes or not self.ratios:
            raise ValueError("An anchor set needs at least one size and one aspect ratio.")
        if any(s <= 0 for s in self.sizes) or any(r <= 0 for r in self.ratios):
            raise ValueError("Anchor sizes and aspect ratios must be positive.")
        if int(self.stride) != self.stride or self.stride < 1:
            raise ValueError("The stride must be a whole number of pixels, at least 1.")

    @property
    def k(self) -> int:
        """Anchors per location."""
        return len(self.sizes) * len(self.ratios)

    def generator(self) -> AnchorGenerator:
        """torchvision's ``AnchorGenerator`` for this one level."""
        return AnchorGenerator((tuple(self.sizes),), (tuple(self.ratios),))

    def shapes(self) -> list[AnchorShape]:
        """The k anchor shapes in ``AnchorGenerator``'s order (ratio-major, then size), after its rounding."""
        return anchor_shapes(self.generator())


#: The paper's anchor set (``rpn_viz.model.paper``'s sizes and ratios): 3 scales × 3 aspect ratios on
#: VGG-16's stride-16 conv5 map (the paper RPN's MobileNetV2 is cut at stride 16 too).
PAPER_ANCHORS = AnchorSpec(paper.ANCHOR_SIZES, paper.ASPECT_RATIOS, 16)


def grid_size(image_size: tuple[int, int], stride: int, rounding: Rounding = "ceil") -> tuple[int, int]:
    """(rows, cols) of a stride-``stride`` feature map over an image of ``image_size`` = (w, h).

    ``ceil`` is what a network whose strided layers pad (Caffe's VGG-16 pooling, torchvision's
    padded batches) gives — 1000×600 at stride 16 → 38×63 = 2,394 cells, the paper's "∼2,400";
    ``floor`` is a network that drops the remainder (37×62).
    """
    w, h = image_size
    if w < 1 or h < 1:
        raise ValueError(f"Image size must be positive, got {w}×{h}.")
    op = math.ceil if rounding == "ceil" else math.floor
    return max(1, op(h / stride)), max(1, op(w / stride))


@dataclass
class Tiling:
    """Anchors of one feature level over one image, in torchvision's order (row, column, anchor)."""

    spec: AnchorSpec
    image_size: tuple[int, int]  # (w, h) input pixels
    grid: tuple[int, int]  # (rows, cols)
    anchors: Tensor  # (rows·cols·k, 4)
    inside: Tensor  # (N,) bool — entirely inside the image (with ``border``)
    border: float = 0.0

    @property
    def k(self) -> int:
        return self.spec.k

    @property
    def num_positions(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def num_anchors(self) -> int:
        return int(self.anchors.shape[0])

    @property
    def num_inside(self) -> int:
        return int(self.inside.sum())

    @property
    def num_cross_boundary(self) -> int:
        return self.num_anchors - self.num_inside

    def index(self, row: int, col: int, anchor: int) -> int:
        """Row in :attr:`anchors` of anchor ``anchor`` at cell (row, col)."""
        return (row * self.grid[1] + col) * self.k + anchor

    def cell_anchors(self, row: int, col: int) -> Tensor:
        """(k, 4) anchors of one cell."""
        start = self.index(row, col, 0)
        return self.anchors[start : start + self.k]

    def inside_per_shape(self) -> list[int]:
        """How many anchors of each of the k shapes lie inside the image (big ones rarely do)."""
        return [int(v) for v in self.inside.view(-1, self.k).sum(dim=0).tolist()]

    def summary(self) -> dict[str, int | float | list[int]]:
        """The lab's headline numbers."""
        return {
            "image width": self.image_size[0],
            "image height": self.image_size[1],
            "stride": self.spec.stride,
            "feature rows": self.grid[0],
            "feature cols": self.grid[1],
            "positions": self.num_positions,
            "anchors per position (k)": self.k,
            "anchors": self.num_anchors,
            "inside the image": self.num_inside,
            "crossing the border": self.num_cross_boundary,
        }


def anchors_for_grids(
    sizes: Sequence[Sequence[float]],
    ratios: Sequence[Sequence[float]],
    padded_size: tuple[int, int],
    grids: Sequence[tuple[int, int]],
) -> list[Tensor]:
    """Anchors of several levels from torchvision's ``AnchorGenerator``, on a fake image and feature maps.

    ``padded_size`` is the (w, h) of the batch tensor and ``grids`` the (rows, cols) of each level;
    the generator derives each level's stride as ``padded // grid`` exactly as it does inside the
    model, so the anchors are the model's for the same sizes and ratios. No pixel is allocated: the
    fake tensors have zero channels.
    """
    generator = AnchorGenerator(tuple(tuple(float(s) for s in ss) for ss in sizes),
                                tuple(tuple(float(r) for r in rr) for rr in ratios))
    w, h = padded_size
    images = ImageList(torch.empty(1, 0, h, w), [(h, w)])
    features = [torch.empty(1, 0, rows, cols) for rows, cols in grids]
    flat = generator(images, features)[0]
    counts = [rows * cols * k for (rows, cols), k in zip(grids, generator.num_anchors_per_location())]
    return list(flat.split(counts))


def tile_anchors(
    image_size: tuple[int, int], spec: AnchorSpec = PAPER_ANCHORS, rounding: Rounding = "ceil", border: float = 0.0
) -> Tiling:
    """Tile ``spec``'s anchors over an image of (w, h) input pixels with ``AnchorGenerator``.

    The fake batch tensor is grid × stride pixels so the generator's ``image // grid`` stride is
    exactly ``spec.stride``; cell (r, c) is centred on input pixel (c·stride, r·stride), as in
    torchvision.
    """
    rows, cols = grid_size(image_size, spec.stride, rounding)
    padded = (cols * spec.stride, rows * spec.stride)
    anchors = anchors_for_grids([spec.sizes], [spec.ratios], padded, [(rows, cols)])[0]
    return Tiling(spec, tuple(image_size), (rows, cols), anchors, inside_image(anchors, image_size, border), border)


# --------------------------------------------------------------------------------------------------
# labels and the mini-batch
# --------------------------------------------------------------------------------------------------


@dataclass
class AnchorLabels:
    """The paper's training labels of every anchor (torchvision's convention: 1, 0, -1)."""

    labels: Tensor  # (N,) int64 — POSITIVE, NEGATIVE or IGNORED
    best_iou: Tensor  # (N,) IoU with the best-overlapping gt box (0 where none / not evaluated)
    matched_gt: Tensor  # (N,) index of that gt box, -1 where none / not evaluated
    best_anchor_rule: Tensor  # (N,) bool — positive only through "best anchor of a gt box" (IoU < fg)
    cross_boundary: Tensor  # (N,) bool — ignored because it crosses the border (only if asked)
    gt_best_iou: Tensor  # (M,) each gt box's best IoU over the anchors considered
    gt_num_positive: Tensor  # (M,) positive anchors matched to each gt box
    fg_iou: float = 0.7
    bg_iou: float = 0.3

    @property
    def positive(self) -> Tensor:
        return torch.where(self.labels == POSITIVE)[0]

    @property
    def negative(self) -> Tensor:
        return torch.where(self.labels == NEGATIVE)[0]

    def counts(self) -> dict[str, int]:
        """How many anchors get each label (the lab's table)."""
        ignored = self.labels == IGNORED
        return {
            "positive": int((self.labels == POSITIVE).sum()),
            f"  of which IoU ≥ {self.fg_iou:g}": int(((self.labels == POSITIVE) & ~self.best_anchor_rule).sum()),
            "  of which best anchor of a box": int(self.best_anchor_rule.sum()),
            "negative": int((self.labels == NEGATIVE).sum()),
            "ignored": int(ignored.sum()),
            f"  of which IoU in [{self.bg_iou:g}, {self.fg_iou:g})": int((ignored & ~self.cross_boundary).sum()),
            "  of which cross the border": int(self.cross_boundary.sum()),
        }


def assign_labels(
    anchors: Tensor,
    gt_boxes: Tensor,
    image_size: tuple[int, int] | None = None,
    ignore_cross_boundary: bool = False,
    fg_iou: float = 0.7,
    bg_iou: float = 0.3,
    border: float = 0.0,
) -> AnchorLabels:
    """Label ``anchors`` (N, 4) from ``gt_boxes`` (M, 4) as the RPN is trained.

    Same steps as torchvision's ``RegionProposalNetwork.assign_targets_to_anchors``:
    ``Matcher(fg_iou, bg_iou, allow_low_quality_matches=True)`` on ``box_iou(gt, anchors)``;
    matched → positive, below ``bg_iou`` → negative, in between → ignored; the low-quality rule adds
    each gt box's highest-IoU anchor(s) (ties included) as positives. With ``ignore_cross_boundary``
    (the paper's training, needs ``image_size`` = (w, h)), anchors crossing the border are ignored
    and left out of the matching, so a box's "best anchor" is the best one inside the image.
    With no gt box every anchor (considered) is negative.
    """
    n = anchors.shape[0]
    gt_boxes = torch.as_tensor(gt_boxes, dtype=anchors.dtype).reshape(-1, 4)
    considered = torch.ones(n, dtype=torch.bool)
    if ignore_cross_boundary:
        if image_size is None:
            raise ValueError("ignore_cross_boundary needs the image size.")
        considered = inside_image(anchors, image_size, border)
    idx = torch.where(considered)[0]

    labels = torch.full((n,), IGNORED, dtype=torch.int64)
    best_iou = torch.zeros(n, dtype=anchors.dtype)
    matched_gt = torch.full((n,), -1, dtype=torch.int64)
    low_quality = torch.zeros(n, dtype=torch.bool)
    m = gt_boxes.shape[0]
    gt_best = torch.zeros(m, dtype=anchors.dtype)
    gt_pos = torch.zeros(m, dtype=torch.int64)

    if m == 0 or idx.numel() == 0:
        labels[idx] = NEGATIVE
    else:
        iou = box_iou(gt_boxes, anchors[idx])  # M × N'
        matcher = det_utils.Matcher(fg_iou, bg_iou, allow_low_quality_matches=True)
        matches = matcher(iou)
        vals, arg = iou.max(dim=0)
        sub = torch.full((idx.numel(),), NEGATIVE, dtype=torch.int64)
        sub[matches >= 0] = POSITIVE
        sub[matches == det_utils.Matcher.BETWEEN_THRESHOLDS] = IGNORED
        labels[idx] = sub
        best_iou[idx] = vals
        matched_gt[idx] = arg
        low_quality[idx] = (matches >= 0) & (vals < fg_iou)
        gt_best = iou.max(dim=1).values
        gt_pos = torch.bincount(matches[matches >= 0], minlength=m)

    return AnchorLabels(
        labels=labels, best_iou=best_iou, matched_gt=matched_gt, best_anchor_rule=low_quality,
        cross_boundary=~considered, gt_best_iou=gt_best, gt_num_positive=gt_pos, fg_iou=fg_iou, bg_iou=bg_iou,
    )


@dataclass(frozen=True)
class MiniBatch:
    """The anchors one training step of the RPN loss looks at (indices into the anchor list)."""

    positive: Tensor  # (P,) sorted
    negative: Tensor  # (Q,) sorted
    batch_size: int
    positive_fraction: float
    seed: int

    @property
    def size(self) -> int:
        return int(self.positive.numel() + self.negative.numel())

    def counts(self) -> dict[str, int]:
        return {"sampled": self.size, "positive": int(self.positive.numel()), "negative": int(self.negative.numel())}


def sample_minibatch(
    labels: AnchorLabels | Tensor, batch_size: int = 256, positive_fraction: float = 0.5, seed: int = 0
) -> MiniBatch:
    """Sample a training mini-batch as torchvision's ``BalancedPositiveNegativeSampler`` does, seeded.

    At most ``batch_size · positive_fraction`` positives; negatives fill the rest (the paper: 256
    anchors, up to 1:1). The sampler's two ``randperm`` draws, with a ``torch.Generator`` of its
    own seeded with ``seed``: the same batch as the sampler after ``torch.manual_seed(seed)``
    (tests/test_lab.py checks), and torch's global random state is neither read nor reseeded, so
    concurrent sessions cannot disturb each other.
    """
    values = labels.labels if isinstance(labels, AnchorLabels) else labels
    generator = torch.Generator().manual_seed(seed)
    positive = torch.where(values >= 1)[0]
    negative = torch.where(values == 0)[0]
    num_pos = min(positive.numel(), int(batch_size * positive_fraction))
    num_neg = min(negative.numel(), batch_size - num_pos)
    pos = positive[torch.randperm(positive.numel(), generator=generator)[:num_pos]]
    neg = negative[torch.randperm(negative.numel(), generator=generator)[:num_neg]]
    return MiniBatch(pos.sort().values, neg.sort().values, batch_size, positive_fraction, seed)
