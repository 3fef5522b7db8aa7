"""RPN post-processing, one recorded stage at a time, exactly as torchvision does it.

``RegionProposalNetwork.filter_proposals`` turns ~100k scored boxes into ~1000 proposals:

1. per level, keep the ``pre_nms_top_n`` highest objectness logits;
2. sigmoid → probabilities;
3. clip boxes to the (resized) image;
4. drop boxes narrower or shorter than ``min_size``;
5. drop boxes with probability < ``score_thresh``;
6. NMS *per level* (``batched_nms`` with the level as the class: a box is only suppressed by a
   higher-scoring box of its own level);
7. keep the first ``post_nms_top_n``.

:func:`filter_stages` runs the same torchvision ops in the same order (so its proposals are
bit-identical to ``filter_proposals``; the tests check it) and keeps what each stage removed, plus,
for every suppressed box, the box that suppressed it. No network is run here: this is what the
sliders call.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace
from typing import Literal

import torch
from torch import Tensor
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.rpn import RegionProposalNetwork
from torchvision.ops import boxes as box_ops

from ..model.device import to_cpu


@dataclass(frozen=True)
class FilterSettings:
    """The knobs of RPN post-processing (torchvision's names in the comments)."""

    nms_iou: float  # rpn.nms_thresh
    pre_nms_top_n: int  # rpn.pre_nms_top_n() — per level
    post_nms_top_n: int  # rpn.post_nms_top_n()
    score_thresh: float  # rpn.score_thresh
    min_size: float = 1e-3  # rpn.min_size

    @classmethod
    def from_rpn(cls, rpn: RegionProposalNetwork) -> "FilterSettings":
        """The model's own inference settings, read from ``model.rpn`` (never hard-coded copies)."""
        return cls(
            nms_iou=float(rpn.nms_thresh),
            pre_nms_top_n=int(rpn._pre_nms_top_n["testing"]),
            post_nms_top_n=int(rpn._post_nms_top_n["testing"]),
            score_thresh=float(rpn.score_thresh),
            min_size=float(rpn.min_size),
        )

    def with_changes(self, **changes: float | int | None) -> "FilterSettings":
        """A copy with the given fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def as_json(self) -> dict[str, float | int]:
        return dict(vars(self))


def rpn_with_settings(rpn: RegionProposalNetwork, settings: FilterSettings) -> RegionProposalNetwork:
    """A shallow copy of ``rpn`` (sharing its weights) whose inference uses ``settings``.

    Used as the oracle: ``rpn_with_settings(model.rpn, s).filter_proposals(...)`` is torchvision's own
    answer for settings ``s``. The original module is never modified, so concurrent users are safe.
    """
    clone = copy.copy(rpn)
    clone.nms_thresh = settings.nms_iou
    clone._pre_nms_top_n = {"training": settings.pre_nms_top_n, "testing": settings.pre_nms_top_n}
    clone._post_nms_top_n = {"training": settings.post_nms_top_n, "testing": settings.post_nms_top_n}
    clone.score_thresh = settings.score_thresh
    clone.min_size = settings.min_size
    clone.training = False
    return clone


Fate = Literal["proposal", "beyond top-N", "suppressed", "low score", "too small"]


@dataclass
class FilterResult:
    """Every stage of post-processing for one image and one :class:`FilterSettings`.

    *Candidates* are the per-level top-N anchors, in torchvision's order (level by level, each by
    descending logit). Indices named ``*_pos`` are positions in that candidate list; ``anchor_index``
    maps a candidate to its row in the trace's flat anchor list. Boxes are in network-input pixels.
    """

    settings: FilterSettings
    anchor_index: Tensor  # (M,) int64 — row in the flat (all levels) anchor list
    level: Tensor  # (M,) int64
    logit: Tensor  # (M,) objectness logit
    prob: Tensor  # (M,) sigmoid(logit)
    box_unclipped: Tensor  # (M, 4) decoded box
    box: Tensor  # (M, 4) clipped to the image
    too_small: Tensor  # (M,) bool — removed by min_size
    low_score: Tensor  # (M,) bool — removed by score_thresh (only among boxes not too small)
    nms_kept_pos: Tensor  # (K,) candidate positions kept by NMS, in torchvision's output order
    final_pos: Tensor  # (P,) candidate positions of the proposals, in rank order
    timings_ms: dict[str, float] = field(default_factory=dict)
    _suppression: tuple[Tensor, Tensor] | None = field(default=None, repr=False)

    def _suppression_info(self) -> tuple[Tensor, Tensor]:
        """Computed on first use (only the NMS step needs it), then kept."""
        if self._suppression is None:
            start = time.perf_counter()
            nms_in = self.nms_input_pos
            local = torch.full((self.prob.numel(),), -1, dtype=torch.int64)
            local[nms_in] = torch.arange(nms_in.numel())
            sup, iou = who_suppressed(
                self.box[nms_in], self.prob[nms_in], self.level[nms_in], local[self.nms_kept_pos], self.settings.nms_iou
            )
            suppressed_by = torch.full((self.prob.numel(),), -1, dtype=torch.int64)
            suppress_iou = torch.zeros(self.prob.numel(), dtype=torch.float32)
            mapped = sup >= 0
            suppressed_by[nms_in[mapped]] = nms_in[sup[mapped]]
            suppress_iou[nms_in] = iou.float()
            self._suppression = (suppressed_by, suppress_iou)
            self.timings_ms["suppressors"] = _ms_since(start)
        return self._suppression

    @property
    def suppressed_by(self) -> Tensor:
        """(M,) candidate position of the box that suppressed each candidate; -1 when none did."""
        return self._suppression_info()[0]

    @property
    def suppress_iou(self) -> Tensor:
        """(M,) IoU of each suppressed candidate with its suppressor (0 when not suppressed)."""
        return self._suppression_info()[1]

    @property
    def boxes(self) -> Tensor:
        """The proposals (P, 4), in rank order, network-input pixels."""
        return self.box[self.final_pos]

    @property
    def scores(self) -> Tensor:
        """The proposals' objectness probabilities (P,)."""
        return self.prob[self.final_pos]

    @property
    def nms_input_pos(self) -> Tensor:
        """Candidate positions that reached NMS."""
        return torch.where(~self.too_small & ~self.low_score)[0]

    def fates(self) -> list[Fate]:
        """What happened to each candidate, in candidate order."""
        fate: list[Fate] = ["too small" if s else "low score" if l else "suppressed" for s, l in
                            zip(self.too_small.tolist(), self.low_score.tolist())]
        for pos in self.nms_kept_pos.tolist():
            fate[pos] = "beyond top-N"
        for pos in self.final_pos.tolist():
            fate[pos] = "proposal"
        return fate

    def counts(self) -> dict[str, int]:
        """How many boxes survive each stage (the funnel the app shows)."""
        return {
            "candidates (pre-NMS top-N per level)": int(self.logit.numel()),
            "after min-size": int((~self.too_small).sum()),
            "after score threshold": int(self.nms_input_pos.numel()),
            "after NMS": int(self.nms_kept_pos.numel()),
            "proposals (post-NMS top-N)": int(self.final_pos.numel()),
        }


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def top_n_per_level(logits: Tensor, num_anchors_per_level: list[int], pre_nms_top_n: int) -> Tensor:
    """Indices of the ``pre_nms_top_n`` largest logits of each level (``RPN._get_top_n_idx``, one image)."""
    picked = []
    offset = 0
    for level_logits in logits[None].split(num_anchors_per_level, 1):  # (1, n) per level, as torchvision's
        n = det_utils._topk_min(level_logits, pre_nms_top_n, 1)
        picked.append(level_logits.topk(n, dim=1).indices[0] + offset)
        offset += level_logits.shape[1]
    return torch.cat(picked)


