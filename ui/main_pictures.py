"""The one main picture of each pipeline step, for presenter mode and for two models side by side.

Each is drawn with the page's own helpers (``ui.pictures.Picture``, the steps' drawing functions), follows
the page's current choices when they apply to the model shown (level, anchor shape, NMS step), and
marks the followed anchor. ``scale`` fixes a colour scale shared by two models (same colours, same
scales); None means the picture's own range.
"""

from __future__ import annotations

from typing import Callable, Hashable

import numpy as np
import streamlit as st
import torch
from PIL import Image

from rpn_viz.follow import History
from rpn_viz.regression import explain_decode
from rpn_viz.tracing import LevelTrace

from . import follow, theme
from .context import StepContext
from .pictures import Picture
from .steps import before_nms, nms_step, proposals, regression

Scale = tuple[float, float]
Main = tuple[Hashable, Callable[[], Image.Image]]  # (cache key for show_picture, draw)
RATIO_COLOURS = [theme.OKABE_ITO[c] for c in ("blue", "orange", "green", "purple", "vermillion")]


def _level(ctx: StepContext, found: History | None, widget: str) -> LevelTrace:
    """The followed anchor's level, else the page's chosen level when this model has it, else the first."""
    if found is not None:
        return ctx.trace.levels[found.level]
    by_name = {level.name: level for level in ctx.trace.levels}
    return by_name.get(st.session_state.get(widget), ctx.trace.levels[0])


def activation_range(ctx: StepContext, found: History | None) -> Scale:
    """Min and max mean activation on the level the features picture shows (to share a scale)."""
    values = _level(ctx, found, "feat_level").features.mean(dim=0)
    return float(values.min()), float(values.max())


def candidate_range(ctx: StepContext) -> Scale:
    """Min and max objectness of the boxes that reach NMS (to share a colour scale)."""
    probs = ctx.result.prob[ctx.result.nms_input_pos]
    return (float(probs.min()), float(probs.max())) if probs.numel() else (0.0, 1.0)


def _input(ctx: StepContext, found: History | None, scale: Scale | None) -> Main:
    w, h = ctx.input_size
    return (ctx.trace_key, "main-input"), lambda: Picture(ctx.input_view).render(f"network input {w}×{h}")


def _features(ctx: StepContext, found: History | None, scale: Scale | None) -> Main:
    level = _level(ctx, found, "feat_level")
    values = level.features.mean(dim=0).numpy()
    lo, hi = scale or (float(np.min(values)), float(np.max(values)))
    (sy, sx), (h, w) = level.stride, level.grid
    cell = follow.cell_box(found, level)

    def draw() -> Image.Image:
        picture = (Picture(ctx.input_view).heatmap(values, (w * sx, h * sy), vmin=lo, vmax=hi if hi > lo else lo + 1e-12,
                                                   label="mean activation")
                   .grid((sx, sy), (w, h), alpha=0.5))
        return follow.mark_cell(picture, cell, found).render(f"level '{level.name}': {h}×{w} cells, stride {sx}")

    return (ctx.trace_key, "main-features", level.index, scale, cell and found.flat_index), draw


