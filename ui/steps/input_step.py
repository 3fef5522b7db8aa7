"""Step 1 — what the network actually receives."""

from __future__ import annotations

import streamlit as st

from ..context import StepContext
from ..figures import new_figure, show_figure, show_photo


def render(ctx: StepContext) -> None:
    pre = ctx.trace.preprocess
    ow, oh = pre.original_size
    iw, ih = pre.input_size
    pw, ph = pre.padded_size
    sx, sy = pre.scale
    st.markdown(
        f"""
The network never sees your photo at its own size. Faster R-CNN's transform **resizes** it so the
short side is **{pre.min_size} px** (unless the long side would exceed **{pre.max_size} px**),
**normalises** every colour channel with ImageNet's mean and standard deviation, and **pads** the
result with zeros to a multiple of 32 so every backbone stage divides it evenly.

Your photo: **{ow} × {oh} px** → network input **{iw} × {ih} px** (scale ×{sx:.3f}), padded to
**{pw} × {ph} px**. Every box the RPN proposes is in network-input pixels; the app maps them back to
your photo by dividing by {sx:.3f}.
"""
    )
    cols = st.columns(4)
    cols[0].metric("Photo", f"{ow}×{oh}")
    cols[1].metric("Network input", f"{iw}×{ih}")
    cols[2].metric("Padded tensor", f"{pw}×{ph}")
    cols[3].metric("Scale", f"×{sx:.3f}")
    if pre.note:
        st.info(f"Before the network: {pre.note}.")
    if ctx.photo.credit:
        st.caption(f"Photo: {ctx.photo.credit}")
    left, right = st.columns(2)
    with left:
        fig, ax = new_figure((ow, oh), max_width=8)
        show_photo(ax, ctx.trace.image, f"Your photo ({ow}×{oh})")
        show_figure(fig, ctx.slug("photo"))
    with right:
        fig, ax = new_figure((iw, ih), max_width=8)
        show_photo(ax, ctx.input_view, f"Network input ({iw}×{ih}), normalisation undone")
        show_figure(fig, ctx.slug("network-input"))
    mean = ", ".join(f"{m:.3f}" for m in pre.mean)
    std = ", ".join(f"{s:.3f}" for s in pre.std)
    st.markdown(f"Normalisation per channel (R, G, B): `(pixel / 255 − [{mean}]) / [{std}]`.")
