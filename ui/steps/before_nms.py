"""Step 6 — from every anchor to a few thousand candidate boxes: top-N, clip, small boxes, score."""

from __future__ import annotations

import matplotlib.pyplot as plt
import streamlit as st

from .. import theme
from ..context import StepContext
from ..figures import show_picture
from ..pictures import Picture, scalar_colours
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
    left, right = st.columns([3, 2])
    with left:
        show_picture((ctx.key, "before-nms", drawn), lambda: _candidates(ctx, drawn), ctx.slug("before-nms"))
    with right:
        show_picture((ctx.key, "score-histogram"), lambda: _histogram(ctx), ctx.slug("score-histogram"))
        per_level = [
            {"level": lv.name, "anchors": lv.num_anchors,
             "candidates": int((result.level == lv.index).sum()),
             "after threshold": int((result.level[survivors] == lv.index).sum())}
            for lv in ctx.trace.levels
        ]
        st.dataframe(per_level, hide_index=True)


def _candidates(ctx: StepContext, drawn: int):
    """The ``drawn`` best candidates over the photo, coloured by objectness (with its colour bar)."""
    result, survivors = ctx.result, ctx.result.nms_input_pos
    order = survivors[result.prob[survivors].argsort(descending=True, stable=True)][:drawn]
    probs = result.prob[order]
    lo, hi = float(probs.min()), float(probs.max())
    hi = hi if hi > lo else lo + 1e-6
    return (Picture(ctx.trace.image)
            .boxes(ctx.trace.to_working(result.box[order]).tolist(), scalar_colours(probs.tolist(), theme.SCORES, lo, hi),
                   1.2)
            .colour_bar(theme.SCORES, lo, hi, "objectness probability")
            .render(f"{drawn} of {survivors.numel():,} candidates, coloured by objectness"))


def _histogram(ctx: StepContext):
    s = ctx.settings
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(ctx.result.prob.numpy(), bins=40, color=theme.OKABE_ITO["blue"])
    ax.axvline(s.score_thresh, color=theme.OKABE_ITO["vermillion"], linewidth=3, label=f"threshold {s.score_thresh:g}")
    ax.set_xlabel("objectness probability")
    ax.set_ylabel("candidates")
    ax.set_title("Scores of the pre-NMS top-N")
    ax.legend()
    return fig
