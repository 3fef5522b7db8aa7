"""Step 2 — the backbone turns the photo into a coarse grid of feature vectors."""

from __future__ import annotations

import numpy as np
import streamlit as st

from .. import follow
from ..context import StepContext
from ..figures import show_picture
from ..pictures import Picture
from ..widgets import level_picker, untrained_note


def render(ctx: StepContext) -> None:
    trace = ctx.trace
    st.markdown(
        f"""
The backbone (here **{trace.model.spec.title.split(' (')[0]}**) shrinks the image into **feature maps**:
grids where each **cell** holds a vector of numbers describing a patch of the photo. One step of the
grid is the **stride**: a cell at row *r*, column *c* sits over input pixels starting at
(*c*·stride, *r*·stride). This model has **{len(trace.levels)} levels** (an FPN); the Faster R-CNN paper
used a single map with stride 16.
"""
    )
    untrained_note(trace)
    found = follow.history(ctx)
    follow.preselect("features", found, lambda h: {"feat_level": h.level_name})
    level = level_picker(trace, "feat_level")
    c, h, w = level.features.shape
    sy, sx = level.stride
    st.markdown(
        f"Level **'{level.name}'**: feature map **{c} × {h} × {w}** (channels × rows × columns); "
        f"one cell = **{sx} × {sy}** input pixels."
    )
    cell = None
    if found is not None:
        cell = follow.cell_box(found, level)
        if cell:
            st.info(f"**Followed anchor #{found.flat_index}** sits on this level, in the cell at row {found.row}, "
                    f"column {found.col} (input pixels {cell[0]}…{cell[2]} × {cell[1]}…{cell[3]}), outlined in purple.")
        else:
            st.info(f"**Followed anchor #{found.flat_index}** is on level '{found.level_name}' (row {found.row}, "
                    f"column {found.col}); choose that level to see its cell.")
    follow_key = cell and found.flat_index
    iw, ih = ctx.input_size
    left, right = st.columns(2)
    with left:
        show_picture((ctx.trace_key, "grid", level.index, follow_key),
                     lambda: follow.mark_cell(Picture(ctx.input_view).grid((sx, sy), (w, h)), cell, found)
                     .render(f"{h}×{w} grid, stride {sx}"),
                     ctx.slug(f"grid-{level.name}"))
    with right:
        mode = st.radio("Show", ["Mean over channels", "One channel"], horizontal=True, key="feat_mode")
        if mode == "One channel":
            channel = st.slider("Channel", 0, c - 1, 0, key="feat_channel")
            values = level.features[channel].numpy()
            title = f"channel {channel} of {c}"
        else:
            channel = None
            values = level.features.mean(dim=0).numpy()
            title = f"mean of {c} channels"
        lo, hi = float(np.min(values)), float(np.max(values))
        show_picture((ctx.trace_key, "activation", level.index, channel, follow_key),
                     lambda: follow.mark_cell(Picture(ctx.input_view).heatmap(values, (w * sx, h * sy), vmin=lo,
                                                                     vmax=hi if hi > lo else lo + 1e-12, label="activation"),
                                     cell, found)
                     .render(f"Activation: {title}"),
                     ctx.slug(f"activation-{level.name}"))
        st.caption(f"Range on this level: {lo:.3g} … {hi:.3g}. Bright cells respond strongly to what lies under them.")
