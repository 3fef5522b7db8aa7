"""The followed proposal: one flat anchor index, kept in the URL (``?follow=``) and shown on every step.

Pages call :func:`history` for what to highlight (``None`` when nothing is followed), :func:`preselect`
to point their own widgets at it once, :func:`mark` to draw it on a :class:`~ui.pictures.Picture`, and
:func:`picker` to let a click (smallest box under it) or a row of a ranked table choose it. The app
draws :func:`strip` — the "life of this proposal" — above each pipeline step (its words are
:func:`ui.words.stage_items` and :func:`ui.words.verdict`; the drawing is :mod:`ui.marks`). Every
number comes from :func:`rpn_viz.lab.follow.follow`.
"""

from __future__ import annotations

import io
from typing import Callable, Hashable

import streamlit as st
import torch
from PIL import Image

from rpn_viz.lab.follow import History, box_at, follow

from .context import StepContext
from .figures import clickable_picture, download_png, picture_bytes
from .marks import COLOUR, cell_box, mark, mark_cell, working_box  # noqa: F401  (pages draw with follow.mark etc.)
from .pictures import Picture
from .words import stage_items, verdict

KEY = "follow"  # st.session_state and URL key: the followed flat anchor index
OWNER = "_follow_for"  # (model key, photo sha256) the index belongs to: another model's index means nothing


def start(model_key: str, photo_sha: str | None, num_anchors: int) -> int | None:
    """Read ``?follow=`` on a session's first run; forget the index when the model or photo changes.

    Returns the followed flat anchor index (or None) and writes it back to the URL.
    """
    owner = (model_key, photo_sha)
    if KEY not in st.session_state:
        value = st.query_params.get(KEY)
        st.session_state[KEY] = int(value) if value is not None and value.isdigit() else None
        st.session_state[OWNER] = owner
    if OWNER not in st.session_state:  # an index set before the first run belongs to what is shown now
        st.session_state[OWNER] = owner
    if st.session_state.get(OWNER) != owner:
        st.session_state[KEY] = None
        st.session_state[OWNER] = owner
    index = st.session_state[KEY]
    if index is not None and not 0 <= index < num_anchors:
        index = st.session_state[KEY] = None
    if index is None:
        st.query_params.pop(KEY, None)
    else:
        st.query_params[KEY] = str(index)
    return index


def set_followed(index: int | None) -> None:
    st.session_state[KEY] = index


def history(ctx: StepContext) -> History | None:
    """The followed anchor's history under the sidebar's settings (computed once per rerun)."""
    index = st.session_state.get(KEY)
    if index is None or st.session_state.get(OWNER, (None,))[0] != ctx.choice.key:
        return None
    if ("follow", index) not in ctx._cache:
        ctx._cache[("follow", index)] = follow(ctx.trace, ctx.result, index)
    return ctx._cache[("follow", index)]


def preselect(page: str, found: History | None, values: Callable[[History], dict]) -> None:
    """Point a page's widgets at the followed anchor, once per followed index (the user may then move them).

    Call before the page creates those widgets; ``values(found)`` gives {widget key: value}.
    """
    if found is None:
        return
    marker = f"_follow_preselected_{page}"
    if st.session_state.get(marker) != found.flat_index:
        st.session_state.update(values(found))
        st.session_state[marker] = found.flat_index


# --- the life strip ---------------------------------------------------------------------------------

def _go(step_key: str) -> None:
    chosen = st.session_state.get("follow_strip")
    if chosen:
        st.session_state["step"] = chosen


def strip(ctx: StepContext, step_key: str, pipeline: list[str]) -> None:
    """"Life of this proposal": one item per step, each a link to that step; the current step is selected."""
    h = history(ctx)
    if h is None:
        return
    items = stage_items(h, ctx)
    with st.container(border=True, key="follow_life"):
        head, stop = st.columns([4, 1])
        head.markdown(f"**Life of anchor #{h.flat_index}** (followed, drawn in purple): {verdict(h, ctx)}")
        stop.button("Stop following", key="follow_stop", on_click=set_followed, args=(None,))
        options = [key for key in pipeline if key in items]
        st.session_state["follow_strip"] = step_key if step_key in options else None
        st.pills("Life of this proposal", options, format_func=lambda k: items[k], key="follow_strip",
                 on_change=_go, label_visibility="collapsed")


# --- choosing a box -----------------------------------------------------------------------------------

def _encoded_size(key: Hashable, draw: Callable[[], Image.Image]) -> tuple[int, int]:
    return Image.open(io.BytesIO(picture_bytes(key, draw))).size


def picker(key: Hashable, draw: Callable[[], Image.Image], geometry: Callable[[], Picture], boxes_working: torch.Tensor,
           flat: list[int], widget_key: str, name: str) -> None:
    """A clickable picture: the smallest of ``boxes_working`` (``trace.image`` pixels) under a click is followed.

    ``geometry()`` gives a picture of the same photo and view (made only on a click, for its scale);
    ``draw`` must render with no title and no axes, so a click maps straight to photo pixels.
    ``flat[i]`` is box i's anchor index.
    """
    click = clickable_picture(key, draw, widget_key)
    download_png(draw, name)
    if not click or click.get("unix_time") == st.session_state.get(f"{widget_key}_seen"):
        return
    st.session_state[f"{widget_key}_seen"] = click.get("unix_time")
    width, _ = _encoded_size(key, draw)
    picture = geometry()
    zoom = width / click["width"] / picture.scale  # displayed pixels → photo pixels
    x, y = click["x"] * zoom + picture.view[0], click["y"] * zoom + picture.view[1]
    chosen = box_at(boxes_working, x, y)
    if chosen is not None and flat[chosen] != st.session_state.get(KEY):
        set_followed(flat[chosen])
        st.rerun()


def table(rows: list[dict], flat: list[int], widget_key: str) -> None:
    """A ranked table; selecting a row follows that row's anchor."""
    event = st.dataframe(rows, hide_index=True, on_select="rerun", selection_mode="single-row", key=widget_key,
                         height=240)
    chosen = tuple(event.selection.rows) if event is not None else ()
    if chosen and chosen != st.session_state.get(f"{widget_key}_seen"):
        st.session_state[f"{widget_key}_seen"] = chosen
        if flat[chosen[0]] != st.session_state.get(KEY):
            set_followed(flat[chosen[0]])
            st.rerun()


def row(ctx: StepContext, pos: int, rank: int) -> dict:
    """One table row for candidate ``pos``: rank, objectness, level, cell, anchor shape and index."""
    r = ctx.result
    flat = int(r.anchor_index[pos])
    level, row_, col, a = ctx.trace.locate(flat)
    return {"rank": rank, "objectness": round(float(r.prob[pos]), 4), "level": level.name,
            "cell (row, col)": f"{row_}, {col}", "anchor": level.anchor_shapes[a].label, "anchor #": flat}
