"""Small pieces the "Anchor lab & comparisons" pages share (layout only; the numbers come from rpn_viz)."""

from __future__ import annotations

import streamlit as st
import torch

from rpn_viz.pipeline.boxes import split_numbers
from rpn_viz.pipeline.anchors import AnchorSpec
from rpn_viz.lab.custom_anchors import working_to_input

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


# The lab's custom anchors (chosen in L1, filled by L7's fit), kept across pages: Streamlit forgets a
# widget's value when its page is not shown, so L1's widgets start from this copy.
LAB_ANCHORS_KEY = "lab_anchor_set"
LAB_ANCHOR_WIDGETS = {"sizes": "lab_sizes", "ratios": "lab_ratios", "stride": "lab_stride"}


def lab_anchor_state() -> dict:
    """The lab's custom anchors as {"sizes": [...], "ratios": [...], "stride": int} (the paper's by default);
    "fitted_sizes"/"fitted_ratios" are the values a fit added to L1's choices (they change only on a copy,
    so L1's widgets keep their identity)."""
    return st.session_state.setdefault(LAB_ANCHORS_KEY, {"sizes": [128, 256, 512], "ratios": [0.5, 1.0, 2.0],
                                                         "stride": 16, "fitted_sizes": [], "fitted_ratios": []})


def lab_anchor_spec() -> AnchorSpec:
    """The lab's custom anchors as an :class:`~rpn_viz.pipeline.anchors.AnchorSpec`."""
    state = lab_anchor_state()
    return AnchorSpec(tuple(sorted(state["sizes"])), tuple(sorted(state["ratios"])), int(state["stride"]))


def set_lab_anchors(spec: AnchorSpec) -> None:
    """Make ``spec`` the lab's custom anchors; L1's widgets show it the next time L1 is drawn."""
    st.session_state[LAB_ANCHORS_KEY] = {"sizes": list(spec.sizes), "ratios": list(spec.ratios),
                                         "stride": int(spec.stride), "fitted_sizes": list(spec.sizes),
                                         "fitted_ratios": list(spec.ratios)}
    for key in LAB_ANCHOR_WIDGETS.values():
        st.session_state.pop(key, None)
