"""Drawing helpers shared by the steps: photo axes, boxes, heatmaps, and PNG download of every figure."""

from __future__ import annotations

import io
from typing import Iterable, Sequence

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


def legend(ax: Axes, **kwargs) -> None:
    """A legend with a readable, semi-opaque frame (only when something is labelled)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(framealpha=0.9, **kwargs)
