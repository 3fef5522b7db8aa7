"""Step 2 — the backbone turns the photo into a coarse grid of feature vectors."""

from __future__ import annotations

import numpy as np
import streamlit as st

from .. import theme
from ..context import StepContext
from ..figures import new_figure, overlay_heatmap, show_figure, show_photo
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
    level = level_picker(trace, "feat_level")
    c, h, w = level.features.shape
    sy, sx = level.stride
    st.markdown(
        f"Level **'{level.name}'**: feature map **{c} × {h} × {w}** (channels × rows × columns); "
        f"one cell = **{sx} × {sy}** input pixels."
    )
    iw, ih = ctx.input_size
    left, right = st.columns(2)
    with left:
        fig, ax = new_figure((iw, ih), max_width=8)
        show_photo(ax, ctx.input_view, f"{h}×{w} grid, stride {sx}")
        for x in range(0, w + 1):
            ax.axvline(x * sx, color=theme.OKABE_ITO["yellow"], linewidth=0.8, alpha=0.8)
        for y in range(0, h + 1):
            ax.axhline(y * sy, color=theme.OKABE_ITO["yellow"], linewidth=0.8, alpha=0.8)
        ax.set_xlim(0, iw)
        ax.set_ylim(ih, 0)
        show_figure(fig, ctx.slug(f"grid-{level.name}"))
    with right:
        mode = st.radio("Show", ["Mean over channels", "One channel"], horizontal=True, key="feat_mode")
        if mode == "One channel":
            channel = st.slider("Channel", 0, c - 1, 0, key="feat_channel")
            values = level.features[channel].numpy()
            title = f"channel {channel} of {c}"
        else:
            values = level.features.mean(dim=0).numpy()
            title = f"mean of {c} channels"
        lo, hi = float(np.min(values)), float(np.max(values))
        fig, ax = new_figure((iw, ih), max_width=8)
        show_photo(ax, ctx.input_view, f"Activation: {title}")
        overlay_heatmap(ax, values, (w * sx, h * sy), vmin=lo, vmax=hi if hi > lo else lo + 1e-12,
                        label="activation")
        ax.set_xlim(0, iw)
        ax.set_ylim(ih, 0)
        show_figure(fig, ctx.slug(f"activation-{level.name}"))
        st.caption(f"Range on this level: {lo:.3g} … {hi:.3g}. Bright cells respond strongly to what lies under them.")
