"""Step 5 — box regression: how one anchor's four deltas become a box."""

from __future__ import annotations

import streamlit as st
import torch
from matplotlib.patches import FancyArrowPatch

from rpn_viz.regression import explain_decode

from .. import theme
from ..context import StepContext
from ..figures import draw_boxes, legend, new_figure, show_figure, show_photo


def render(ctx: StepContext) -> None:
    trace, result = ctx.trace, ctx.result
    st.markdown(
        """
For each anchor the head predicts four **deltas** (Δx, Δy, Δw, Δh). They are *relative*: Δx moves the
centre by a fraction of the anchor's width, Δw scales the width by e^Δw. This keeps the numbers small
and the same for big and small anchors. torchvision's `BoxCoder` decodes them exactly as below
(the width and height deltas are clamped at log(1000/16) ≈ 4.135 so a box cannot explode).
"""
    )
    order = torch.argsort(trace.logits, descending=True, stable=True)
    rank = st.number_input("Anchor by objectness rank (0 = the highest-scoring anchor of the whole image)",
                           0, int(order.numel()) - 1, 0, key="reg_rank")
    flat = int(order[int(rank)])
    level, row, col, a = trace.locate(flat)
    shape = level.anchor_shapes[a]
    anchor, deltas = trace.anchors[flat], trace.deltas[flat]
    ex = explain_decode(anchor, deltas, trace.rpn.box_coder)
    prob = float(torch.sigmoid(trace.logits[flat]))
    st.markdown(
        f"Anchor **#{flat}**: level '{level.name}', cell (row {row}, column {col}), shape {shape.label}; "
        f"objectness **{prob:.3f}**."
    )
    cols = st.columns(4)
    for col_, name, value in zip(cols, ("Δx", "Δy", "Δw", "Δh"), (ex.dx, ex.dy, ex.dw, ex.dh)):
        col_.metric(name, f"{value:+.3f}")
    st.markdown(
        f"Anchor centre and size: xa = {ex.xa:.1f}, ya = {ex.ya:.1f}, wa = {ex.wa:.1f}, ha = {ex.ha:.1f}"
    )
    st.code("\n".join(ex.formulas()) + f"\nbox = (x − w/2, y − h/2, x + w/2, y + h/2) = "
            f"({ex.box[0]:.1f}, {ex.box[1]:.1f}, {ex.box[2]:.1f}, {ex.box[3]:.1f})", language="text")
    if ex.clamped:
        st.info("Δw or Δh exceeded the clamp log(1000/16): the size change was capped.")
    matches = torch.allclose(torch.tensor(ex.box), trace.proposals[flat], atol=1e-3)
    st.caption("✓ equals the model's own decoded box" if matches else "⚠ differs from the model's decoded box")

    iw, ih = ctx.input_size
    left, right = st.columns(2)
    with left:
        fig, ax = new_figure((iw, ih), max_width=8)
        show_photo(ax, ctx.input_view, "One anchor and its decoded box")
        draw_boxes(ax, [ex.anchor], theme.ANCHOR, linestyle="--", linewidth=2.5, label="anchor")
        draw_boxes(ax, [ex.box], theme.DECODED, linewidth=3, label="decoded box")
        ax.add_patch(FancyArrowPatch((ex.xa, ex.ya), (ex.x, ex.y), arrowstyle="-|>", mutation_scale=20,
                                     color=theme.OKABE_ITO["black"], linewidth=2))
        ax.set_xlim(min(0, ex.anchor[0], ex.box[0]), max(iw, ex.anchor[2], ex.box[2]))
        ax.set_ylim(max(ih, ex.anchor[3], ex.box[3]), min(0, ex.anchor[1], ex.box[1]))
        legend(ax, loc="lower right")
        show_figure(fig, ctx.slug(f"decode-{flat}"))
    with right:
        many = st.slider("Anchors drawn as arrows (highest objectness first)", 5, 100, 25, key="reg_many")
        picks = order[:many]
        fig, ax = new_figure((iw, ih), max_width=8)
        show_photo(ax, ctx.input_view, f"Top {many} anchors → boxes")
        draw_boxes(ax, trace.anchors[picks].tolist(), theme.ANCHOR, linestyle="--", linewidth=1, alpha=0.6,
                   label="anchor")
        draw_boxes(ax, trace.proposals[picks].tolist(), theme.DECODED, linewidth=1.5, alpha=0.9,
                   label="decoded box")
        for src, dst in zip(trace.anchors[picks], trace.proposals[picks]):
            ax.add_patch(FancyArrowPatch(((src[0] + src[2]) / 2, (src[1] + src[3]) / 2),
                                         ((dst[0] + dst[2]) / 2, (dst[1] + dst[3]) / 2),
                                         arrowstyle="-|>", mutation_scale=12, color=theme.OKABE_ITO["black"]))
        ax.set_xlim(0, iw)
        ax.set_ylim(ih, 0)
        legend(ax, loc="lower right")
        show_figure(fig, ctx.slug(f"decode-top{many}"))
