"""Training examples: what one photo gives the RPN's loss, computed once, and the order of photos.

An :class:`Example` is one photo (or its mirror image) after the frozen backbone: its feature maps,
its anchors, and torchvision's labels and regression targets for its boxes
(``RegionProposalNetwork.assign_targets_to_anchors``, ``BoxCoder.encode``). Only the head changes
while training, so these never change: :class:`rpn_viz.training.session.TrainingSession` computes the loss of
a step from one example (:func:`example_order` says which).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import torch
from PIL import Image, ImageEnhance, ImageOps
from torch import Tensor
from torchvision.models.detection.rpn import RegionProposalNetwork

from ..pipeline.boxes import best_iou
from ..pipeline.filtering import FilterResult
from ..io.images import LoadedImage
from ..model.models import LoadedModel
from ..pipeline.tracing import ImageInput, Trace, as_loaded_image, trace

TOP_K = 10  # "recall": best IoU of each box among this many top proposals

# Jittered views (:func:`jittered`): scale jitter with crops, and colour jitter.
ZOOM = (0.6, 1.6)  # window side / photo side: below 1 a crop (objects grow), above 1 the photo on a canvas (they shrink)
COLOUR = 0.3  # brightness, contrast and saturation each multiplied by a factor in [1 − 0.3, 1 + 0.3]
MIN_VISIBLE = 0.6  # a box stays when at least this fraction of its area is inside the window
MIN_SIDE = 8  # … and when what is inside is at least this many pixels wide and high
CANVAS = (124, 116, 104)  # ImageNet's mean colour (0.485, 0.456, 0.406 × 255): zero after normalisation


def check_boxes(boxes: Sequence[Sequence[float]] | Tensor, image_size: tuple[int, int]) -> Tensor:
    """User boxes (x1, y1, x2, y2 in original-photo pixels) as an (n, 4) float tensor, clipped to the photo.

    Raises ``ValueError`` with a one-line message for no boxes, wrong shapes or empty boxes.
    """
    tensor = torch.as_tensor(boxes, dtype=torch.float32)
    if tensor.numel() == 0:
        raise ValueError("give at least one box (x1,y1,x2,y2 in photo pixels)")
    if tensor.ndim != 2 or tensor.shape[1] != 4 or not torch.isfinite(tensor).all():
        raise ValueError("each box needs four finite numbers: x1,y1,x2,y2")
    w, h = image_size
    clipped = tensor.clone()
    clipped[:, 0::2] = clipped[:, 0::2].clamp(0, w)
    clipped[:, 1::2] = clipped[:, 1::2].clamp(0, h)
    for box, original in zip(clipped.tolist(), tensor.tolist()):
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            raise ValueError(
                f"box {','.join(f'{v:g}' for v in original)} is empty inside the {w}×{h} photo "
                "(need x1 < x2 and y1 < y2)"
            )
    return clipped


@dataclass(frozen=True)
class TopProposals:
    """A trace's best ``k`` proposals, kept without the trace: a few numbers instead of megabytes."""

    original: Tensor  # (≤k, 4) original-photo pixels
    working: Tensor  # (≤k, 4) pixels of ``trace.image`` (the picture the app draws on)
    scores: Tensor  # (≤k,) objectness probabilities, best first

    def best_iou(self, boxes: Sequence[Sequence[float]] | Tensor) -> list[float]:
        """Best IoU of each box (original-photo pixels) among these proposals."""
        return best_iou(boxes, self.original).tolist()


def top_proposals(traced: Trace, k: int = TOP_K, result: FilterResult | None = None) -> TopProposals:
    """The top-``k`` proposals of a trace (or of a re-filtered ``result`` of it), in the photo's frames.

    The proposals are taken back to the photo's pixels with the trace's own scale, so IoUs with the
    user's boxes are in the user's frame (x and y scales differ slightly after rounding).
    """
    result = result or traced.result
    boxes = result.boxes[:k]
    return TopProposals(traced.to_original(boxes), traced.to_working(boxes), result.scores[:k].clone())


