"""Step 5 — box regression: how one anchor's four deltas become a box."""

from __future__ import annotations

import streamlit as st
import torch

from rpn_viz.pipeline.regression import explain_decode

from .. import follow, theme
from ..context import StepContext
from ..figures import show_picture
from ..pictures import Picture
from ..step_pictures import decode_picture
from ..words import decode_formulas


def render(ctx: StepContext) -> None:
    trace = ctx.trace
    st.markdown(
        """
For each anchor the head predicts four **deltas** (Δx, Δy, Δw, Δh). They are *relative*: Δx moves the
centre by a fraction of the anchor's width, Δw scales the width by e^Δw. This keeps the numbers small
and the same for big and small anchors. torchvision's `BoxCoder` decodes them exactly as below
(the width and height deltas are clamped at log(1000/16) ≈ 4.135 so a box cannot explode).
"""
    )
    order = torch.argsort(trace.logits, descending=True, stable=True)
    found = follow.history(ctx)
    follow.preselect("regression", found, lambda f: {"reg_rank": int(torch.where(order == f.flat_index)[0][0])})
    st.session_state.setdefault("reg_rank", 0)
    rank = st.number_input("Anchor by objectness rank (0 = the highest-scoring anchor of the whole image)",
                           0, int(order.numel()) - 1, key="reg_rank")
    flat = int(order[int(rank)])
    level, row, col, a = trace.locate(flat)
    shape = level.anchor_shapes[a]
    anchor, deltas = trace.anchors[flat], trace.deltas[flat]
    ex = explain_decode(anchor, deltas, trace.rpn.box_coder)
    prob = float(torch.sigmoid(trace.logits[flat]))
    if found is not None:
        followed_rank = int(torch.where(order == found.flat_index)[0][0])
        st.info(f"**Followed anchor #{found.flat_index}** has objectness rank **{followed_rank:,}** of the whole image"
                + (": the formulas below are filled in for it." if flat == found.flat_index
                   else f". Type {followed_rank} above to fill the formulas in for it."))
    st.markdown(
        f"Anchor **#{flat}**: level '{level.name}', cell (row {row}, column {col}), shape {shape.label}; "
        f"objectness **{prob:.3f}**."
    )
    if found is None or found.flat_index != flat:  # any anchor can be followed, even one that never becomes a box
        st.button(f"Follow anchor #{flat} through every step", key="reg_follow", on_click=follow.set_followed,
                  args=(flat,))
    cols = st.columns(4)
    for col_, name, value in zip(cols, ("Δx", "Δy", "Δw", "Δh"), (ex.dx, ex.dy, ex.dw, ex.dh)):
        col_.metric(name, f"{value:+.3f}")
    st.markdown(
        f"Anchor centre and size: xa = {ex.xa:.1f}, ya = {ex.ya:.1f}, wa = {ex.wa:.1f}, ha = {ex.ha:.1f}"
    )
    st.code("\n".join(decode_formulas(ex)) + f"\nbox = (x − w/2, y − h/2, x + w/2, y + h/2) = "
            f"({ex.box[0]:.1f}, {ex.box[1]:.1f}, {ex.box[2]:.1f}, {ex.box[3]:.1f})", language="text")
    if ex.clamped:
        st.info("Δw or Δh exceeded the clamp log(1000/16): the size change was capped.")
    matches = torch.allclose(torch.tensor(ex.box), trace.proposals[flat], atol=1e-3)
    st.caption("✓ equals the model's own decoded box" if matches else "⚠ differs from the model's decoded box")

    iw, ih = ctx.input_size
    left, right = st.columns(2)
    with left:
        followed = flat if found is not None and found.flat_index == flat else None
        show_picture((ctx.trace_key, "decode", flat, followed), lambda: decode_picture(ctx, ex, followed),
                     ctx.slug(f"decode-{flat}"))
    with right:
        many = st.slider("Anchors drawn as arrows (highest objectness first)", 5, 100, 25, key="reg_many")
        picks = order[:many]

        def draw_many():
            anchors, boxes = trace.anchors[picks], trace.proposals[picks]
            return (Picture(ctx.input_view)
                    .boxes(anchors.tolist(), theme.ANCHOR, 1, style="--", alpha=0.6, label="anchor")
                    .boxes(boxes.tolist(), theme.DECODED, 1.5, alpha=0.9, label="decoded box")
                    .arrows(((anchors[:, :2] + anchors[:, 2:]) / 2).numpy(), ((boxes[:, :2] + boxes[:, 2:]) / 2).numpy(),
                            linewidth=1, head=9)
                    .render(f"Top {many} anchors → boxes"))

        show_picture((ctx.trace_key, "decode-top", many), draw_many, ctx.slug(f"decode-top{many}"))
