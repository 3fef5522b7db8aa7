"""Step 6 — from every anchor to a few thousand candidate boxes: top-N, clip, small boxes, score."""

from __future__ import annotations

import streamlit as st

from rpn_viz.lab.follow import History

from .. import charts, follow
from ..context import StepContext
from ..pictures import Picture
from ..step_pictures import best_candidates, candidates_picture
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
    found = follow.history(ctx)
    if found is not None:
        st.info(f"**Followed anchor #{found.flat_index}**: {_funnel_note(ctx, found)}")
    left, right = st.columns([3, 2])
    with left:
        st.markdown(f"**{drawn} of {n:,} candidates, coloured by objectness.** Click a box to follow it.")
        order = best_candidates(ctx, drawn)
        follow.picker((ctx.key, "before-nms", drawn, found and found.flat_index),
                      lambda: candidates_picture(ctx, drawn, found).render(None, axes=False), lambda: Picture(ctx.trace.image),
                      ctx.trace.to_working(result.box[order]), result.anchor_index[order].tolist(), "before_click",
                      ctx.slug("before-nms"))
        follow.table([follow.row(ctx, int(p), i) for i, p in enumerate(order[:100].tolist())],
                     result.anchor_index[order[:100]].tolist(), "before_table")
    with right:
        charts.show_chart(_histogram(ctx))
        per_level = [
            {"level": lv.name, "anchors": lv.num_anchors,
             "candidates": int((result.level == lv.index).sum()),
             "after threshold": int((result.level[survivors] == lv.index).sum())}
            for lv in ctx.trace.levels
        ]
        st.dataframe(per_level, hide_index=True)


def _funnel_note(ctx: StepContext, found: History) -> str:
    """Where the followed anchor stands in the funnel: its rank, clipping, minimum size and score threshold."""
    s = ctx.settings
    if found.candidate_pos is None:
        return (f"its logit ranks **{found.level_rank:,}** of {found.level_size:,} on level '{found.level_name}': "
                f"outside the pre-NMS top {s.pre_nms_top_n}, so it is not a candidate.")
    x1, y1, x2, y2 = found.clipped_box
    parts = [f"in its level's top {s.pre_nms_top_n} (logit rank {found.level_rank:,})",
             "clipped to the image" if found.clipped else "not touched by clipping",
             f"{'narrower than' if found.stage == 'too small' else 'at least'} {s.min_size:g} px "
             f"({x2 - x1:.1f}×{y2 - y1:.1f} px)"]
    if found.stage != "too small":
        parts.append(f"objectness {found.prob:.3f} {'below' if found.stage == 'low score' else 'at or above'} "
                     f"the threshold {s.score_thresh:g}")
    if found.nms_rank is not None:
        parts.append(f"**#{found.nms_rank}** of the {found.nms_inputs:,} boxes that reach NMS")
    return "; ".join(parts) + "."


def _histogram(ctx: StepContext) -> dict:
    s = ctx.settings
    return charts.histogram(ctx.result.prob.numpy(), title="Scores before NMS", x_title="objectness probability",
                            y_title="candidates", mark_at=s.score_thresh, mark_label=f"threshold {s.score_thresh:g}")
