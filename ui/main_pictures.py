"""The one main picture of each pipeline step, for presenter mode, two models side by side and the slides.

The drawing is :mod:`ui.step_pictures` (no Streamlit); this module reads what the pages' widgets chose
in this session (:func:`choices`), so presenter mode, the comparison and the slide deck show the
step's picture as the page would, and keys it for ``ui.figures.show_picture``.
"""

from __future__ import annotations

import streamlit as st

from rpn_viz.lab.follow import History

from .context import StepContext
from .step_pictures import SHARED_SCALES, Choices, Main, Scale, main_picture as draw_main
from .steps import nms_step

__all__ = ["SHARED_SCALES", "choices", "main_picture"]
ON_RESULT = ("before_nms", "nms", "proposals")  # pictures of the post-processing: keyed by the settings too


def _int(key: str) -> int | None:
    value = st.session_state.get(key)
    return None if value is None else int(value)


def choices() -> Choices:
    """What this session's page widgets chose (level, cell, anchor shape, boxes drawn, NMS step)."""
    state = st.session_state
    return Choices(feat_level=state.get("feat_level"), anchor_level=state.get("anchor_level"),
                   anchor_row=_int("anchor_row"), anchor_col=_int("anchor_col"), head_level=state.get("head_level"),
                   head_anchor=state.get("head_anchor"), before_drawn=int(state.get("before_drawn", 150)),
                   nms_at=int(state.get("nms_at", 1)))


def main_picture(step_key: str, ctx: StepContext, found: History | None = None, scale: Scale | None = None) -> Main | None:
    """(cache key, draw) of a pipeline step's main picture as this session's page shows it; None for other pages
    or when there is nothing to draw."""
    main = draw_main(step_key, ctx, found, scale, choices(), steps=lambda: nms_step.replay(ctx))
    if main is None:
        return None
    key, draw = main
    return ((ctx.key if step_key in ON_RESULT else ctx.trace_key, *key), draw)
