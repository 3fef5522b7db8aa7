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

import numpy as np
import torch
from torch import Tensor


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
    Each kept box's IoU row is computed when it is kept, against the boxes still alive on its level
    only, with torchvision's ``box_iou`` formula in NumPy float32 (the same operations in the same
    order, so the same numbers): a few milliseconds where the full n × n matrix took ~0.5 s for the
    3000 boxes a slider move sends here.
    """
    n = boxes.shape[0]
    if levels is None:
        levels = torch.zeros(n, dtype=torch.int64)
    order = torch.sort(scores, descending=True, stable=True).indices
    level_of = levels.numpy()
    xyxy = boxes.detach().to(torch.float32).numpy()
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    alive = np.ones(n, dtype=bool)
    steps: list[NmsStep] = []
    for index in order.tolist():
        if not alive[index]:
            continue
        alive[index] = False
        others = np.flatnonzero(alive & (level_of == level_of[index]))
        iou = _iou_row(xyxy, area, index, others)
        hit = iou > iou_threshold
        victims = others[hit]
        alive[victims] = False
        steps.append(NmsStep(len(steps), index, tuple(victims.tolist()), tuple(iou[hit].tolist())))
        if max_steps is not None and len(steps) >= max_steps:
            break
    return steps


def _iou_row(xyxy: np.ndarray, area: np.ndarray, index: int, others: np.ndarray) -> np.ndarray:
    """IoU of box ``index`` with boxes ``others``: ``torchvision.ops.box_iou``'s arithmetic, one row."""
    box, rest = xyxy[index], xyxy[others]
    width = (np.minimum(box[2], rest[:, 2]) - np.maximum(box[0], rest[:, 0])).clip(min=0)
    height = (np.minimum(box[3], rest[:, 3]) - np.maximum(box[1], rest[:, 1])).clip(min=0)
    inter = width * height
    return inter / (area[index] + area[others] - inter)


def kept_indices(steps: list[NmsStep]) -> list[int]:
    """The boxes NMS keeps, in the order it kept them."""
    return [step.kept for step in steps]