def best_iou_top_k(
    traced: Trace, boxes: Sequence[Sequence[float]] | Tensor, k: int = TOP_K, result: FilterResult | None = None
) -> list[float]:
    """Best IoU of each box (original-photo pixels) among the trace's top-``k`` proposals."""
    return top_proposals(traced, k, result).best_iou(boxes)


@dataclass
class Example:
    """One photo's training material, computed once: the backbone's features, the anchors, and
    torchvision's labels and regression targets for its boxes. Only the head changes while training."""

    name: str
    features: list[Tensor]  # per level (1, C, H, W), on the model's device; the frozen backbone's output
    anchors: Tensor  # (N, 4) network-input pixels, trace order
    boxes_input: Tensor  # (M, 4) the ground-truth boxes, network-input pixels
    labels: Tensor  # (N,) 1 positive, 0 negative, -1 ignored (``assign_targets_to_anchors``)
    targets: Tensor  # (N, 4) ``BoxCoder.encode``: the deltas that move each anchor onto its matched box
    mirrored: bool = False  # the photo flipped left–right (the paper's augmentation)


def anchor_targets(rpn: RegionProposalNetwork, anchors: Tensor, boxes_input: Tensor) -> tuple[Tensor, Tensor]:
    """(labels, regression targets) of every anchor for these boxes — torchvision's own matcher and coder."""
    with torch.no_grad():
        labels, matched = rpn.assign_targets_to_anchors([anchors], [{"boxes": boxes_input}])
        targets = rpn.box_coder.encode(matched, [anchors])[0]
    return labels[0], targets


def example_from_trace(
    rpn: RegionProposalNetwork, traced: Trace, boxes: Tensor, name: str, mirrored: bool = False
) -> Example:
    """An :class:`Example` from a trace of the frozen model and the boxes in original-photo pixels."""
    device = traced.model.device  # a trace keeps CPU copies; training runs where the model is
    # clone() outside inference mode: trace's tensors are inference tensors, which autograd refuses
    # to save for backward (to() to another device copies anyway).
    features = [level.features[None].to(device, copy=True) for level in traced.levels]
    anchors = traced.anchors.to(device, copy=True)
    boxes_input = traced.to_input(boxes.to(torch.float32)).to(device)
    labels, targets = anchor_targets(rpn, anchors, boxes_input)
    return Example(name, features, anchors, boxes_input, labels, targets, mirrored)


def mirrored(image: ImageInput, boxes: Tensor) -> tuple[LoadedImage, Tensor]:
    """The photo flipped left–right and its boxes (original-photo pixels) flipped with it.

    The paper's only data augmentation ("horizontal flips", section 3.3 / py-faster-rcnn's
    ``TRAIN.USE_FLIPPED``).
    """
    source = as_loaded_image(image)
    width = source.original_size[0]
    flipped = boxes.clone()
    flipped[:, 0], flipped[:, 2] = width - boxes[:, 2], width - boxes[:, 0]
    return dataclasses.replace(source, image=ImageOps.mirror(source.image)), flipped


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def jittered(image: ImageInput, boxes: Tensor, generator: torch.Generator) -> tuple[LoadedImage, Tensor]:
    """A random view of the photo and its boxes (original-photo pixels): scale jitter, crop, colour jitter.

    A window with the photo's aspect ratio and ``ZOOM`` times its size is placed at random so that it
    overlaps the photo: a smaller window is a crop (objects come out bigger after the network's resize
    to a short side of 600), a bigger one holds the whole photo on a canvas of the ImageNet mean colour
    (objects come out smaller). Boxes are moved into the window and clipped to it; a box that keeps
    less than ``MIN_VISIBLE`` of its area, or less than ``MIN_SIDE`` pixels a side, is dropped (it
    would teach the head that a sliver is an object). Up to ten windows are drawn until one keeps a
    box; if none does, the photo itself is the view. Brightness, contrast and saturation then change
    by up to ``COLOUR``, and half of the views are mirrored. Everything comes from ``generator``, so a
    seeded generator gives the same view on every machine.
    """
    source = as_loaded_image(image)
    width, height = source.original_size
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    picture, kept = source.image, boxes
    for _ in range(10):
        zoom = _uniform(generator, *ZOOM)
        w, h = max(1, round(width * zoom)), max(1, round(height * zoom))
        x0 = round(_uniform(generator, min(0, width - w), max(0, width - w)))
        y0 = round(_uniform(generator, min(0, height - h), max(0, height - h)))
        moved = boxes - torch.tensor([x0, y0, x0, y0], dtype=boxes.dtype)
        moved[:, 0::2] = moved[:, 0::2].clamp(0, w)
        moved[:, 1::2] = moved[:, 1::2].clamp(0, h)
        sides = moved[:, 2:] - moved[:, :2]
        keep = (sides.prod(dim=1) >= MIN_VISIBLE * area) & (sides >= MIN_SIDE).all(dim=1)
        if keep.any():
            picture = Image.new("RGB", (w, h), CANVAS)
            picture.paste(source.image, (-x0, -y0))
            kept = moved[keep]
            break
    for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        picture = enhance(picture).enhance(_uniform(generator, 1 - COLOUR, 1 + COLOUR))
    view = dataclasses.replace(source, image=picture, original_size=picture.size, downscale=1.0)
    if float(torch.rand((), generator=generator)) < 0.5:
        return mirrored(view, kept)
    return view, kept


