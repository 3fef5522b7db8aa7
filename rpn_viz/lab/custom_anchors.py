"""What a trained head assumes about its anchors: its deltas decoded against anchors the user chose.

The head outputs 4 numbers per anchor position of a cell, relative to *that* anchor's size; the
network never sees the anchors, they exist only when its outputs are decoded. :func:`decode_with_custom_anchors`
moves a *trained* head's deltas onto a custom anchor set on the same cells (torchvision's
``AnchorGenerator`` and ``BoxCoder``, then the model's own post-processing), to show that the
head's numbers only mean something for the anchor set it was trained with. The anchor geometry
itself (tiling, the paper's labels and mini-batch) is :mod:`rpn_viz.pipeline.anchors`. Boxes are
(x1, y1, x2, y2) in network-input pixels throughout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import Tensor
from torchvision.ops import box_iou

from ..pipeline.anchors import anchors_for_grids
from ..pipeline.boxes import best_iou
from ..model.device import to_cpu
from ..pipeline.filtering import FilterResult, filter_stages
from ..pipeline.tracing import Trace


def working_to_input(trace: Trace, boxes: Tensor | Sequence[Sequence[float]]) -> Tensor:
    """Boxes from ``trace.image`` pixels (the photo as shown, where the app's gt boxes live) to input pixels.

    The inverse of ``Trace.to_working``; unlike ``Trace.to_input`` (original-photo pixels) it stays
    right when a huge photo was downscaled before the network saw it.
    """
    return trace.from_working(torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4))


def model_anchor_set(trace: Trace) -> tuple[list[tuple[float, ...]], list[tuple[float, ...]]]:
    """(sizes per level, ratios per level) of the traced model's ``AnchorGenerator``."""
    generator = trace.rpn.anchor_generator
    sizes = [tuple(float(s) for s in level) for level in generator.sizes]
    ratios = [tuple(float(r) for r in level) for level in generator.aspect_ratios]
    return sizes, ratios


def _per_level(values: Sequence[float] | Sequence[Sequence[float]], levels: int, what: str) -> list[tuple[float, ...]]:
    """One tuple per level: a flat sequence is shared by every level."""
    values = list(values)
    if values and not isinstance(values[0], (list, tuple)):
        return [tuple(float(v) for v in values)] * levels
    if len(values) != levels:
        raise ValueError(f"{len(values)} {what} sets given for a model with {levels} levels.")
    return [tuple(float(v) for v in level) for level in values]


def _mean(values: Tensor) -> float:
    return float(values.float().mean()) if values.numel() else float("nan")


@dataclass
class CustomAnchorDecode:
    """A trained head's deltas decoded against the user's anchors instead of the model's own.

    Numbers only (``ui`` says them in words): whether the sets are compatible (as many anchors per
    cell on every level) and, if not, the first level where they differ (:attr:`mismatch`).
    """

    compatible: bool
    model_k: list[int]  # anchors per cell the head was built for, per level
    custom_k: list[int]  # anchors per cell of the custom set, per level
    custom_sizes: list[tuple[float, ...]]
    custom_ratios: list[tuple[float, ...]]
    model_sizes: list[tuple[float, ...]]  # the model's own anchor set, per level
    model_ratios: list[tuple[float, ...]]
    level_names: list[str]
    same_set: bool  # the custom set is the model's own
    trained: bool  # the head's weights were trained (untrained: every delta ~0)
    custom_anchors: Tensor | None = None  # (N, 4) same order as trace.anchors
    decoded: Tensor | None = None  # (N, 4) custom anchors moved by the head's deltas
    result: FilterResult | None = None  # post-processing of the custom boxes (same logits, same settings)
    top_index: Tensor | None = None  # (T,) anchors (flat rows) of the model's own top-T proposals
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def mismatch(self) -> int | None:
        """Index of the first level whose custom set has another number of anchors per cell than the head."""
        return next((i for i, (c, m) in enumerate(zip(self.custom_k, self.model_k)) if c != m), None)

    @property
    def proposals(self) -> Tensor | None:
        """The proposals the model would output with the custom anchors (input pixels, rank order)."""
        return None if self.result is None else self.result.boxes


def decode_with_custom_anchors(
    trace: Trace,
    sizes: Sequence[float] | Sequence[Sequence[float]],
    ratios: Sequence[float] | Sequence[Sequence[float]],
    gt_boxes: Tensor | None = None,
    top_n: int | None = None,
    own: FilterResult | None = None,
) -> CustomAnchorDecode:
    """Decode ``trace``'s deltas against custom anchors on the same cells and measure the damage.

    The head outputs 4 numbers per anchor position a of a cell — (dx, dy) in units of *that
    anchor's* width/height and (dw, dh) as log-scales of it — so its output only has a meaning
    relative to the anchor it was trained for. Here anchor position a of every cell gets the a-th
    anchor of the custom set (``AnchorGenerator`` order: ratio-major, then size) on the model's
    own grid and strides; this is only possible when each level has as many custom anchors as
    the head has outputs, otherwise ``compatible`` is False (:attr:`~CustomAnchorDecode.mismatch`: where).

    ``sizes``/``ratios`` are per level, or one flat set for every level. Metrics (input pixels):

    * ``same anchor IoU (mean/median)``: for the anchors behind the model's own top-``top_n``
      proposals (default: all of them), IoU between the box decoded from the model's anchor and
      the box decoded from the custom anchor — 1 means the prediction did not move;
    * ``area ratio (median)``: custom-decoded area / model-decoded area over the same anchors;
    * ``proposals changed``: proposals of the custom set that are not within IoU 0.99 of a model
      proposal;
    * with ``gt_boxes`` (input pixels): mean best IoU of the gt boxes with each proposal set and
      recall at IoU 0.5 and 0.7 (``... (model anchors)`` vs ``... (custom anchors)``).

    ``own`` is the model's post-processing to compare with (default ``trace.result``; pass
    ``trace.refilter(settings)`` for other settings): the custom boxes go through the same settings.
    """
    model_sizes, model_ratios = model_anchor_set(trace)
    levels = len(trace.levels)
    c_sizes = _per_level(sizes, levels, "size")
    c_ratios = _per_level(ratios, levels, "aspect-ratio")
    model_k = [len(level.anchor_shapes) for level in trace.levels]
    custom_k = [len(s) * len(r) for s, r in zip(c_sizes, c_ratios)]
    same_set = c_sizes == model_sizes and c_ratios == model_ratios
    out = CustomAnchorDecode(False, model_k, custom_k, c_sizes, c_ratios, model_sizes, model_ratios,
                             [level.name for level in trace.levels], same_set, trace.model.is_trained)
    if custom_k != model_k:
        return out

    padded = trace.preprocess.padded_size
    custom = torch.cat(anchors_for_grids(c_sizes, c_ratios, padded, [level.grid for level in trace.levels]))
    # decoded and filtered where the model runs, as the trace's own boxes were: equal sets, equal boxes
    device = trace.model.device
    on_device = trace.rpn.box_coder.decode_single(trace.deltas.to(device), custom.to(device))
    input_w, input_h = trace.preprocess.input_size
    own = own or trace.result
    result = filter_stages(on_device, trace.logits.to(device), trace.num_anchors_per_level, (input_h, input_w),
                           own.settings)
    (decoded,) = to_cpu([on_device])

    top_n = own.final_pos.numel() if top_n is None else min(top_n, own.final_pos.numel())
    top_index = own.anchor_index[own.final_pos[:top_n]]
    own_boxes, custom_boxes = trace.proposals[top_index], decoded[top_index]
    same = box_iou(own_boxes, custom_boxes).diagonal() if top_n else torch.zeros(0)
    area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # noqa: E731
    ratio = area(custom_boxes) / area(own_boxes).clamp(min=1e-6)
    metrics: dict[str, float] = {
        "anchors compared": float(top_n),
        "same anchor IoU (mean)": _mean(same),
        "same anchor IoU (median)": float(same.median()) if top_n else float("nan"),
        "area ratio (median)": float(ratio.median()) if top_n else float("nan"),
    }
    metrics["proposals changed"] = float((best_iou(result.boxes, own.boxes) < 0.99).sum())
    if gt_boxes is not None and torch.as_tensor(gt_boxes).numel():
        gt = torch.as_tensor(gt_boxes, dtype=torch.float32).reshape(-1, 4)
        for name, boxes in (("model anchors", own.boxes), ("custom anchors", result.boxes)):
            best = best_iou(gt, boxes)
            metrics[f"mean best IoU with gt ({name})"] = _mean(best)
            metrics[f"recall@0.5 ({name})"] = _mean(best >= 0.5)
            metrics[f"recall@0.7 ({name})"] = _mean(best >= 0.7)

    out.compatible = True
    out.custom_anchors, out.decoded, out.result, out.top_index, out.metrics = custom, decoded, result, top_index, metrics
    return out
