"""L6 · Receptive field — which input pixels one cell really looks at, next to the anchors it predicts for."""

from __future__ import annotations

import streamlit as st

from rpn_viz.lab import receptive

from ..context import StepContext
from ..figures import show_picture
from ..lab_pictures import receptive_picture
from ..resources import get_model
from ..store import session_store
from ..widgets import level_picker, untrained_note
from .lab_common import RECEPTIVE_DEFAULTS, RECEPTIVE_MAPS, RECEPTIVE_STORE, receptive_key

TARGETS = {"features": "the cell's feature vector", "objectness": "the cell's objectness logits"}


def render(ctx: StepContext) -> None:
    trace = ctx.trace
    st.markdown(
        """
A cell of a feature map summarises a patch of the photo. In theory a deep network's cell can be influenced by
almost the whole image (its *theoretical* receptive field); in practice the influence is concentrated in a
much smaller, roughly Gaussian blob — the **effective receptive field**. We measure it directly: the gradient
of the cell's output with respect to every input pixel (autograd through the model's own preprocessing and
backbone), |gradient| summed over the colour channels. The anchors of that cell should be boxes the cell can
actually *see*: compare them with the dashed box that holds most of the gradient.
"""
    )
    untrained_note(trace)
    level = level_picker(trace, "lab_receptive_level")
    rows, cols = level.grid
    for key, limit, default in (("lab_receptive_row", rows, rows // 2), ("lab_receptive_col", cols, cols // 2)):
        st.session_state[key] = min(int(st.session_state.get(key, default)), limit - 1)
    c = st.columns([1, 1, 2, 2])
    row = int(c[0].number_input("Cell row", 0, rows - 1, key="lab_receptive_row"))
    col = int(c[1].number_input("Cell column", 0, cols - 1, key="lab_receptive_col"))
    target = c[2].radio("Gradient of", list(TARGETS), format_func=TARGETS.get, key="lab_receptive_target")
    mass = c[3].slider("Mass the box must hold", 0.50, 0.99, RECEPTIVE_DEFAULTS["mass"], 0.01, key="lab_receptive_mass")
    key = receptive_key(ctx, level.index, row, col, target)
    fields = session_store(RECEPTIVE_STORE, RECEPTIVE_MAPS)  # each map is the input's size: keep a few
    if st.button("Compute the receptive field (one backward pass)", key="lab_receptive_run"):
        with st.spinner("Backpropagating from the cell to the input…"), get_model(ctx.choice).lock:
            try:
                fields.put(key, receptive.receptive_field(trace, level.index, row, col, target, mass))
            except ValueError as exc:
                st.error(str(exc))
    erf = fields.find(key)
    if erf is None:
        st.info("Choose a cell and press the button (a forward and a backward pass through the backbone: "
                "a few seconds on a CPU).")
        return
    box, held = receptive.mass_box(erf.weights, float(mass))
    show_picture((ctx.trace_key, "lab-erf", key, float(mass)), lambda: receptive_picture(ctx, erf, box, held, level.name),
                 ctx.slug(f"lab-erf-{level.name}-r{erf.row}c{erf.col}-{erf.target}"))
    x1, y1, x2, y2 = box
    sx1, sy1, sx2, sy2 = erf.support_box
    widths = erf.cell_anchors[:, 2] - erf.cell_anchors[:, 0]
    heights = erf.cell_anchors[:, 3] - erf.cell_anchors[:, 1]
    bigger = int(((widths > x2 - x1) & (heights > y2 - y1)).sum())
    sizes = sorted({s.size for s in level.anchor_shapes})
    px, py = erf.peak
    st.markdown(
        f"""
**{held:.0%} of the gradient** of {TARGETS[target]} lies in a **{x2 - x1:.0f}×{y2 - y1:.0f} px** box
(x {x1:.0f}–{x2:.0f}, y {y1:.0f}–{y2:.0f}); the strongest pixel is at ({px}, {py}), the cell's anchors are
centred at ({erf.cell_centre[0]:.0f}, {erf.cell_centre[1]:.0f}). Non-zero gradient reaches a
{sx2 - sx1:.0f}×{sy2 - sy1:.0f} px region (the theoretical field, cut by the image). This cell's anchors are
{', '.join(f'{s:g}' for s in sizes)} px; **{bigger} of its {erf.cell_anchors.shape[0]}** are larger than the box
on both sides — for those the cell must predict an object from a view of only part of it (it can still work:
the box is where most of the influence is, not all of it).
"""
    )
