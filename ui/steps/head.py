"""Step 4 — the RPN head: a 3×3 conv, then two 1×1 convs (objectness, box deltas)."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch
from PIL import Image

from .. import follow
from ..context import StepContext
from ..figures import show_picture
from ..picture_frame import side_by_side
from ..pictures import Picture
from ..widgets import level_picker, untrained_note


def _conv_shapes(head: torch.nn.Module) -> list[tuple[str, str]]:
    """(layer, weight shape) of the head's convolutions, read from the module itself."""
    rows = []
    for name, module in head.named_modules():
        if isinstance(module, torch.nn.Conv2d):
            o, i, kh, kw = module.weight.shape
            rows.append((name, f"{kh}×{kw} conv, {i} → {o} channels"))
    return rows


def render(ctx: StepContext) -> None:
    trace = ctx.trace
    head = trace.rpn.head
    a = len(trace.levels[0].anchor_shapes)
    st.markdown(
        f"""
The **RPN head** slides over every cell of every level with the same small network:

1. a **3×3 convolution** (+ ReLU) that looks at each cell and its 8 neighbours;
2. a **1×1 convolution → objectness**: one number per anchor (k = {a}) saying *object here or not*;
3. a **1×1 convolution → box deltas**: four numbers per anchor (4k = {4 * a}) saying how to move and resize it.

The paper's head outputs **2k** scores (object and background per anchor) and takes a softmax;
torchvision outputs **k** logits and takes a sigmoid. They are the same thing: softmax over
(background, object) equals sigmoid(object − background).
"""
    )
    untrained_note(trace)
    rows = []
    for level in trace.levels:
        c, h, w = level.features.shape
        rows.append({
            "level": level.name, "input": f"{c}×{h}×{w}", "3×3 conv + ReLU": "×".join(map(str, level.conv_shape)),
            "objectness logits": "×".join(map(str, level.objectness.shape)),
            "box deltas": f"{level.deltas.shape[0]}×4×{h}×{w}",
        })
    st.markdown("**Real tensor shapes on this photo** (channels × rows × columns):")
    st.dataframe(rows, hide_index=True)
    st.caption("Layers: " + "; ".join(f"`{n}` {d}" for n, d in _conv_shapes(head)))

    st.subheader("Objectness heatmap")
    found = follow.history(ctx)
    follow.preselect("head", found, lambda f: {"head_level": f.level_name, "head_anchor": f.shape.label})
    level = level_picker(trace, "head_level")
    options = ["max over anchors", *[s.label for s in level.anchor_shapes]]
    if st.session_state.get("head_anchor") not in options:
        st.session_state.pop("head_anchor", None)
    chosen = st.selectbox("Anchor shape", options, key="head_anchor")
    probs = torch.sigmoid(level.objectness)
    if chosen == "max over anchors":
        values = level.objectness_map()[0].numpy()
    else:
        values = probs[options.index(chosen) - 1].numpy()
    h, w = level.grid
    sy, sx = level.stride
    iw, ih = ctx.input_size
    cell = None
    if found is not None:
        st.info(f"**Followed anchor #{found.flat_index}** (level '{found.level_name}', row {found.row}, column "
                f"{found.col}, {found.shape.label}): objectness logit **{found.logit:+.3f}**, probability "
                f"sigmoid({found.logit:+.3f}) = **{found.prob:.3f}**"
                + (" — its cell is outlined in purple on the map." if found.level == level.index else
                   f". Choose level '{found.level_name}' to see its cell."))
        cell = follow.cell_box(found, level)
    left, right = st.columns(2)
    with left:
        show_picture((ctx.trace_key, "objectness", level.index, chosen, cell and found.flat_index),
                     lambda: follow.mark_cell(Picture(ctx.input_view).heatmap(values, (w * sx, h * sy)), cell, found)
                     .render(f"level '{level.name}': {chosen}"),
                     ctx.slug(f"objectness-{level.name}"))
    with right:
        show_picture((ctx.trace_key, "objectness-all-levels"), lambda: _all_levels(trace),
                     ctx.slug("objectness-all-levels"), caption="Max over anchors, every level (grid cells)")
        top = float(np.max(values))
        st.metric("Highest objectness on this map", f"{top:.3f}")


def _all_levels(trace) -> Image.Image:
    """Small multiples: max objectness over the anchors of every level, as grids of cells, one colour bar."""
    panels = []
    width = 720 // len(trace.levels)
    for i, lv in enumerate(trace.levels):
        h, w = lv.grid
        last = i == len(trace.levels) - 1  # one colour bar for the row: every panel shares the 0–1 scale
        picture = Picture(None, size=(w, h), width=width, height=width).heatmap(
            lv.objectness_map()[0].numpy(), (w, h), alpha=1.0, label="max objectness", colour_bar=last)
        panels.append(picture.render(f"'{lv.name}' {h}×{w}", axes=False))
    return side_by_side(panels)
