"""Small pieces the "Anchor lab & comparisons" pages share (layout only; the numbers come from rpn_viz)."""

from __future__ import annotations

import streamlit as st
import torch

from rpn_viz.boxes import split_numbers
from rpn_viz.lab import working_to_input

from ..boxes import box_editor, get_boxes
from ..context import StepContext


def gt_boxes_input(ctx: StepContext) -> torch.Tensor:
    """The user's ground-truth boxes of this photo, in network-input pixels (M × 4, M may be 0)."""
    boxes = get_boxes(ctx.photo)
    if not boxes:
        return torch.zeros(0, 4)
    return working_to_input(ctx.trace, boxes)


def gt_section(ctx: StepContext, key: str, expanded: bool | None = None) -> torch.Tensor:
    """The shared box editor in an expander (open while there is no box); returns the boxes in input pixels."""
    count = len(get_boxes(ctx.photo))
    title = f"Ground-truth boxes ({count} on this photo — shared by every page)"
    with st.expander(title, expanded=count == 0 if expanded is None else expanded):
        box_editor(ctx.photo, key=key)
    return gt_boxes_input(ctx)


def parse_numbers(text: str, what: str) -> list[float]:
    """Positive numbers from 'a, b, c' text; raises ValueError with a readable reason."""
    parts = split_numbers(text)
    if not parts:
        raise ValueError(f"give at least one {what}")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"could not read the {what}s '{text}': use numbers separated by commas") from None
    if any(v <= 0 for v in values):
        raise ValueError(f"every {what} must be positive")
    return values