def _anchors(ctx: StepContext, found: History | None, scale: Scale | None) -> Main:
    if found is not None:
        level, row, col = ctx.trace.levels[found.level], found.row, found.col
    else:
        level = _level(ctx, None, "anchor_level")
        h, w = level.grid
        row = min(int(st.session_state.get("anchor_row", h // 2)), h - 1)
        col = min(int(st.session_state.get("anchor_col", w // 2)), w - 1)
    anchors = level.anchors[row, col]
    iw, ih = ctx.input_size
    view = (min(0.0, float(anchors[:, 0].min())), min(0.0, float(anchors[:, 1].min())),
            max(float(iw), float(anchors[:, 2].max())), max(float(ih), float(anchors[:, 3].max())))
    ratios = sorted({s.ratio for s in level.anchor_shapes})

    def draw() -> Image.Image:
        picture = Picture(ctx.input_view, view=view)
        for i, ratio in enumerate(ratios):
            shapes = [s for s in level.anchor_shapes if s.ratio == ratio]
            picture.boxes(anchors[[s.index for s in shapes]].tolist(), RATIO_COLOURS[i % len(RATIO_COLOURS)], 2,
                          label=f"height:width {ratio:g}", tags=[f"{s.size:g}" for s in shapes])
        if found is not None:
            follow.mark(picture, found.anchor_box, f"followed: {found.shape.label}")
        sy, sx = level.stride
        picture.boxes([[col * sx, row * sy, (col + 1) * sx, (row + 1) * sy]], theme.OKABE_ITO["black"], 2)
        return picture.render(f"the {len(level.anchor_shapes)} anchors of cell ({row}, {col}), level '{level.name}'")

    return (ctx.trace_key, "main-anchors", level.index, row, col, found and found.flat_index), draw


def _head(ctx: StepContext, found: History | None, scale: Scale | None) -> Main:
    level = _level(ctx, found, "head_level")
    probs = torch.sigmoid(level.objectness)
    labels = [s.label for s in level.anchor_shapes]
    shape = found.shape.label if found is not None else st.session_state.get("head_anchor")
    values = (probs[labels.index(shape)] if shape in labels else probs.max(dim=0).values).numpy()
    title = shape if shape in labels else "max over anchors"
    (sy, sx), (h, w) = level.stride, level.grid
    cell = follow.cell_box(found, level)

    def draw() -> Image.Image:
        picture = Picture(ctx.input_view).heatmap(values, (w * sx, h * sy))
        return follow.mark_cell(picture, cell, found).render(f"objectness, level '{level.name}': {title}")

    return (ctx.trace_key, "main-head", level.index, title, cell and found.flat_index), draw


def _regression(ctx: StepContext, found: History | None, scale: Scale | None) -> Main:
    trace = ctx.trace
    flat = found.flat_index if found is not None else int(torch.argmax(trace.logits))
    ex = explain_decode(trace.anchors[flat], trace.deltas[flat], trace.model.model.rpn.box_coder)
    followed = flat if found is not None else None
    return (ctx.trace_key, "main-regression", flat, followed), lambda: regression._one(ctx, ex, followed)


def _before_nms(ctx: StepContext, found: History | None, scale: Scale | None) -> Main | None:
    n = int(ctx.result.nms_input_pos.numel())
    if n == 0:
        return None
    drawn = min(n, int(st.session_state.get("before_drawn", 150)))
    return ((ctx.key, "main-before", drawn, scale, found and found.flat_index),
            lambda: before_nms._candidates(ctx, drawn, found, scale).render(
                f"{drawn} of {n:,} candidates, coloured by objectness"))


def _nms(ctx: StepContext, found: History | None, scale: Scale | None) -> Main | None:
    if ctx.result.nms_input_pos.numel() == 0:
        return None
    steps = nms_step._steps(ctx)
    index = min(int(st.session_state.get("nms_at", 1)), len(steps)) - 1
    pos = ctx.result.nms_input_pos
    return ((ctx.key, "main-nms", index, found and found.flat_index),
            lambda: nms_step._draw(ctx, steps, index, pos, found))


def _proposals(ctx: StepContext, found: History | None, scale: Scale | None) -> Main | None:
    n = int(ctx.result.final_pos.numel())
    if n == 0:
        return None
    shown = min(n, 20)
    return ((ctx.key, "main-proposals", shown, found and found.flat_index),
            lambda: proposals.proposals_picture(ctx, shown, found).render(f"top {shown} of {n} proposals"))


PICTURES: dict[str, Callable[[StepContext, History | None, Scale | None], Main | None]] = {
    "input": _input, "features": _features, "anchors": _anchors, "head": _head, "regression": _regression,
    "before_nms": _before_nms, "nms": _nms, "proposals": _proposals,
}

#: Pictures whose colour scale two models share in the comparison (objectness heatmaps are 0…1 already).
SHARED_SCALES: dict[str, Callable[[StepContext, History | None], Scale]] = {
    "features": activation_range, "before_nms": lambda ctx, found: candidate_range(ctx),
}


def main_picture(step_key: str, ctx: StepContext, found: History | None = None, scale: Scale | None = None) -> Main | None:
    """(cache key, draw) of a pipeline step's main picture; None for other pages or when there is nothing to draw."""
    make = PICTURES.get(step_key)
    return make(ctx, found, scale) if make is not None else None
