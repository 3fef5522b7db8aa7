"""Small pieces the "Anchor lab & comparisons" pages share (layout only; the numbers come from rpn_viz),
and what the slide deck's lab pages take from this session (:func:`deck_inputs`)."""

from __future__ import annotations

import streamlit as st
import torch

from rpn_viz.pipeline.boxes import split_numbers
from rpn_viz.pipeline.anchors import AnchorSpec
from rpn_viz.lab.custom_anchors import working_to_input

from ..lab_pictures import LabChoices
from ..lab_slides import LabInputs, Receptive
from ..store import session_store

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
    return LabChoices(sizes=tuple(state["sizes"]), ratios=tuple(state["ratios"]), stride=int(state["stride"])).spec


def set_lab_anchors(spec: AnchorSpec) -> None:
    """Make ``spec`` the lab's custom anchors; L1's widgets show it the next time L1 is drawn."""
    st.session_state[LAB_ANCHORS_KEY] = {"sizes": list(spec.sizes), "ratios": list(spec.ratios),
                                         "stride": int(spec.stride), "fitted_sizes": list(spec.sizes),
                                         "fitted_ratios": list(spec.ratios)}
    for key in LAB_ANCHOR_WIDGETS.values():
        st.session_state.pop(key, None)


# What an earlier click on a page made, kept for this session (the deck takes it along)
SEARCH_STORE, RECEPTIVE_STORE = "lab_before_ss", "lab_receptive_maps"
SEARCH_RUNS, RECEPTIVE_MAPS = 3, 4  # entries kept (each receptive field is the input's size)
RECEPTIVE_DEFAULTS = {"target": "features", "mass": 0.95}


def search_key(ctx: StepContext, mode: str, side: int) -> tuple:
    """L4: the key of this photo's Selective Search run in :data:`SEARCH_STORE`."""
    return (ctx.photo.sha256, mode, int(side))


def receptive_key(ctx: StepContext, level: int, row: int, col: int, target: str) -> tuple:
    """L6: the key of a cell's receptive field in :data:`RECEPTIVE_STORE`."""
    return (ctx.choice.key, ctx.loaded.weights.label, ctx.photo.sha256, level, row, col, target)


def _numbers_or(text: object, default: tuple[float, ...] | None) -> tuple[float, ...] | None:
    try:
        return tuple(parse_numbers(str(text), "number"))
    except ValueError:
        return default


def deck_inputs(ctx: StepContext) -> tuple[LabInputs, tuple]:
    """The slide deck's lab inputs as this session's lab pages would draw them (their widgets' values, the
    photo's boxes, a Selective Search or receptive field computed here), and a key that says all of it."""
    state, base = st.session_state, LabChoices()
    anchors = state.get(LAB_ANCHORS_KEY) or {}
    custom_ratios = state.get("lab_custom_ratios")
    choices = LabChoices(
        sizes=tuple(anchors.get("sizes") or base.sizes), ratios=tuple(anchors.get("ratios") or base.ratios),
        stride=int(anchors.get("stride", base.stride)), on_photo=state.get("lab_image", "photo") == "photo",
        custom_scale=float(state.get("lab_custom_scale", base.custom_scale)),
        custom_ratios=None if custom_ratios is None else _numbers_or(custom_ratios, None),
        custom_shown=int(state.get("lab_custom_shown", base.custom_shown)),
        recall_iou=float(state.get("lab_recall_iou", base.recall_iou)),
        window_sizes=tuple(state.get("lab_before_sizes") or base.window_sizes),
        window_ratios=tuple(state.get("lab_before_ratios") or base.window_ratios),
        window_stride=int(state.get("lab_before_stride", base.window_stride)),
        fit_source=state.get("lab_fit_source", base.fit_source), fit_ignore=bool(state.get("lab_fit_ignore", False)))
    gt = gt_boxes_input(ctx)
    found_search = search_key(ctx, state.get("lab_before_mode", "fast"), state.get("lab_before_side", 500))
    search = session_store(SEARCH_STORE, SEARCH_RUNS).find(found_search)
    levels = {level.name: level for level in ctx.trace.levels}
    level = levels.get(state.get("lab_receptive_level"), ctx.trace.levels[0])
    rows, cols = level.grid
    cell = (min(int(state.get("lab_receptive_row", rows // 2)), rows - 1),
            min(int(state.get("lab_receptive_col", cols // 2)), cols - 1))
    target = state.get("lab_receptive_target", RECEPTIVE_DEFAULTS["target"])
    mass = float(state.get("lab_receptive_mass", RECEPTIVE_DEFAULTS["mass"]))
    found_field = receptive_key(ctx, level.index, *cell, target)
    field = session_store(RECEPTIVE_STORE, RECEPTIVE_MAPS).find(found_field)
    inputs = LabInputs(gt, choices, search, None if field is None else Receptive(field, level.name, mass))
    key = (choices, tuple(map(tuple, gt.tolist())), search is not None and found_search,
           field is not None and (found_field, mass))
    return inputs, key
