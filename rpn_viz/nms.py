"""Greedy non-maximum suppression, one step at a time, to *show* it.

The proposals themselves always come from torchvision's ``batched_nms`` (see :mod:`rpn_viz.filtering`);
this module re-implements the same greedy loop in plain steps so the app can play it back:

    while boxes remain:
        take the highest-scoring remaining box  → it is kept
        remove every remaining box of the same level whose IoU with it exceeds the threshold

Processing all levels in one score order, with suppression only inside a level, is exactly what
``batched_nms`` does (NMS per level). The tests check the kept set against torchvision.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torchvision.ops import box_iou


@dataclass(frozen=True)
class NmsStep:
    """One iteration of greedy NMS: the box kept and the boxes it removed (indices into the input)."""

    step: int
    kept: int
    suppressed: tuple[int, ...]
    ious: tuple[float, ...]  # IoU of each suppressed box with ``kept``


def greedy_nms_steps(
    boxes: Tensor, scores: Tensor, iou_threshold: float, levels: Tensor | None = None, max_steps: int | None = None
) -> list[NmsStep]:
    """Greedy NMS as a list of steps; boxes only suppress boxes of the same ``levels`` value.

    Boxes are taken in descending score order with ties in input order (torchvision's NMS sorts
    stably too). ``max_steps`` stops early, for a playback that only needs the first steps.
    """
    n = boxes.shape[0]
    if levels is None:
        levels = torch.zeros(n, dtype=torch.int64)
    order = torch.sort(scores, descending=True, stable=True).indices
    iou = box_iou(boxes, boxes)
    alive = torch.ones(n, dtype=torch.bool)
    steps: list[NmsStep] = []
    for index in order.tolist():
        if not alive[index]:
            continue
        alive[index] = False
        victims = torch.where(alive & (levels == levels[index]) & (iou[index] > iou_threshold))[0]
        alive[victims] = False
        steps.append(
            NmsStep(len(steps), index, tuple(victims.tolist()), tuple(iou[index, victims].tolist()))
        )
        if max_steps is not None and len(steps) >= max_steps:
            break
    return steps


def kept_indices(steps: list[NmsStep]) -> list[int]:
    """The boxes NMS keeps, in the order it kept them."""
    return [step.kept for step in steps]