WHO_CHUNK = 128  # kept boxes compared with the removed ones at a time (who_suppressed)


def who_suppressed(
    boxes: Tensor, scores: Tensor, levels: Tensor, kept: Tensor, iou_threshold: float
) -> tuple[Tensor, Tensor]:
    """For each box not in ``kept``: the kept box that removed it, and their IoU (-1 and 0 if none).

    Greedy NMS removes a box at the first higher-ranked *kept* box of its level that overlaps it by
    more than the threshold (a suppressed box never suppresses), so this is derived from torchvision's
    ``kept`` rather than by running NMS again. Work is per level, kept × still-unexplained removed boxes.

    This is rpn_viz's one answer to "who suppressed whom" (:attr:`FilterResult.suppressed_by`: the
    followed anchor, the NMS page's fate line, the benchmarks): it starts from the boxes torchvision's
    ``batched_nms`` actually kept, on whatever device the model ran. :func:`rpn_viz.pipeline.nms.greedy_nms_steps`
    knows it too and stays for another job: it is the independent re-implementation, on the CPU, that
    the NMS page plays back step by step and that tests/test_geometry.py checks against torchvision
    (tests/test_follow.py checks the two agree on every removed box).
    """
    n = boxes.shape[0]
    suppressor = torch.full((n,), -1, dtype=torch.int64)
    best_iou = torch.zeros(n, dtype=boxes.dtype)
    if n == 0 or kept.numel() == 0:
        return suppressor, best_iou
    rank = torch.empty(n, dtype=torch.int64)
    rank[torch.sort(scores, descending=True, stable=True).indices] = torch.arange(n)
    is_kept = torch.zeros(n, dtype=torch.bool)
    is_kept[kept] = True
    for level in torch.unique(levels).tolist():
        in_level = levels == level
        winners = torch.where(in_level & is_kept)[0]
        losers = torch.where(in_level & ~is_kept)[0]
        winners = winners[torch.argsort(rank[winners])]
        # Kept boxes in rank order, WHO_CHUNK at a time; a removed box found by one chunk has found its
        # first suppressor and leaves the search. Most are removed by the best boxes, so later chunks
        # meet few (12,000 boxes in, 769 kept: 29 ms instead of 157 for all kept × removed at once).
        for start in range(0, winners.numel(), WHO_CHUNK):
            if losers.numel() == 0:
                break
            chunk = winners[start:start + WHO_CHUNK]
            iou = box_ops.box_iou(boxes[chunk], boxes[losers])  # (chunk, R)
            hits = (iou > iou_threshold) & (rank[chunk][:, None] < rank[losers][None, :])
            has = hits.any(dim=0)
            first = hits.to(torch.uint8).argmax(dim=0)  # first True in rank order
            suppressor[losers[has]] = chunk[first[has]]
            best_iou[losers[has]] = iou[first[has], torch.where(has)[0]]
            losers = losers[~has]
    return suppressor, best_iou


