"""Pictures over a photo, drawn with PIL and numpy in milliseconds (matplotlib took ~0.5 s per figure).

One kind of picture, one helper: a :class:`Picture` is a photo (or a blank area) in its own pixel
coordinates with, on top, any of: boxes (:meth:`Picture.boxes`), a heatmap (:meth:`Picture.heatmap`),
a grid (:meth:`Picture.grid`), points, arrows and markers. :meth:`Picture.render` adds what a
matplotlib figure had: the title, pixel axes, a colour bar and a legend naming every set drawn, in
the look of :mod:`ui.theme` (Okabe–Ito colours, DejaVu Sans — matplotlib's own font — and the same
line styles) — that frame is :mod:`ui.picture_frame`. ``ui.figures.show_picture`` shows it, cached by
what it shows, with a PNG download.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from . import theme
from .picture_frame import (
    DASHES,
    TAG_PX,
    TICK_PX,
    TITLE_PX,
    ColourBar,
    LegendEntry,
    beside,
    colormap_rgba,
    colour_bar,
    dashed_line,
    ZOOM,
    font,
    legend,
    px,
    rgb,
    stack,
    text_line,
    with_axes,
)

WIDTH = 900  # at most this many pixels across the drawing area (a matplotlib figure of ~8 inches at 110 dpi)
HEIGHT = 900  # and at most this many down (tall photos are scaled to fit)
PX_PER_POINT = 1.5  # matplotlib line widths are in points; at that size one point is ~1.5 pixels
BLANK = (235, 235, 235)  # the background of an empty area (the paper's example image)

Box = Sequence[float]


def scalar_colours(values: Iterable[float], cmap: str, vmin: float, vmax: float) -> list[tuple[int, int, int]]:
    """One colour per value (e.g. boxes coloured by their score)."""
    return [tuple(int(c) for c in px[:3]) for px in colormap_rgba(np.asarray(list(values)), cmap, vmin, vmax)]


class Picture:
    """A photo in its own pixel coordinates, with overlays; :meth:`render` gives the finished image.

    ``view`` = (x0, y0, x1, y1) is the region shown, in the photo's pixels (it may reach beyond the
    photo, e.g. for anchors that cross the border: the outside is white). ``width`` is the drawing
    area's width in screen pixels (times the zoom of ``ui.picture_frame.zoomed``); everything is
    scaled from photo pixels to it.
    """

    def __init__(self, photo: Image.Image | np.ndarray | None, view: Box | None = None, width: int = WIDTH,
                 size: tuple[int, int] | None = None, background: tuple[int, int, int] = BLANK,
                 height: int = HEIGHT) -> None:
        if isinstance(photo, np.ndarray):
            photo = Image.fromarray(photo)
        w, h = photo.size if photo is not None else size
        self.size = (w, h)
        x0, y0, x1, y1 = view if view is not None else (0, 0, w, h)
        self.view = (float(x0), float(y0), float(x1), float(y1))
        self.zoom = ZOOM.get()
        self.scale = min(width * self.zoom / max(x1 - x0, 1e-6), height * self.zoom / max(y1 - y0, 1e-6))
        size_px = (max(1, round((x1 - x0) * self.scale)), max(1, round((y1 - y0) * self.scale)))
        self.canvas = Image.new("RGBA", size_px, (255, 255, 255, 255))
        px0, py0, px1, py1 = self._px((0, 0, w, h))
        area = (round(px1 - px0), round(py1 - py0))
        if photo is not None:
            self.canvas.paste(photo.convert("RGB").resize(area, Image.BILINEAR, reducing_gap=2.0),
                              (round(px0), round(py0)))
        else:
            self.canvas.paste(Image.new("RGB", area, background), (round(px0), round(py0)))
        self.draw = ImageDraw.Draw(self.canvas)
        self.legend: list[LegendEntry] = []
        self.bar: ColourBar | None = None

    # --- coordinates -----------------------------------------------------------------------------

    def _px(self, box: Box) -> tuple[float, float, float, float]:
        x0, y0 = self.view[0], self.view[1]
        s = self.scale
        return ((box[0] - x0) * s, (box[1] - y0) * s, (box[2] - x0) * s, (box[3] - y0) * s)

    def _point(self, x: float, y: float) -> tuple[float, float]:
        return ((x - self.view[0]) * self.scale, (y - self.view[1]) * self.scale)

    def _width(self, linewidth: float) -> int:
        return max(1, round(linewidth * PX_PER_POINT * self.zoom))

    def _layer(self, alpha: float) -> tuple[Image.Image | None, ImageDraw.ImageDraw]:
        """Draw straight on the canvas when opaque, else on a transparent layer merged by :meth:`_merge`."""
        if alpha >= 1.0:
            return None, self.draw
        layer = Image.new("RGBA", self.canvas.size, (0, 0, 0, 0))
        return layer, ImageDraw.Draw(layer)

    def _merge(self, layer: Image.Image | None, alpha: float, force: bool = False) -> None:
        if layer is None:
            return
        if not force:
            layer.putalpha(layer.getchannel("A").point(lambda a: round(a * alpha)))
        self.canvas.alpha_composite(layer)

    # --- overlays ----------------------------------------------------------------------------------

    def boxes(self, boxes: Iterable[Box], colour: str | Sequence, linewidth: float = 2.0, style: str = "-",
              alpha: float = 1.0, label: str | None = None, tags: Sequence[str] | None = None,
              halo: str | None = None) -> "Picture":
        """Rectangles (x1, y1, x2, y2) in photo pixels; ``label`` names the set in the legend, ``tags`` each box.

        ``colour`` is one colour or one per box; ``style`` '-', '--', ':' as matplotlib; ``halo`` draws a
        wider line of that colour underneath (visible on any background).
        """
        rows = [list(map(float, b)) for b in boxes]
        colours = [rgb(colour)] * len(rows) if isinstance(colour, str) else [rgb(c) for c in colour]
        width = self._width(linewidth)
        layer, draw = self._layer(alpha)
        for i, row in enumerate(rows):
            x1, y1, x2, y2 = self._px(row)
            if halo is not None:
                self._rect(draw, (x1, y1, x2, y2), rgb(halo), width + 3, "-")
            self._rect(draw, (x1, y1, x2, y2), colours[i], width, style)
        self._merge(layer, alpha)
        if tags is not None:
            self._tags([(self._px(row)[0] + px(3), self._px(row)[1] + px(3), tags[i], colours[i])
                        for i, row in enumerate(rows)])
        if label and rows:
            self.legend.append(LegendEntry(label, colours[0], "line", width, style, alpha))
        return self

    def _rect(self, draw: ImageDraw.ImageDraw, box: Box, colour: tuple, width: int, style: str) -> None:
        x1, y1, x2, y2 = box
        if DASHES.get(style) is None:
            h = width / 2  # matplotlib centres the line on the edge; PIL draws it inside
            draw.rectangle((x1 - h, y1 - h, max(x2 + h, x1 - h + 1), max(y2 + h, y1 - h + 1)), outline=colour,
                           width=width)
            return
        for a, b in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))):
            dashed_line(draw, a, b, colour, width, style)

    def _tags(self, tags: list[tuple[float, float, str, tuple]]) -> None:
        """White text on a box of the set's colour (85 % opaque) at each (x, y) screen pixel."""
        if not tags:
            return
        f, pad = font(px(TAG_PX)), px(2)
        layer = Image.new("RGBA", self.canvas.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        for x, y, text, colour in tags:
            left, top, right, bottom = draw.textbbox((x + pad, y + px(1)), text, font=f)
            draw.rectangle((left - pad, top - pad, right + pad, bottom + pad), fill=(*colour, 217))
        self._merge(layer, 1.0, force=True)
        for x, y, text, _ in tags:
            self.draw.text((x + pad, y + px(1)), text, fill="white", font=f)

    def heatmap(self, values: np.ndarray, extent: tuple[int, int], vmin: float = 0.0, vmax: float = 1.0,
                alpha: float | np.ndarray = 0.6, cmap: str = theme.HEATMAP, label: str = "objectness probability",
                smooth: bool = False, colour_bar: bool = True) -> "Picture":
        """A grid of values stretched over (0, 0)–extent of the photo (each cell covers stride × stride pixels).

        ``alpha`` is one opacity or one per value (then it has ``values``' shape); a colour bar with
        ``label`` is added unless ``colour_bar`` is False (panels sharing one scale show it once).
        ``smooth`` interpolates (for pixel-level maps); cells stay square otherwise.
        """
        colours = colormap_rgba(values, cmap, vmin, vmax)
        opacity = np.broadcast_to(np.asarray(alpha, dtype=np.float64), values.shape)
        colours[..., 3] = np.clip(opacity * 255, 0, 255).astype(np.uint8)
        x1, y1, x2, y2 = self._px((0, 0, extent[0], extent[1]))
        size = (max(1, round(x2 - x1)), max(1, round(y2 - y1)))
        layer = Image.fromarray(colours, "RGBA").resize(size, Image.BILINEAR if smooth else Image.NEAREST)
        full = Image.new("RGBA", self.canvas.size, (0, 0, 0, 0))
        full.paste(layer, (round(x1), round(y1)))
        self.canvas.alpha_composite(full)
        if colour_bar:
            self.bar = ColourBar(cmap, vmin, vmax, label)
        return self

    def colour_bar(self, cmap: str, vmin: float, vmax: float, label: str) -> "Picture":
        """A colour bar without a heatmap (e.g. for boxes coloured by score)."""
        self.bar = ColourBar(cmap, vmin, vmax, label)
        return self

    def grid(self, step: tuple[float, float], count: tuple[int, int], colour: str = theme.OKABE_ITO["yellow"],
             linewidth: float = 0.8, alpha: float = 0.8) -> "Picture":
        """Cell borders: ``count`` = (columns, rows) cells of ``step`` = (sx, sy) pixels from the origin."""
        (sx, sy), (cols, rows) = step, count
        w, h = self.size
        layer, draw = self._layer(alpha)
        width = self._width(linewidth)
        for c in range(cols + 1):
            x, _ = self._point(c * sx, 0)
            draw.line((x, self._point(0, 0)[1], x, self._point(0, h)[1]), fill=rgb(colour), width=width)
        for r in range(rows + 1):
            _, y = self._point(0, r * sy)
            draw.line((self._point(0, 0)[0], y, self._point(w, 0)[0], y), fill=rgb(colour), width=width)
        self._merge(layer, alpha)
        return self

    def points(self, xy: np.ndarray, colour: str, radius: float = 3.0, label: str | None = None,
               edge: str | None = None) -> "Picture":
        """Dots at (x, y) photo pixels (N × 2)."""
        fill, outline = rgb(colour), rgb(edge) if edge else None
        r = radius * self.zoom
        for x, y in np.asarray(xy, dtype=np.float64).reshape(-1, 2):
            cx, cy = self._point(x, y)
            self.draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill, outline=outline, width=px(1))
        if label:
            self.legend.append(LegendEntry(label, fill, "point", max(px(4), round(2 * r))))
        return self

    def arrows(self, starts: np.ndarray, ends: np.ndarray, colour: str = theme.OKABE_ITO["black"],
               linewidth: float = 1.5, head: float = 12.0) -> "Picture":
        """Arrows from each start (x, y) to its end, with a filled head (photo pixels)."""
        fill, width = rgb(colour), self._width(linewidth)
        for (sx, sy), (ex, ey) in zip(np.asarray(starts).reshape(-1, 2), np.asarray(ends).reshape(-1, 2)):
            (ax, ay), (bx, by) = self._point(sx, sy), self._point(ex, ey)
            length = math.hypot(bx - ax, by - ay)
            if length < 1:
                continue
            ux, uy = (bx - ax) / length, (by - ay) / length
            size = min(head * self.zoom, 0.6 * length)
            cx, cy = bx - ux * size, by - uy * size
            self.draw.line((ax, ay, cx, cy), fill=fill, width=width)
            self.draw.polygon([(bx, by), (cx - uy * size * 0.4, cy + ux * size * 0.4),
                               (cx + uy * size * 0.4, cy - ux * size * 0.4)], fill=fill)
        return self

    def marker(self, x: float, y: float, colour: str = theme.OKABE_ITO["black"], size: float = 12,
               label: str | None = None) -> "Picture":
        """A '+' at (x, y) photo pixels."""
        cx, cy = self._point(x, y)
        fill, size = rgb(colour), size * self.zoom
        self.draw.line((cx - size, cy, cx + size, cy), fill=fill, width=px(4))
        self.draw.line((cx, cy - size, cx, cy + size), fill=fill, width=px(4))
        if label:
            self.legend.append(LegendEntry(label, fill, "marker"))
        return self

    def legend_entry(self, label: str, colour: str, linewidth: float = 2.0, style: str = "-") -> "Picture":
        """A legend line for something drawn without a label (e.g. one entry per colour)."""
        self.legend.append(LegendEntry(label, rgb(colour), "line", self._width(linewidth), style))
        return self

    # --- the finished picture ----------------------------------------------------------------------

    def render(self, title: str | None = None, axes: bool = True) -> Image.Image:
        """The picture with its title, pixel axes (``axes``), colour bar and legend."""
        body = self.canvas.convert("RGB")
        if axes:
            body = with_axes(body, self.view, self.scale)
        if self.bar is not None:
            body = beside(body, colour_bar(self.bar, self.canvas.height), top=px(TICK_PX) // 2 + px(4) if axes else 0)
        parts = []
        if title:
            parts.append(text_line(title, px(TITLE_PX), body.width))
        parts.append(body)
        if self.legend:
            parts.append(legend(self.legend, body.width))
        return stack(parts, gap=px(6))
