"""Step 7 — non-maximum suppression, one greedy step at a time."""

from __future__ import annotations

import time

import streamlit as st
import torch

from rpn_viz.lab.follow import History
from rpn_viz.model import paper
from rpn_viz.model.models import PAPER_RPN
from rpn_viz.pipeline.nms import NmsStep

from .. import follow
from ..context import StepContext
from ..figures import picture_bytes
from ..pictures import Picture
from ..step_pictures import MAX_NMS_STEPS, nms_picture, nms_steps
from ..store import session_store


def replay(ctx: StepContext) -> list[NmsStep]:
    """Greedy NMS over the boxes that reached NMS (kept per trace and settings in the session's store)."""
    return session_store("_nms_steps", 2).get_or_make(ctx.key, lambda: nms_steps(ctx))


def _shown(steps: list[NmsStep], index: int) -> list[int]:
    """Indices (into the NMS input) of the boxes drawn at step ``index``: kept earlier (last 40), removed now, kept now."""
    step = steps[index]
    return [s.kept for s in steps[:index]][-40:] + list(step.suppressed) + [step.kept]


def _fate_note(found: History, at: int) -> str:
    """What NMS did to the followed anchor, and the step to look at."""
    if found.stage == "suppressed":
        return (f"**Followed anchor #{found.flat_index}** was **removed at step {found.suppressor_step + 1}** by "
                f"anchor #{found.suppressor_flat} (IoU {found.suppress_iou:.2f}).")
    if found.nms_step is None:
        return f"**Followed anchor #{found.flat_index}** never reached NMS ({found.stage})."
    return (f"**Followed anchor #{found.flat_index}** was **kept at step {found.nms_step + 1}** and removed "
            f"{len(found.removed)} box(es)" + (" (listed below)." if at == found.nms_step + 1 else "."))


def render(ctx: StepContext) -> None:
    result, s = ctx.result, ctx.settings
    st.markdown(
        f"""
Many candidates cover the same object. **Greedy NMS** repeats one step: take the **highest-scoring
remaining box** and keep it, then **remove every remaining box whose IoU with it exceeds
{s.nms_iou:g}** (IoU = area of overlap ÷ area of union). In this model NMS runs **per level**: a box is
only removed by a box of its own level. Change the **NMS IoU** slider in the sidebar to see fewer
(lower IoU) or more (higher IoU) boxes survive.
"""
    )
    if ctx.loaded.name == PAPER_RPN and paper.NMS_IOU != paper.PAPER_NMS_IOU:
        st.caption(f"The Faster R-CNN paper uses IoU {paper.PAPER_NMS_IOU:g}; this model's default is {paper.NMS_IOU:g}. "
                   "A box counts as found from IoU 0.5, so a box overlapping a better one by more than that "
                   "mostly finds the same object again: removing it leaves room among the top proposals "
                   "for other objects (measured on the bundled photos: README, “The offline model”).")
    pos = result.nms_input_pos
    if pos.numel() == 0:
        st.warning("No box reached NMS with these settings. Lower the score threshold in the sidebar.")
        return
    steps = replay(ctx)
    kept_here = pos[[step.kept for step in steps]]
    same = len(steps) < MAX_NMS_STEPS and torch.equal(torch.sort(kept_here).values, torch.sort(result.nms_kept_pos).values)
    if same:
        st.success(f"This step-by-step replay keeps the same {len(steps):,} boxes as torchvision's `batched_nms` "
                   f"on {ctx.loaded.device}.")
    found = follow.history(ctx)
    step_of = lambda h: {"nms_at": min(len(steps), 1 + (h.nms_step if h.nms_step is not None else h.suppressor_step))}  # noqa: E731
    if found is not None and (found.nms_step is not None or found.suppressor_step is not None):
        follow.preselect("nms", found, step_of)
    cols = st.columns(3)
    cols[0].metric("Boxes entering NMS", f"{pos.numel():,}")
    cols[1].metric("Kept", f"{result.nms_kept_pos.numel():,}")
    cols[2].metric("Removed", f"{pos.numel() - result.nms_kept_pos.numel():,}")
    st.session_state.setdefault("nms_at", 1)
    if "_nms_next" in st.session_state:  # set by Play on the previous run
        st.session_state["nms_at"] = st.session_state.pop("_nms_next")
    st.session_state["nms_at"] = min(st.session_state["nms_at"], len(steps))
    controls = st.columns([4, 1, 1])
    at = controls[0].slider("NMS step", 1, max(len(steps), 2), key="nms_at") if len(steps) > 1 else 1
    play = controls[1].button("Play 10 steps", key="nms_play")
    controls[2].button("Restart", key="nms_restart", on_click=lambda: st.session_state.update(nms_at=1))
    picture = st.empty()
    if play:
        for index in range(at - 1, min(at + 9, len(steps))):
            with picture.container():
                st.image(picture_bytes((ctx.key, "nms", index), lambda: nms_picture(ctx, steps, index)), width="stretch")
            time.sleep(0.35)
        st.session_state["_nms_next"] = min(at + 10, len(steps))
        st.rerun()
    if found is not None:
        st.info(_fate_note(found, at))
    with picture.container():
        st.markdown(f"**Step {at}: keep the best remaining box, remove its overlaps.** Click a box to follow it.")
        shown = _shown(steps, at - 1)
        follow.picker((ctx.key, "nms", at - 1, found and found.flat_index),
                      lambda: nms_picture(ctx, steps, at - 1, found, axes=False), lambda: Picture(ctx.trace.image),
                      ctx.trace.to_working(result.box[pos[shown]]), result.anchor_index[pos[shown]].tolist(),
                      "nms_click", ctx.slug(f"nms-step{at}"))
    step = steps[at - 1]
    kept = pos[step.kept]
    level = ctx.trace.levels[int(result.level[kept])]
    st.markdown(
        f"**Step {at}:** kept the box with objectness **{float(result.prob[kept]):.3f}** (level '{level.name}'); "
        f"it removed **{len(step.suppressed)}** box(es) of the same level."
    )
    if step.suppressed:
        st.dataframe(
            [{"removed box": i + 1, "objectness": round(float(result.prob[pos[v]]), 4), "IoU with kept box": round(iou, 3)}
             for i, (v, iou) in enumerate(zip(step.suppressed, step.ious))],
            hide_index=True,
        )

