"""Step 3 — the k anchors of a cell, and the anchors of the whole image."""

from __future__ import annotations

import streamlit as st
from PIL import Image, ImageDraw, ImageFont

from rpn_viz.pipeline.anchors import inside_image

from .. import follow, theme
from ..context import StepContext
from ..figures import clickable_picture, download_png
from ..widgets import level_picker

RATIO_COLOURS = [theme.OKABE_ITO["blue"], theme.OKABE_ITO["orange"], theme.OKABE_ITO["green"],
                 theme.OKABE_ITO["purple"], theme.OKABE_ITO["vermillion"]]


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.truetype("DejaVuSans-Bold.ttf", size)
    except OSError:
        return ImageFont.load_default(size)


def anchor_picture(ctx: StepContext, level, row: int, col: int, shown: list[int],
                   followed: int | None = None) -> tuple[Image.Image, int]:
    """Input picture on a margin (anchors may cross the border), grid centres, the cell and its anchors
    (anchor ``followed`` of the cell thick, in the follow colour)."""
    view = Image.fromarray(ctx.input_view)
    anchors = level.anchors[row, col]
    margin = int(max(0.0, float(-anchors[:, :2].min()), float((anchors[:, 2] - view.width).max()),
                     float((anchors[:, 3] - view.height).max()))) + 8
    canvas = Image.new("RGB", (view.width + 2 * margin, view.height + 2 * margin), "white")
    canvas.paste(view, (margin, margin))
    draw = ImageDraw.Draw(canvas)
    h, w = level.grid
    sy, sx = level.stride
    dot = max(1, round(min(sx, sy) / 10))
    for r in range(h):
        for c in range(w):
            x, y = margin + c * sx, margin + r * sy
            draw.ellipse((x - dot, y - dot, x + dot, y + dot), fill=theme.OKABE_ITO["yellow"])
    draw.rectangle((margin + col * sx, margin + row * sy, margin + (col + 1) * sx, margin + (row + 1) * sy),
                   outline=theme.OKABE_ITO["black"], width=3)
    width = max(2, round(view.width / 400))
    font = _font(max(14, view.width // 60))
    ratios = sorted({shape.ratio for shape in level.anchor_shapes})
    for a in shown:
        shape = level.anchor_shapes[a]
        x1, y1, x2, y2 = (float(v) + margin for v in anchors[a])
        colour = RATIO_COLOURS[ratios.index(shape.ratio) % len(RATIO_COLOURS)]
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=width)
        draw.text((x1 + 4, y1 + 2), f"{shape.size:g}", fill=colour, font=font)
    if followed is not None:
        x1, y1, x2, y2 = (float(v) + margin for v in anchors[followed])
        draw.rectangle((x1, y1, x2, y2), outline=theme.OKABE_ITO["black"], width=3 * width + 2)
        draw.rectangle((x1, y1, x2, y2), outline=theme.FOLLOWED, width=3 * width)
    return canvas, margin


def render(ctx: StepContext) -> None:
    trace = ctx.trace
    found = follow.history(ctx)
    follow.preselect("anchors", found, lambda f: {"anchor_level": f.level_name, "anchor_row": f.row,
                                                  "anchor_col": f.col, "anchor_show": "all k"})
    level = level_picker(trace, "anchor_level")
    h, w = level.grid
    sy, sx = level.stride
    k = len(level.anchor_shapes)
    sizes = sorted({s.size for s in level.anchor_shapes})
    ratios = sorted({s.ratio for s in level.anchor_shapes})
    st.markdown(
        f"""
An **anchor** is a fixed reference box. Every cell of every level gets the same **k = {k}** anchors here:
{len(sizes)} sizes ({', '.join(f'{s:g}' for s in sizes)} px) × {len(ratios)} aspect ratios
(height:width {', '.join(f'{r:g}' for r in ratios)}). The RPN never invents a box from nothing: for each
anchor it predicts *how likely an object is there* and *how to move and stretch the anchor* to fit it.

**Paper vs this model.** The Faster R-CNN paper used one stride-16 map and **k = 9** anchors
(128², 256², 512² × 1:2, 1:1, 2:1). This model spreads its anchors over **{len(trace.levels)} levels** with
**{k} per cell**. torchvision centres a cell's anchors on the cell's top-left corner (c·stride, r·stride).
"""
    )
    default_row, default_col = h // 2, w // 2
    st.session_state.setdefault("anchor_row", default_row)
    st.session_state.setdefault("anchor_col", default_col)
    st.session_state["anchor_row"] = min(st.session_state["anchor_row"], h - 1)
    st.session_state["anchor_col"] = min(st.session_state["anchor_col"], w - 1)
    cols = st.columns([1, 1, 2])
    row = cols[0].number_input("Cell row", 0, h - 1, key="anchor_row")
    col = cols[1].number_input("Cell column", 0, w - 1, key="anchor_col")
    show = cols[2].radio("Anchors drawn", ["all k", *[f"ratio {r:g}" for r in ratios]], horizontal=True,
                         key="anchor_show")
    shown = [s.index for s in level.anchor_shapes if show == "all k" or show == f"ratio {s.ratio:g}"]
    row, col = int(row), int(col)
    followed = found.anchor if found is not None and (found.level, found.row, found.col) == (level.index, row, col) else None
    if found is not None:
        where = (f"It is anchor {found.anchor} of this cell, drawn thick in purple: **{found.shape.label}**, "
                 f"{found.shape.width:.0f}×{found.shape.height:.0f} px." if followed is not None else
                 f"It is anchor {found.anchor} (**{found.shape.label}**) of the cell at row {found.row}, column "
                 f"{found.col} on level '{found.level_name}'.")
        st.info(f"**Followed anchor #{found.flat_index}.** {where}")
    picture_key = (ctx.trace_key, "anchors", level.index, row, col, tuple(shown), followed)
    draw = lambda: anchor_picture(ctx, level, row, col, shown, followed)[0]  # noqa: E731
    st.caption("Click the picture to choose a cell. Yellow dots: anchor centres of this level. "
               "Black square: the chosen cell. Colours: "
               + ", ".join(f"ratio {r:g}" for r in ratios) + " (blue, orange, green). Numbers: anchor size in px.")
    click = clickable_picture(picture_key, draw, "anchor_click")
    if click and click.get("unix_time") != st.session_state.get("anchor_click_seen"):
        st.session_state["anchor_click_seen"] = click.get("unix_time")
        picture, margin = anchor_picture(ctx, level, row, col, shown, followed)  # its size and margin, to map the click
        px = click["x"] * picture.width / click["width"] - margin
        py = click["y"] * picture.height / click["height"] - margin
        new_row, new_col = int(min(max(py // sy, 0), h - 1)), int(min(max(px // sx, 0), w - 1))
        if (new_row, new_col) != (row, col):
            st.session_state["anchor_row"], st.session_state["anchor_col"] = new_row, new_col
            st.rerun()
    download_png(draw, f"{ctx.slug('anchors')}-r{row}c{col}")
    st.markdown(f"**The {k} anchors of cell (row {row}, column {col})**, network-input pixels:")
    anchors = level.anchors[int(row), int(col)]
    st.dataframe(
        [
            {"#": s.index, "followed": "◆" if s.index == followed else "", "size (px)": s.size, "height:width": s.ratio, "width": round(s.width, 1),
             "height": round(s.height, 1), "x1": float(anchors[s.index, 0]), "y1": float(anchors[s.index, 1]),
             "x2": float(anchors[s.index, 2]), "y2": float(anchors[s.index, 3])}
            for s in level.anchor_shapes
        ],
        hide_index=True,
    )
    iw, ih = ctx.input_size
    table = [
        {"level": lv.name, "grid (rows×cols)": f"{lv.grid[0]}×{lv.grid[1]}", "stride": f"{lv.stride[1]}",
         "anchors per cell": len(lv.anchor_shapes), "anchors": lv.num_anchors,
         "fully inside the image": int(inside_image(lv.anchors, (iw, ih)).sum())}
        for lv in trace.levels
    ]
    total = sum(lv.num_anchors for lv in trace.levels)
    st.markdown(f"**Anchors on this photo: {total:,}** in total — every one of them gets a score and deltas.")
    st.dataframe(table, hide_index=True)
