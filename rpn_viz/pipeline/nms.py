"""Greedy non-maximum suppression, one step at a time, to *show* it.

The proposals themselves always come from torchvision's ``batched_nms`` (see :mod:`rpn_viz.pipeline.filtering`);
this module re-implements the same greedy loop in plain steps so the app can play it back:

    while boxes remain:
        take the highest-scoring remaining box  → it is kept
        remove every remaining box of the same level whose IoU with it exceeds the threshold

Processing all levels in one score order, with suppression only inside a level, is exactly what
``batched_nms`` does (NMS per level). The tests check the kept set against torchvision.

Who suppressed whom, for everything but this playback, is :attr:`rpn_viz.pipeline.filtering.FilterResult.suppressed_by`
(derived from torchvision's own kept set, see ``filtering.who_suppressed``); this replay is kept as
the independent check and the step order the NMS page shows, and runs on the CPU copies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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
    stably too); each step lists the boxes its kept box removed in input order. ``max_steps`` keeps
    only the first steps. Levels are independent, so each is run on its own (:func:`_one_level`) and
    the steps are merged back into one score order. IoUs are torchvision's ``box_iou``.
    """
    n = boxes.shape[0]
    if levels is None:
        levels = torch.zeros(n, dtype=torch.int64)
    order = torch.sort(scores, descending=True, stable=True).indices.numpy()
    level_of = levels.numpy()
    xyxy = boxes.detach().to(torch.float32)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    kept_parts, victim_parts, by_parts, iou_parts = [], [], [], []
    for level in np.unique(level_of):
        members = order[level_of[order] == level]  # this level's boxes, in score order
        kept, by, iou = _one_level(xyxy, members, iou_threshold)
        removed = by >= 0
        kept_parts.append(members[kept])
        victim_parts.append(members[removed])
        by_parts.append(members[by[removed]])
        iou_parts.append(iou[removed])
    kept = np.concatenate(kept_parts) if kept_parts else np.zeros(0, dtype=np.int64)
    kept = kept[np.argsort(rank[kept], kind="stable")][:max_steps]  # all levels in one score order
    victims, by, ious = (np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
                         for parts in (victim_parts, by_parts, iou_parts))
    grouped = np.lexsort((victims, by))  # by the box that removed them, then in input order
    victims, by, ious = victims[grouped], by[grouped], ious[grouped]
    starts, ends = np.searchsorted(by, kept, side="left"), np.searchsorted(by, kept, side="right")
    return [NmsStep(step, kept_box, tuple(victims[a:b].tolist()), tuple(ious[a:b].tolist()))
            for step, (kept_box, a, b) in enumerate(zip(kept.tolist(), starts.tolist(), ends.tolist()))]


BLOCK = 256  # boxes per block in _one_level: a (kept so far × block) IoU matrix stays a few MB


def _one_level(xyxy: Tensor, members: np.ndarray, iou_threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy NMS of one level's boxes (``members``, in score order), a block of boxes at a time.

    A box is removed by the *first* kept box before it whose IoU with it exceeds the threshold, so
    each block is first checked against every box kept in earlier blocks at once (one IoU matrix),
    then the survivors are resolved in order among themselves. Same result as the one-box-at-a-time
    loop in this module's docstring, a third of the time for a COCO model's 3 × 1000 boxes.

    Returns the kept positions (into ``members``, in order), and for every position the position of
    the box that removed it (-1: kept) with their IoU.
    """
    count = members.size
    by = np.full(count, -1, dtype=np.int64)
    iou_with = np.zeros(count, dtype=np.float32)
    kept_blocks: list[np.ndarray] = []
    for start in range(0, count, BLOCK):
        block = np.arange(start, min(start + BLOCK, count))
        if kept_blocks:
            earlier = np.concatenate(kept_blocks)
            iou = box_iou(xyxy[members[earlier]], xyxy[members[block]]).numpy()  # (kept so far, block)
            hit = iou > iou_threshold
            removed = hit.any(axis=0)
            first = hit.argmax(axis=0)[removed]  # the first kept box, in score order, that hits
            by[block[removed]] = earlier[first]
            iou_with[block[removed]] = iou[first, np.flatnonzero(removed)]
            block = block[~removed]
        if block.size == 0:
            continue
        iou = box_iou(xyxy[members[block]], xyxy[members[block]]).numpy()
        hit = np.triu(iou > iou_threshold, k=1)  # a box only removes boxes after it
        alive = np.ones(block.size, dtype=bool)
        kept_here = []
        for i, hits_any in enumerate(hit.any(axis=1).tolist()):
            if not alive[i]:
                continue
            kept_here.append(i)
            if not hits_any:  # overlaps no later box of its block
                continue
            victims = hit[i] & alive
            if victims.any():
                alive[victims] = False
                by[block[victims]] = block[i]
                iou_with[block[victims]] = iou[i, victims]
        kept_blocks.append(block[kept_here])
    kept = np.concatenate(kept_blocks) if kept_blocks else np.zeros(0, dtype=np.int64)
    return kept, by, iou_with


def kept_indices(steps: list[NmsStep]) -> list[int]:
    """The boxes NMS keeps, in the order it kept them."""
    return [step.kept for step in steps]
