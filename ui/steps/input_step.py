"""Step 1 — what the network actually receives."""

from __future__ import annotations

import streamlit as st

from ..context import StepContext
from ..figures import show_picture
from ..pictures import Picture
from ..words import photo_note


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
    note = photo_note(pre.adapted)
    if note:
        st.info(f"Before the network: {note}.")
    if ctx.photo.credit:
        st.caption(f"Photo: {ctx.photo.credit}")
    left, right = st.columns(2)
    with left:
        show_picture((ctx.trace_key, "photo"), lambda: Picture(ctx.trace.image).render(f"Your photo ({ow}×{oh})"),
                     ctx.slug("photo"))
    with right:
        show_picture((ctx.trace_key, "network-input"),
                     lambda: Picture(ctx.input_view).render(f"Network input ({iw}×{ih}), normalisation undone"),
                     ctx.slug("network-input"))
    mean = ", ".join(f"{m:.3f}" for m in pre.mean)
    std = ", ".join(f"{s:.3f}" for s in pre.std)
    st.markdown(f"Normalisation per channel (R, G, B): `(pixel / 255 − [{mean}]) / [{std}]`.")
