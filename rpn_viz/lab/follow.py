"""The life of one anchor: every recorded stage of a trace, for one flat anchor index.

A proposal is born from one anchor: a cell of one feature level and one of its k anchor shapes. The
head gives it an objectness logit and four deltas; decoding moves the anchor into a box; the
post-processing keeps it or drops it at one stage (pre-NMS top-N of its level, the minimum size, the
score threshold, NMS, post-NMS top-N). :func:`follow` reads all of that back from a
:class:`~rpn_viz.pipeline.tracing.Trace` and a :class:`~rpn_viz.pipeline.filtering.FilterResult` — nothing is
recomputed except ranks — so the app can show one box's whole history and say where and why it
stopped. Following the *anchor index* (not a proposal's rank) keeps it meaningful for a box that
never became a proposal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..pipeline.filtering import FilterResult
from ..pipeline.tracing import AnchorShape, Trace

Box = tuple[float, float, float, float]
Stage = Literal["beyond pre-NMS top-N", "too small", "low score", "suppressed", "beyond post-NMS top-N", "proposal"]


@dataclass(frozen=True)
class Removal:
    """A box that NMS removed: its flat anchor index, candidate position and IoU with the remover."""

    flat_index: int
    candidate_pos: int
    iou: float


@dataclass(frozen=True)
class History:
    """One anchor through the whole RPN (boxes in network-input pixels; ranks and steps 0-based).

    ``stage`` is where it stopped ("proposal" when it is one). Fields of a later stage are ``None``
    when it never got there: a box beyond the pre-NMS top-N has no ``candidate_pos``, a suppressed
    box has no ``nms_step`` but a ``suppressor_*``, and only a proposal has a ``final_rank``.
    """

    flat_index: int
    level: int  # index into trace.levels
    level_name: str
    row: int
    col: int
    anchor: int  # which of the cell's k anchor shapes
    shape: AnchorShape
    anchor_box: Box
    logit: float
    prob: float  # sigmoid(logit)
    deltas: Box  # (dx, dy, dw, dh)
    decoded_box: Box  # anchor moved by its deltas, before clipping
    level_rank: int  # anchors of its level with a strictly higher logit (pre-NMS top-N keeps rank < N)
    level_size: int  # anchors on its level
    stage: Stage
    candidate_pos: int | None = None  # position in the FilterResult's candidate list
    clipped_box: Box | None = None  # after clipping to the image
    clipped: bool = False  # whether clipping changed the box
    nms_rank: int | None = None  # order in which NMS considered it (descending objectness)
    nms_inputs: int = 0  # boxes that reached NMS
    nms_step: int | None = None  # greedy step that kept it (as rpn_viz.pipeline.nms.greedy_nms_steps counts)
    removed: tuple[Removal, ...] = ()  # boxes it removed, in the order NMS considered them
    suppressor_flat: int | None = None  # flat anchor index of the kept box that removed it
    suppressor_pos: int | None = None
    suppressor_step: int | None = None  # greedy step at which that box was kept (and removed this one)
    suppress_iou: float | None = None
    kept_rank: int | None = None  # position among the boxes NMS kept (torchvision's order)
    final_rank: int | None = None  # proposal rank (#0 is the best)

    @property
    def cell_size(self) -> tuple[float, float]:
        """(width, height) of its anchor."""
        return self.shape.width, self.shape.height


def _box(values: torch.Tensor) -> Box:
    return tuple(float(v) for v in values.tolist())  # type: ignore[return-value]


def _position(positions: torch.Tensor, pos: int) -> int | None:
    """Index of ``pos`` in a tensor of candidate positions, or None."""
    where = torch.where(positions == pos)[0]
    return int(where[0]) if where.numel() else None


def nms_order(result: FilterResult) -> torch.Tensor:
    """Candidate positions that reached NMS, in the order greedy NMS considers them.

    Descending probability, ties in candidate order: the order of :func:`rpn_viz.pipeline.nms.greedy_nms_steps`
    on ``result.nms_input_pos`` (and torchvision's stable sort inside NMS).
    """
    pos = result.nms_input_pos
    return pos[torch.sort(result.prob[pos], descending=True, stable=True).indices]


def kept_steps(result: FilterResult) -> dict[int, int]:
    """Candidate position → greedy NMS step that kept it (step k = the k-th box kept)."""
    order = nms_order(result)
    kept = torch.zeros(result.prob.numel(), dtype=torch.bool)
    kept[result.nms_kept_pos] = True
    return {int(p): i for i, p in enumerate(order[kept[order]].tolist())}


def follow(trace: Trace, result: FilterResult, flat_index: int) -> History:
    """The history of anchor ``flat_index`` (a row of ``trace.anchors``) under ``result``'s settings."""
    if not 0 <= flat_index < trace.anchors.shape[0]:
        raise IndexError(f"anchor index {flat_index} is outside 0…{trace.anchors.shape[0] - 1}")
    level, row, col, a = trace.locate(flat_index)
    logit = trace.logits[flat_index]
    level_logits = trace.logits[level.offset: level.offset + level.num_anchors]
    base = dict(
        flat_index=flat_index, level=level.index, level_name=level.name, row=row, col=col, anchor=a,
        shape=level.anchor_shapes[a], anchor_box=_box(trace.anchors[flat_index]), logit=float(logit),
        prob=float(torch.sigmoid(logit)), deltas=_box(trace.deltas[flat_index]),
        decoded_box=_box(trace.proposals[flat_index]), level_rank=int((level_logits > logit).sum()),
        level_size=level.num_anchors,
    )
    pos = _position(result.anchor_index, flat_index)
    if pos is None:
        return History(**base, stage="beyond pre-NMS top-N")
    clipped = _box(result.box[pos])
    base.update(candidate_pos=pos, clipped_box=clipped, clipped=clipped != _box(result.box_unclipped[pos]),
                nms_inputs=int(result.nms_input_pos.numel()))
    if bool(result.too_small[pos]):
        return History(**base, stage="too small")
    if bool(result.low_score[pos]):
        return History(**base, stage="low score")
    order = nms_order(result)
    steps = kept_steps(result)
    base["nms_rank"] = _position(order, pos)
    if pos not in steps:
        by = int(result.suppressed_by[pos])
        return History(**base, stage="suppressed", suppressor_pos=by, suppressor_flat=int(result.anchor_index[by]),
                       suppressor_step=steps[by], suppress_iou=float(result.suppress_iou[pos]))
    victims = torch.where(result.suppressed_by == pos)[0]
    victims = sorted(victims.tolist(), key=lambda v: _position(order, v))
    removed = tuple(Removal(int(result.anchor_index[v]), v, float(result.suppress_iou[v])) for v in victims)
    final = _position(result.final_pos, pos)
    return History(**base, stage="proposal" if final is not None else "beyond post-NMS top-N",
                   nms_step=steps[pos], removed=removed, kept_rank=_position(result.nms_kept_pos, pos),
                   final_rank=final)


def box_at(boxes: torch.Tensor, x: float, y: float) -> int | None:
    """Index of the smallest box (by area) containing the point (x, y); None when no box does.

    Used for clicks: when boxes nest, the innermost one is meant. Ties keep the earlier index.
    """
    if boxes.numel() == 0:
        return None
    inside = (boxes[:, 0] <= x) & (x <= boxes[:, 2]) & (boxes[:, 1] <= y) & (y <= boxes[:, 3])
    if not bool(inside.any()):
        return None
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    area = torch.where(inside, area, torch.full_like(area, float("inf")))
    return int(torch.argmin(area))
