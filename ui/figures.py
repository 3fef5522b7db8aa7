"""Showing pictures: every picture cached by what it shows, with a PNG download.

Pictures over a photo are drawn with :mod:`ui.pictures` (PIL, milliseconds); charts (curves,
histograms, bars, point clouds) are native browser charts made by :mod:`ui.charts`. A page calls
:func:`show_picture` with a key that says what the picture shows: the drawing runs once per key
for the whole server (``st.cache_data``, bounded), and the PNG for "Download PNG" is only encoded
when someone clicks it.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Callable, Hashable

import streamlit as st
import streamlit.components.v1 as components
from PIL import Image

PICTURE_CACHE_ENTRIES = 128  # rendered pictures kept for the whole server (~0.2 MB each as JPEG)
PICTURE_CACHE_SIZE = "32MB"  # and at most this many bytes of them (Streamlit counts the stored bytes)
Drawing = Callable[[], Image.Image]


def _png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


@st.cache_data(max_entries=PICTURE_CACHE_ENTRIES, max_size=PICTURE_CACHE_SIZE, show_spinner=False)
def _rendered(key: Hashable, _draw: Drawing) -> bytes:
    """The picture as JPEG (4:4:4: sharp lines; 10 ms to encode), drawn once per key; its PNG is made
    only when someone downloads it."""
    buffer = io.BytesIO()
    _draw().save(buffer, format="JPEG", quality=92, subsampling=0)
    return buffer.getvalue()


def picture_bytes(key: Hashable, draw: Drawing) -> bytes:
    """The bytes :func:`show_picture` shows for ``key`` (for frames of an animation: no download button)."""
    return _rendered(("picture", key), draw)


def show_picture(key: Hashable, draw: Drawing, name: str, caption: str | None = None) -> None:
    """Show the PIL image ``draw()`` returns, with a 'Download PNG' button.

    ``key`` must say everything the picture shows (e.g. ``ctx.key`` plus the page's choices): the
    drawing is cached under it for every session. ``name`` is the download's file name (unique on
    the page).
    """
    st.image(picture_bytes(key, draw), caption=caption, width="stretch")
    download_png(draw, name)


_IMAGE_COORDINATES = components.declare_component(
    "image_coordinates", path=str(Path(__file__).resolve().parent / "image_coordinates"))


def clickable_picture(key: Hashable, draw: Drawing, widget_key: str, click_and_drag: bool = False) -> dict | None:
    """A picture (cached like :func:`show_picture`) that reports where it was clicked (or dragged).

    The frontend is streamlit-image-coordinates' (``ui/image_coordinates/``, MIT, with a start-up race
    fixed); it gets the cached JPEG, not a re-encoded PNG (megabytes per click). Coordinates come back
    in displayed pixels with the displayed ``width``/``height``, so callers scale by their own
    picture's size.
    """
    src = "data:image/jpeg;base64," + base64.b64encode(picture_bytes(key, draw)).decode("ascii")
    return _IMAGE_COORDINATES(src=src, height=None, width="content", use_column_width=None, key=widget_key,
                              click_and_drag=click_and_drag, cursor="crosshair", default=None)


def download_png(draw: Drawing, name: str, label: str = "Download PNG") -> None:
    """A 'Download PNG' button whose PNG is drawn and encoded only when it is clicked; the click does
    not rerun the page (nothing on it changes)."""
    st.download_button(label, lambda: _png(draw()), file_name=f"{name}.png", mime="image/png", key=f"dl-{name}",
                       on_click="ignore")

