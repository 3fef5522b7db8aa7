"""The user's ground-truth boxes for the current photo, shared by the lab, recall and learning pages.

Boxes are kept per photo (by sha256) in ``st.session_state["gt_boxes"]`` as [x1, y1, x2, y2] in the
photo's own pixels (``trace.image``: as displayed, after any safety downscale).
"""

from __future__ import annotations

import streamlit as st
from PIL import Image

from rpn_viz.pipeline.boxes import parse_boxes

from . import theme
from .figures import clickable_picture
from .photo import Photo
from .pictures import Picture

Box = list[float]


def get_boxes(photo: Photo) -> list[Box]:
    """The boxes drawn or typed for this photo so far; a sample starts with its hand-drawn boxes."""
    return st.session_state.setdefault("gt_boxes", {}).setdefault(photo.sha256, [list(b) for b in photo.boxes])


def set_boxes(photo: Photo, boxes: list[Box]) -> None:
    st.session_state.setdefault("gt_boxes", {})[photo.sha256] = boxes


def _preview(image: Image.Image, boxes: list[Box]) -> Image.Image:
    """The photo (at most 900 px) with the boxes so far, tagged GT 1, GT 2…"""
    return (Picture(image).boxes(boxes, theme.GROUND_TRUTH, 2, tags=[f"GT {i + 1}" for i in range(len(boxes))])
            .render(axes=False))


def box_editor(photo: Photo, key: str = "gt") -> list[Box]:
    """Draw boxes by dragging on the photo, or type them; returns the current boxes."""
    image = photo.image.image
    boxes = list(get_boxes(photo))
    st.markdown("**Your ground-truth boxes** — drag on the photo to add one, or type them below.")
    click = clickable_picture(("gt-preview", photo.sha256, tuple(map(tuple, boxes))), lambda: _preview(image, boxes),
                              f"{key}-draw", click_and_drag=True)
    if click and click.get("x1") is not None and click.get("unix_time") != st.session_state.get(f"{key}-last"):
        st.session_state[f"{key}-last"] = click.get("unix_time")
        sx, sy = image.width / click["width"], image.height / click["height"]
        x1, x2 = sorted((click["x1"] * sx, click["x2"] * sx))
        y1, y2 = sorted((click["y1"] * sy, click["y2"] * sy))
        x1, y1 = max(0.0, x1), max(0.0, y1)
        x2, y2 = min(float(image.width), x2), min(float(image.height), y2)
        if x2 - x1 >= 4 and y2 - y1 >= 4:
            boxes.append([round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1)])
            set_boxes(photo, boxes)
            st.rerun()
    text = "\n".join(", ".join(f"{v:g}" for v in box) for box in boxes)
    typed = st.text_area("Boxes (x1, y1, x2, y2 per line, photo pixels)", value=text, key=f"{key}-text-{photo.sha256[:8]}")
    cols = st.columns(2)
    if cols[0].button("Use typed boxes", key=f"{key}-apply"):
        try:
            set_boxes(photo, parse_boxes(typed, image.size))
            st.rerun()
        except ValueError as exc:
            st.error(f"Could not read the boxes: {exc}")
    if cols[1].button("Clear boxes", key=f"{key}-clear"):
        set_boxes(photo, [])
        st.rerun()
    return get_boxes(photo)