def filter_stages(
    proposals: Tensor,
    logits: Tensor,
    num_anchors_per_level: list[int],
    image_size: tuple[int, int],
    settings: FilterSettings,
) -> FilterResult:
    """Run RPN post-processing on one image's decoded ``proposals`` (N, 4) and ``logits`` (N,).

    ``image_size`` is (height, width) of the resized network input, as in ``ImageList.image_sizes``.
    Mirrors ``RegionProposalNetwork.filter_proposals`` op for op; see the module docstring.
    """
    timings: dict[str, float] = {}
    start = time.perf_counter()
    levels_all = torch.cat([torch.full((n,), index, dtype=torch.int64, device=logits.device)
                            for index, n in enumerate(num_anchors_per_level)])  # as filter_proposals, no sync
    top = top_n_per_level(logits, num_anchors_per_level, settings.pre_nms_top_n)
    logit, level, raw = logits[top], levels_all[top], proposals[top]
    prob = torch.sigmoid(logit)
    box = box_ops.clip_boxes_to_image(raw, image_size)
    big_enough = box_ops.remove_small_boxes(box, settings.min_size)
    too_small = torch.ones_like(prob, dtype=torch.bool)
    too_small[big_enough] = False
    high = torch.where(prob[big_enough] >= settings.score_thresh)[0]
    survivors = big_enough[high]
    low_score = ~too_small
    low_score[survivors] = False
    timings["filter"] = _ms_since(start)

    start = time.perf_counter()
    keep = box_ops.batched_nms(box[survivors], prob[survivors], level[survivors], settings.nms_iou)
    kept_pos = survivors[keep]
    final_pos = kept_pos[: settings.post_nms_top_n]
    timings["nms"] = _ms_since(start)

    # one transfer from the model's device (rpn_viz.model.device.to_cpu); the stages are drawn on the CPU
    fields = dict(anchor_index=top, level=level, logit=logit, prob=prob, box_unclipped=raw, box=box,
                  too_small=too_small, low_score=low_score, nms_kept_pos=kept_pos, final_pos=final_pos)
    return FilterResult(settings=settings, timings_ms=timings, **dict(zip(fields, to_cpu(list(fields.values())))))
