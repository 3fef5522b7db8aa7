"""Step 6 — from every anchor to a few thousand candidate boxes: top-N, clip, small boxes, score."""

from __future__ import annotations

import matplotlib.pyplot as plt
import streamlit as st
from matplotlib import cm, colors

from .. import theme
from ..context import StepContext
from ..figures import draw_boxes, new_figure, show_figure, show_photo
from ..widgets import untrained_note


def render(ctx: StepContext) -> None:
    result, s = ctx.result, ctx.settings
    counts = result.counts()
    st.markdown(
        f"""
Every anchor now has a score and a box, far too many to keep. Before NMS the RPN:

1. keeps, **per level**, the **{s.pre_nms_top_n}** anchors with the highest objectness (*pre-NMS top-N*);
2. turns logits into probabilities with a sigmoid;
3. **clips** boxes to the image;
4. drops boxes thinner than **{s.min_size:g} px**;
5. drops boxes with objectness **below {s.score_thresh:g}** (*score threshold*).

Move the **pre-NMS top-N** and **score threshold** sliders in the sidebar: only this filtering re-runs,
not the network.
"""
    )
    untrained_note(ctx.trace)
    cols = st.columns(len(counts))
    for col, (name, value) in zip(cols, counts.items()):
        col.metric(name, f"{value:,}")
    survivors = result.nms_input_pos
    if survivors.numel() == 0:
        st.warning("No box survives these settings. Lower the score threshold in the sidebar.")
        return
    n = int(survivors.numel())
    drawn = n if n <= 10 else st.slider("Boxes drawn (highest objectness first)", 10, min(1000, n), min(150, n),
                                        key="before_drawn")
    order = survivors[result.prob[survivors].argsort(descending=True, stable=True)][:drawn]
    boxes = ctx.trace.to_working(result.box[order])
    probs = result.prob[order]
    lo, hi = float(probs.min()), float(probs.max())
    norm = colors.Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1e-6)
    cmap = plt.get_cmap(theme.SCORES)
    left, right = st.columns([3, 2])
    with left:
        image = ctx.trace.image
        fig, ax = new_figure(image.size, max_width=9)
        show_photo(ax, image, f"{drawn} of {survivors.numel():,} candidates, coloured by objectness")
        draw_boxes(ax, boxes.tolist(), [colors.to_hex(cmap(norm(float(p)))) for p in probs], linewidth=1.2)
        fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, fraction=0.035, pad=0.02,
                     label="objectness probability")
        show_figure(fig, ctx.slug("before-nms"))
    with right:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.hist(result.prob.numpy(), bins=40, color=theme.OKABE_ITO["blue"])
        ax.axvline(s.score_thresh, color=theme.OKABE_ITO["vermillion"], linewidth=3, label=f"threshold {s.score_thresh:g}")
        ax.set_xlabel("objectness probability")
        ax.set_ylabel("candidates")
        ax.set_title("Scores of the pre-NMS top-N")
        ax.legend()
        show_figure(fig, ctx.slug("score-histogram"))
        per_level = [
            {"level": lv.name, "anchors": lv.num_anchors,
             "candidates": int((result.level == lv.index).sum()),
             "after threshold": int((result.level[survivors] == lv.index).sum())}
            for lv in ctx.trace.levels
        ]
        st.dataframe(per_level, hide_index=True)
