"""Boxes: reading them from what a person types, and how well a set of boxes covers them.

Boxes are (x1, y1, x2, y2) in one pixel frame throughout; :func:`best_iou` is the measure behind
recall, the lab's comparisons and the learning page's "best IoU per box". Reading boxes needs no
torch (it is imported by the metrics only), so a command can check ``--box`` before loading it.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["as_boxes", "best_iou", "parse_box", "parse_boxes", "split_numbers"]

_SEPARATORS = re.compile(r"[\s,;]+")


def as_boxes(boxes: Tensor | Sequence[Sequence[float]]) -> Tensor:
    """(N, 4) float32 tensor of any box list (N may be 0)."""
    import torch

    return torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)


def best_iou(gt_boxes: Tensor | Sequence[Sequence[float]], boxes: Tensor | Sequence[Sequence[float]]) -> Tensor:
    """(M,) each ground-truth box's best IoU with any of ``boxes`` (same frame); 0 where there are none."""
    import torch
    from torchvision.ops import box_iou

    gt_boxes, boxes = as_boxes(gt_boxes), as_boxes(boxes)
    if boxes.shape[0] == 0:
        return torch.zeros(gt_boxes.shape[0])
    return box_iou(gt_boxes, boxes).max(dim=1).values


def split_numbers(text: str) -> list[str]:
    """The number-like words of typed text: commas, semicolons or spaces between them."""
    return [part for part in _SEPARATORS.split(text.strip()) if part]


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``"x1, y1, x2, y2"`` → four finite floats with x1 < x2 and y1 < y2, or ``ValueError`` saying why."""
    parts = split_numbers(text)
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(f"box {text.strip()!r} must be four numbers x1, y1, x2, y2") from None
    if len(values) != 4:
        raise ValueError(f"expected 4 numbers x1, y1, x2, y2, got {len(values)}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"box {text.strip()!r} must be four finite numbers")
    x1, y1, x2, y2 = values
    if not (x2 > x1 and y2 > y1):
        raise ValueError("x2 must exceed x1 and y2 exceed y1")
    return x1, y1, x2, y2


def parse_boxes(text: str, size: tuple[int, int]) -> list[list[float]]:
    """Boxes from text, one 'x1, y1, x2, y2' per line, clipped to a (w, h) photo; ``ValueError`` names the line."""
    boxes = []
    w, h = size
    for number, line in enumerate(text.strip().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            x1, y1, x2, y2 = parse_box(line)
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from None
        boxes.append([max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2)])
    return boxes
