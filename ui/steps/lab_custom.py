"""L2 · Custom anchors vs the trained head — the head's deltas only mean something for its own anchors."""

from __future__ import annotations

import streamlit as st
import torch

from rpn_viz.lab import custom_anchors as lab
from rpn_viz.pipeline.regression import explain_decode

from .. import theme
from ..context import StepContext
from ..figures import show_picture
from ..lab_pictures import CUSTOM_COLOUR, MODEL_COLOUR, custom_proposals_picture
from ..pictures import Picture
from ..widgets import untrained_note
from ..words import custom_decode_text, decode_formulas
from .lab_common import gt_section, parse_numbers

SCALES = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0]


def _one_anchor(ctx: StepContext, out: lab.CustomAnchorDecode, rank: int, key: tuple) -> None:
    """One prediction decoded twice: against its own anchor and against yours, with the numbers."""
    trace, result = ctx.trace, ctx.result
    flat = int(result.anchor_index[result.final_pos[rank]])
    level, row, col, a = trace.locate(flat)
    deltas = trace.deltas[flat]
    own, mine = explain_decode(trace.anchors[flat], deltas), explain_decode(out.custom_anchors[flat], deltas)
    boxes = torch.stack([trace.anchors[flat], out.custom_anchors[flat], trace.proposals[flat], out.decoded[flat]])
    working = trace.to_working(boxes)

    def draw():
        x1, y1 = float(working[:, 0].min()), float(working[:, 1].min())
        x2, y2 = float(working[:, 2].max()), float(working[:, 3].max())
        pad = 0.15 * max(x2 - x1, y2 - y1)
        return (Picture(trace.image, view=(x1 - pad, y1 - pad, x2 + pad, y2 + pad))
                .boxes([working[0].tolist()], theme.ANCHOR, 2, style=":", label="model's anchor")
                .boxes([working[1].tolist()], theme.OKABE_ITO["purple"], 2, style=":", label="your anchor")
                .boxes([working[2].tolist()], MODEL_COLOUR, 3, label="decoded from the model's anchor")
                .boxes([working[3].tolist()], CUSTOM_COLOUR, 3, style="--", label="decoded from yours")
                .render(f"Proposal #{rank}: level {level.name}, cell ({row}, {col}), anchor {a}"))

    show_picture((*key, "anchor", rank), draw, ctx.slug(f"lab-custom-anchor-rank{rank}"))
    c = st.columns(2)
    c[0].markdown("**Model's anchor** (input pixels)\n\n" + "\n".join(f"- `{line}`" for line in decode_formulas(own)))
    c[1].markdown("**Your anchor**, same deltas\n\n" + "\n".join(f"- `{line}`" for line in decode_formulas(mine)))


def render(ctx: StepContext) -> None:
    trace = ctx.trace
    sizes, ratios = lab.model_anchor_set(trace)
    model_k = [len(level.anchor_shapes) for level in trace.levels]
    st.markdown(
        f"""
The head was **trained for one anchor set**: for each of the k = {model_k[0]} anchors of a cell it outputs
4 numbers, (dx, dy) in units of *that anchor's* width and height and (dw, dh) as log-scales of it. Nothing
in the network knows the anchors — they appear only when the outputs are decoded. So what happens if you
decode the same outputs against other anchors? This model's anchors: sizes
{', '.join(f'{s:g}' for s in sizes[0])} px × height:width {', '.join(f'{r:g}' for r in ratios[0])} on each of
its {len(trace.levels)} levels. Anchor position a of every cell gets your a-th anchor (sizes vary fastest,
then ratios, as in torchvision's `AnchorGenerator`).
"""
    )
    untrained_note(trace)
    n = int(ctx.result.final_pos.numel())
    if n == 0:
        st.warning("No proposals with these settings. Lower the score threshold in the sidebar.")
        return
    c = st.columns([2, 3, 2])
    factor = c[0].select_slider("Scale every anchor size by", SCALES, value=1.0, key="lab_custom_scale")
    ratio_text = c[1].text_input("Aspect ratios, in the head's order (height:width)",
                                 value=", ".join(f"{r:g}" for r in ratios[0]), key="lab_custom_ratios")
    shown = c[2].slider("Proposals drawn", 1, min(n, 100), min(n, 10), key="lab_custom_shown")
    try:
        custom_ratios = parse_numbers(ratio_text, "aspect ratio")
    except ValueError as exc:
        st.error(f"Aspect ratios: {exc}.")
        return
    custom_sizes = [tuple(s * float(factor) for s in level) for level in sizes]
    gt = gt_section(ctx, "lab_custom_gt", expanded=False)
    out = lab.decode_with_custom_anchors(trace, custom_sizes, custom_ratios, gt if gt.numel() else None, own=ctx.result)
    if not out.compatible:
        st.warning(custom_decode_text(out))
        return
    st.markdown(custom_decode_text(out))
    rows = [{"measure": k, "value": round(v, 3) if v == v else "—"} for k, v in out.metrics.items()]
    st.dataframe(rows, hide_index=True)
    st.caption("IoU 1 and area ratio 1 mean nothing changed. With ground-truth boxes (expander above) the table "
               "also compares how well each proposal set covers them.")
    key = (ctx.key, "lab-custom", float(factor), tuple(custom_ratios), tuple(map(tuple, gt.tolist())))
    show_picture((*key, shown), lambda: custom_proposals_picture(ctx, out, gt, shown), ctx.slug(f"lab-custom-top{shown}"))
    st.subheader("One prediction, decoded twice")
    rank = int(st.number_input("Proposal rank", 0, n - 1, 0, key="lab_custom_rank"))
    _one_anchor(ctx, out, rank, key)