def jitter_generator(seed: int, photo: int, view: int) -> torch.Generator:
    """The generator of one jittered view: a function of the run's seed, the photo and the view only."""
    return torch.Generator().manual_seed((seed * 1_000_003 + photo) * 1_009 + view)


def views(
    source: LoadedImage, boxes: Tensor, flips: bool, jitter: int, seed: int, index: int
) -> list[tuple[bool, LoadedImage, Tensor]]:
    """The training views of photo number ``index`` as ``(mirrored, picture, boxes)``: the photo itself,
    its mirror image if ``flips``, then ``jitter`` :func:`jittered` views (seeded by ``seed``, ``index``
    and the view's number)."""
    found = [(False, source, boxes)]
    if flips:
        found.append((True, *mirrored(source, boxes)))
    for view in range(jitter):
        found.append((False, *jittered(source, boxes, jitter_generator(seed, index, view))))
    return found


def examples_for(
    start: LoadedModel,
    photos: Sequence[tuple[str, ImageInput, Sequence[Sequence[float]] | Tensor]],
    flips: bool = True,
    jitter: int = 0,
    seed: int = 0,
    first: int = 0,
) -> list[Example]:
    """Examples of ``(name, photo, boxes in original-photo pixels)``: each photo, its mirror image if
    ``flips``, and ``jitter`` :func:`jittered` views of it (seeded by ``seed`` and the photo's index,
    counted from ``first``).

    The backbone runs once per view (through :func:`rpn_viz.trace`); the traces are dropped, only what
    training needs is kept (features, anchors, labels, targets).
    """
    examples: list[Example] = []
    anchor_sets: dict[tuple, Tensor] = {}
    for index, (name, image, boxes) in enumerate(photos, start=first):
        source = as_loaded_image(image)
        checked = check_boxes(boxes, source.original_size)
        for flipped, picture, pixel_boxes in views(source, checked, flips, jitter, seed, index):
            made = example_from_trace(start.model.rpn, trace(start, picture), pixel_boxes, name, flipped)
            made.anchors = _shared(made.anchors, anchor_sets)
            examples.append(made)
    return examples


def _shared(anchors: Tensor, seen: dict[tuple, Tensor]) -> Tensor:
    """``anchors``, or an equal tensor already kept: anchors depend on the input size alone, so a photo
    and its mirror (and photos of one size) share one copy — a quarter of an example's memory."""
    key = (*anchors.shape, *anchors[-1].tolist())
    kept = seen.setdefault(key, anchors)
    return kept if kept is anchors or torch.equal(kept, anchors) else anchors


def example_order(count: int, step: int, seed: int) -> int:
    """Which of ``count`` examples step ``step`` (1-based) trains on: each epoch is a seeded shuffle.

    One photo per step, every photo once per epoch — the paper's "each mini-batch arises from a
    single image".
    """
    if count == 1:
        return 0
    epoch, position = divmod(step - 1, count)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return int(torch.randperm(count, generator=generator)[position])
