"""Showing pictures: every picture cached by what it shows, with a PNG download; matplotlib helpers.

Pictures over a photo are drawn with :mod:`ui.pictures` (PIL, milliseconds); charts (curves,
histograms, bars, point clouds) are native browser charts made by :mod:`ui.charts`; matplotlib stays
for the few figures neither fits (small multiples of heatmaps, the receptive-field plots). A page calls
:func:`show_picture` with a key that says what the picture shows: the drawing runs once per key
for the whole server (``st.cache_data``, bounded), and the PNG for "Download PNG" is only encoded
when someone clicks it.
"""

from __future__ import annotations

import io
from typing import Callable, Hashable, Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import streamlit as st
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from . import theme


def new_figure(image_size: tuple[int, int], max_width: float = 11.0, extra_height: float = 0.0) -> tuple[Figure, Axes]:
    """A figure sized to an image's aspect ratio, readable on a projector."""
    w, h = image_size
    width = max_width
    height = min(max_width * h / max(w, 1), 14.0) + extra_height
    fig, ax = plt.subplots(figsize=(width, height))
    return fig, ax


def show_photo(ax: Axes, image: Image.Image | np.ndarray, title: str | None = None) -> None:
    """The photo, pixel coordinates on the axes (so boxes in pixels land where they should)."""
    ax.imshow(image)
    if title:
        ax.set_title(title)
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels)")


def draw_boxes(
    ax: Axes,
    boxes: Iterable[Sequence[float]],
    color: str | Sequence[str],
    linewidth: float = 2.0,
    linestyle: str = "-",
    alpha: float = 1.0,
    labels: Sequence[str] | None = None,
    label: str | None = None,
) -> None:
    """Rectangles (x1, y1, x2, y2); ``label`` names the set once in the legend, ``labels`` tag each box."""
    colors = [color] * 10**6 if isinstance(color, str) else list(color)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        ax.add_patch(
            Rectangle(
                (x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=colors[i], linewidth=linewidth,
                linestyle=linestyle, alpha=alpha, label=label if i == 0 else None,
            )
        )
        if labels is not None:
            ax.text(
                x1 + 3, y1 + 3, labels[i], color="white", fontsize=11, va="top",
                bbox={"facecolor": colors[i], "alpha": 0.85, "pad": 1.5, "edgecolor": "none"},
            )


def overlay_heatmap(ax: Axes, values: np.ndarray, extent_size: tuple[int, int], vmin: float = 0.0, vmax: float = 1.0,
                    alpha: float = 0.6, cmap: str = theme.HEATMAP, label: str = "objectness probability") -> None:
    """A feature-map-sized array stretched over the photo (each cell covers stride × stride pixels)."""
    w, h = extent_size
    mappable = ax.imshow(values, extent=(0, w, h, 0), cmap=cmap, vmin=vmin, vmax=vmax, alpha=alpha,
                         interpolation="nearest")
    plt.colorbar(mappable, ax=ax, fraction=0.035, pad=0.02, label=label)


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """PNG bytes of a figure (closes it: figures are not kept between reruns)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def show_figure(fig: Figure, name: str, caption: str | None = None) -> bytes:
    """Show a figure as an image with a 'Download PNG' button; returns the PNG bytes."""
    png = figure_png(fig)
    st.image(png, caption=caption, width="stretch")
    st.download_button("Download PNG", png, file_name=f"{name}.png", mime="image/png", key=f"dl-{name}")
    return png


PICTURE_CACHE_ENTRIES = 192  # rendered pictures kept for the whole server (~0.2 MB each as JPEG)
Drawing = Callable[[], "Image.Image | Figure"]


def _png(picture: Image.Image | Figure) -> bytes:
    if isinstance(picture, Figure):
        return figure_png(picture)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


@st.cache_data(max_entries=PICTURE_CACHE_ENTRIES, show_spinner=False)
def _rendered(key: Hashable, _draw: Drawing) -> tuple[bytes, bytes | None]:
    """(bytes to show, PNG bytes or None): a photo picture is shown as JPEG (4:4:4, sharp lines, 10 ms
    to encode) and its PNG made on demand; a matplotlib figure is its PNG (drawn once per key)."""
    picture = _draw()
    if isinstance(picture, Figure):
        png = figure_png(picture)
        return png, png
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=92, subsampling=0)
    return buffer.getvalue(), None


def picture_bytes(key: Hashable, draw: Drawing) -> bytes:
    """The bytes :func:`show_picture` shows for ``key`` (for frames of an animation: no download button)."""
    return _rendered(("picture", key), draw)[0]


def show_picture(key: Hashable, draw: Drawing, name: str, caption: str | None = None) -> None:
    """Show what ``draw()`` returns (a PIL image or a matplotlib figure) with a 'Download PNG' button.

    ``key`` must say everything the picture shows (e.g. ``ctx.key`` plus the page's choices): the
    drawing is cached under it for every session. ``name`` is the download's file name (unique on
    the page).
    """
    shown, png = _rendered(("picture", key), draw)  # the same entry as picture_bytes(key, draw)
    st.image(shown, caption=caption, width="stretch")
    if png is not None:
        st.download_button("Download PNG", png, file_name=f"{name}.png", mime="image/png", key=f"dl-{name}")
    else:
        download_png(draw, name)


class _Encoded:
    """Already-encoded JPEG bytes, handed to ``streamlit_image_coordinates`` as an image it can "save"."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def save(self, buffer: io.BytesIO, **_: object) -> None:
        buffer.write(self.data)


def clickable_picture(key: Hashable, draw: Drawing, widget_key: str, click_and_drag: bool = False) -> dict | None:
    """A picture (cached like :func:`show_picture`) that reports where it was clicked (or dragged).

    The component would otherwise re-encode the picture as an uncompressed PNG on every rerun
    (megabytes per click); it gets the cached JPEG instead. Coordinates come back in displayed pixels
    with the displayed ``width``/``height``, so callers scale by their own picture's size.
    """
    from streamlit_image_coordinates import streamlit_image_coordinates

    return streamlit_image_coordinates(_Encoded(picture_bytes(key, draw)), key=widget_key, width="content",
                                       cursor="crosshair", click_and_drag=click_and_drag, image_format="JPEG")


def download_png(draw: Drawing, name: str, label: str = "Download PNG") -> None:
    """A 'Download PNG' button whose PNG is drawn and encoded only when it is clicked."""
    st.download_button(label, lambda: _png(draw()), file_name=f"{name}.png", mime="image/png", key=f"dl-{name}")


def legend(ax: Axes, **kwargs) -> None:
    """A legend with a readable, semi-opaque frame (only when something is labelled)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(framealpha=0.9, **kwargs)
