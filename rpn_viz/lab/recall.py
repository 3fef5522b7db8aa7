"""Proposal recall on the user's ground-truth boxes, as in the Faster R-CNN paper's figures.

A ground-truth box is *recalled* by a set of proposals at IoU threshold t when at least one proposal
overlaps it with IoU ≥ t. The paper (Fig. 2 and its Table 8 discussion) plots recall against the IoU
threshold for the top 300 / 1000 / 2000 proposals; proposal papers (Hosang et al.) also plot it
against the number of proposals at IoU 0.5 and 0.7. Both come from one matrix: the best IoU of each
gt box with the top-n proposals, for every n (a cumulative maximum along the ranked proposals).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import Tensor
from torchvision.ops import box_iou

from ..pipeline.boxes import as_boxes, best_iou

#: The COCO-style IoU thresholds 0.50, 0.55, …, 0.95.
IOU_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


def best_iou_by_rank(proposals: Tensor, gt_boxes: Tensor) -> Tensor:
    """(M, N): entry [m, n-1] is gt box m's best IoU over the top-n proposals (a running maximum)."""
    proposals, gt_boxes = as_boxes(proposals), as_boxes(gt_boxes)
    if proposals.shape[0] == 0:
        return torch.zeros(gt_boxes.shape[0], 0)
    return torch.cummax(box_iou(gt_boxes, proposals), dim=1).values


def recall_at(proposals: Tensor, gt_boxes: Tensor, iou_threshold: float = 0.5, top_n: int | None = None) -> float:
    """Fraction of ``gt_boxes`` that one of the first ``top_n`` ``proposals`` covers with IoU ≥ threshold."""
    gt_boxes = as_boxes(gt_boxes)
    if gt_boxes.shape[0] == 0:
        raise ValueError("Recall needs at least one ground-truth box.")
    return float((best_iou(gt_boxes, as_boxes(proposals)[:top_n]) >= iou_threshold).float().mean())


def log_spaced_counts(n_max: int, per_decade: int = 8) -> list[int]:
    """1 … ``n_max`` roughly evenly spaced on a log axis (distinct integers, ``n_max`` included)."""
    if n_max < 1:
        return []
    steps = max(1, math.ceil(math.log10(n_max) * per_decade))
    values = {max(1, round(10 ** (i / per_decade))) for i in range(steps + 1)}
    return sorted(v for v in values | {n_max} if v <= n_max)


@dataclass
class RecallCurves:
    """Recall of one ranked proposal list on a set of gt boxes."""

    num_proposals: int
    num_gt: int
    counts: list[int]  # n values of the recall-vs-number curves
    recall_vs_count: dict[float, list[float]]  # IoU threshold → recall of the top-n, per n in ``counts``
    iou_thresholds: list[float]
    recall_vs_iou: dict[int, list[float]]  # top-N → recall at each IoU threshold
    best_iou: Tensor  # (M,) each gt box's best IoU over all proposals given
    best_rank: Tensor  # (M,) rank of that proposal (-1 when there are none)
    first_rank_at: dict[float, list[int]] = field(default_factory=dict)  # IoU → per gt, proposals needed (-1: never)

    @property
    def average_recall(self) -> float:
        """Recall averaged over IoU 0.5 … 0.95 for all proposals (≈ 2 × the area under recall-vs-IoU)."""
        return float((self.best_iou[:, None] >= torch.tensor(IOU_THRESHOLDS)[None, :]).float().mean())

    def uncovered(self, iou_threshold: float = 0.5) -> list[int]:
        """Indices of gt boxes no proposal overlaps with IoU ≥ ``iou_threshold``."""
        return torch.where(self.best_iou < iou_threshold)[0].tolist()

    def table(self) -> list[dict[str, float | int]]:
        """One row per gt box: best IoU, rank of the best proposal (0 = first), proposals needed at IoU 0.5 / 0.7."""
        rows = []
        for m in range(self.num_gt):
            row: dict[str, float | int] = {"gt": m, "best IoU": float(self.best_iou[m]),
                                           "best proposal #": int(self.best_rank[m])}
            for t, ranks in self.first_rank_at.items():
                row[f"proposals needed @{t:g}"] = ranks[m]
            rows.append(row)
        return rows


def recall_curves(
    proposals: Tensor,
    gt_boxes: Tensor,
    counts: Sequence[int] | None = None,
    count_ious: Sequence[float] = (0.5, 0.7),
    iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
    top_ns: Sequence[int] | None = None,
) -> RecallCurves:
    """Recall vs number of proposals (at ``count_ious``) and vs IoU threshold (for each of ``top_ns``).

    ``proposals`` (N, 4) must be in rank order (best first); ``gt_boxes`` (M ≥ 1, 4) in the same
    pixel frame. ``counts`` defaults to log-spaced 1…N; ``top_ns`` to the paper's 300 / 1000 / 2000
    that do not exceed N, plus N.
    """
    proposals, gt_boxes = as_boxes(proposals), as_boxes(gt_boxes)
    m, n = gt_boxes.shape[0], proposals.shape[0]
    if m == 0:
        raise ValueError("Recall needs at least one ground-truth box.")
    running = best_iou_by_rank(proposals, gt_boxes)  # M × N
    counts = [c for c in (log_spaced_counts(n) if counts is None else counts) if 1 <= c <= n]
    if top_ns is None:
        top_ns = [c for c in (300, 1000, 2000) if c < n] + ([n] if n else [])
    top_ns = [t for t in top_ns if 1 <= t <= n] or ([] if n else [0])

    def best_at(top: int) -> Tensor:
        return running[:, top - 1] if top >= 1 else torch.zeros(m)

    recall_vs_count = {
        float(t): [float((best_at(c) >= t).float().mean()) for c in counts] for t in count_ious
    }
    recall_vs_iou = {
        int(top): [float((best_at(top) >= t).float().mean()) for t in iou_thresholds] for top in top_ns
    }
    if n:
        best_iou, best_rank = box_iou(gt_boxes, proposals).max(dim=1)
    else:
        best_iou, best_rank = torch.zeros(m), torch.full((m,), -1, dtype=torch.int64)
    first_rank_at: dict[float, list[int]] = {}
    for t in count_ious:
        if n == 0:
            first_rank_at[float(t)] = [-1] * m
            continue
        hit = running >= t
        first = torch.where(hit.any(dim=1), hit.to(torch.uint8).argmax(dim=1) + 1, torch.tensor(-1))
        first_rank_at[float(t)] = first.tolist()
    return RecallCurves(
        num_proposals=n, num_gt=m, counts=list(counts), recall_vs_count=recall_vs_count,
        iou_thresholds=[float(t) for t in iou_thresholds], recall_vs_iou=recall_vs_iou,
        best_iou=best_iou, best_rank=best_rank, first_rank_at=first_rank_at,
    )
