"""Small widgets several steps share."""

from __future__ import annotations

import streamlit as st

from rpn_viz.pipeline.tracing import LevelTrace, Trace


def level_picker(trace: Trace, key: str, label: str = "Feature level") -> LevelTrace:
    """Choose one of the model's feature levels; the label shows grid and stride."""
    names = [level.name for level in trace.levels]
    by_name = {level.name: level for level in trace.levels}

    def describe(name: str) -> str:
        level = by_name[name]
        h, w = level.grid
        return f"level '{name}': {h}×{w} cells, stride {level.stride[1]} px"

    if st.session_state.get(key) not in names:
        st.session_state.pop(key, None)
    chosen = st.radio(label, names, format_func=describe, horizontal=True, key=key)
    return by_name[chosen]


def untrained_note(trace: Trace) -> None:
    """Say plainly when the picture shows a network that learned nothing."""
    if trace.model.weights.kind == "untrained":
        st.warning(
            "**Untrained network.** With random weights, torchvision's MobileNetV3-FPN produces near-zero "
            f"features (std {float(trace.levels[0].features.std()):.1e}), so every objectness is 0.5 and every "
            "proposal is just its anchor. Use it to see the machinery; for what a *trained* RPN does, add the "
            "COCO weights (sidebar) or train one yourself in **Watch an RPN learn**."
        )
