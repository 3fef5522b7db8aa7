"""The frame of a finished picture, drawn with PIL as matplotlib draws it, and pictures put together.

:meth:`ui.pictures.Picture.render` surrounds its drawing area with what a matplotlib figure has: a
title line (:func:`text_line`), pixel axes with ticks and their names (:func:`with_axes`), a colour
bar (:func:`colour_bar`) and a legend naming every set drawn (:func:`legend`), in the look of
:mod:`ui.theme` (DejaVu Sans — matplotlib's own font — at the theme's sizes, matplotlib's dash
patterns and tick placement). :func:`stack` and :func:`side_by_side` put finished pictures together
(panels of one figure).

Every size here is for the screen; :func:`zoomed` draws the same picture larger (slides at projector
resolution): fonts, lines, margins and the drawing area all scale by one factor, read with
:func:`px`. The factor is a context variable, so a deck drawn in one thread leaves every other
session's pictures at their screen size.
"""

from __future__ import annotations

import io
import math
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import matplotlib
import numpy as np
from matplotlib.colors import Normalize
from matplotlib.ticker import MaxNLocator
from PIL import Image, ImageColor, ImageDraw, ImageFont

TITLE_PX, LABEL_PX, TICK_PX, LEGEND_PX, TAG_PX = 25, 22, 18, 20, 17  # the theme's 17/15/12/13/11 pt
DASHES = {"-": None, "--": (3.7, 1.6), ":": (1.0, 1.65), "-.": (6.4, 1.6, 1.0, 1.6)}  # matplotlib's, × width
ZOOM: ContextVar[float] = ContextVar("picture_zoom", default=1.0)


@contextmanager
def zoomed(factor: float) -> Iterator[None]:
    """Draw every picture made inside ``factor`` times larger (1 = the screen's size), in this thread only."""
    token = ZOOM.set(factor)
    try:
        yield
    finally:
        ZOOM.reset(token)


def px(size: float) -> int:
    """A screen size in pixels (font, margin, line) at the current zoom."""
    return round(size * ZOOM.get())


def font_path(bold: bool = False) -> Path:
    """DejaVu Sans (matplotlib's default font, the app's) in matplotlib's own data folder."""
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")


@lru_cache(maxsize=32)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans at ``size`` pixels (callers zoom it with :func:`px`)."""
    return ImageFont.truetype(str(font_path(bold)), size)


def jpeg(picture: Image.Image) -> bytes:
    """A finished picture as the app shows it: JPEG quality 92, no chroma subsampling (sharp coloured lines).

    The app's pictures and the slides embed the same bytes, so a slide shows exactly the screen's pixels.
    """
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="JPEG", quality=92, subsampling=0)
    return buffer.getvalue()


def rgb(colour: str | tuple) -> tuple[int, int, int]:
    return ImageColor.getrgb(colour)[:3] if isinstance(colour, str) else tuple(int(c) for c in colour[:3])


def colormap_rgba(values: np.ndarray, cmap: str, vmin: float, vmax: float) -> np.ndarray:
    """uint8 RGBA of a colour map (as matplotlib's ``imshow`` would colour the values)."""
    norm = Normalize(vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1e-12)
    return (matplotlib.colormaps[cmap](norm(np.asarray(values, dtype=np.float64))) * 255).astype(np.uint8)


@dataclass
class LegendEntry:
    """One legend entry: a line (boxes, arrows), a point or a marker in a colour."""

    label: str
    colour: tuple[int, int, int]
    kind: str = "line"
    width: int = 3
    style: str = "-"
    alpha: float = 1.0


@dataclass
class ColourBar:
    """A colour bar: the colour map, its value range and what the values are."""

    cmap: str
    vmin: float
    vmax: float
    label: str


def dashed_line(draw: ImageDraw.ImageDraw, a: tuple, b: tuple, colour: tuple, width: int, style: str) -> None:
    """A line from a to b (screen pixels) in a matplotlib dash ``style`` (a key of :data:`DASHES`)."""
    pattern = [max(1.0, v * width) for v in DASHES[style]]
    length = math.hypot(b[0] - a[0], b[1] - a[1])
    if length < 1e-6:
        return
    ux, uy = (b[0] - a[0]) / length, (b[1] - a[1]) / length
    at, i = 0.0, 0
    while at < length:
        step = pattern[i % len(pattern)]
        if i % 2 == 0:
            end = min(at + step, length)
            draw.line((a[0] + ux * at, a[1] + uy * at, a[0] + ux * end, a[1] + uy * end), fill=colour, width=width)
        at += step
        i += 1


def text_line(text: str, size: int, width: int) -> Image.Image:
    """One centred line of text (a title) on white, at least ``width`` pixels wide."""
    f = font(size)
    left, top, right, bottom = f.getbbox(text)
    line = Image.new("RGB", (max(width, right - left + px(8)), bottom + px(8)), "white")
    ImageDraw.Draw(line).text(((line.width - (right - left)) / 2, px(4)), text, fill="black", font=f)
    return line


def _ticks(low: float, high: float) -> list[float]:
    return [t for t in MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high) if low <= t <= high]


def with_axes(body: Image.Image, view: tuple, scale: float) -> Image.Image:
    """Tick labels in photo pixels on the left and bottom, and the axis names, as matplotlib draws them."""
    x0, y0, x1, y1 = view
    tick_px, label_px = px(TICK_PX), px(LABEL_PX)
    f, lf = font(tick_px), font(label_px)
    yt = _ticks(y0, y1)
    label_w = max((f.getbbox(f"{t:g}")[2] for t in yt), default=0)
    left = label_w + px(14) + label_px + px(8)
    top = tick_px // 2 + px(4)  # room for the half of the top tick label that sticks out
    right = int(max((f.getlength(f"{t:g}") for t in _ticks(x0, x1)), default=0) / 2) + px(4)
    bottom = tick_px + px(14) + label_px + px(8)
    out = Image.new("RGB", (body.width + left + right, body.height + top + bottom), "white")
    out.paste(body, (left, top))
    draw = ImageDraw.Draw(out)
    line = px(1)
    draw.rectangle((left - line, top - line, left + body.width + line - 1, top + body.height + line - 1), outline="black",
                   width=line)
    base = top + body.height
    for t in _ticks(x0, x1):
        x = left + (t - x0) * scale
        draw.line((x, base, x, base + px(6)), fill="black", width=line)
        text = f"{t:g}"
        draw.text((x - f.getlength(text) / 2, base + px(8)), text, fill="black", font=f)
    for t in yt:
        y = top + (t - y0) * scale
        draw.line((left - px(7), y, left - line, y), fill="black", width=line)
        text = f"{t:g}"
        draw.text((left - px(9) - f.getlength(text), y - tick_px / 2 - px(2)), text, fill="black", font=f)
    xlabel = "x (pixels)"
    draw.text((left + (body.width - lf.getlength(xlabel)) / 2, base + px(11) + tick_px), xlabel, fill="black", font=lf)
    ylabel = _rotated_text("y (pixels)", lf)
    out.paste(ylabel, (px(2), max(0, round(top + body.height / 2 - ylabel.height / 2))))
    return out


def _rotated_text(text: str, f: ImageFont.FreeTypeFont) -> Image.Image:
    left, top, right, bottom = f.getbbox(text)
    line = Image.new("RGB", (right + px(4), bottom + px(4)), "white")
    ImageDraw.Draw(line).text((px(2), px(2)), text, fill="black", font=f)
    return line.rotate(90, expand=True, fillcolor="white")


def colour_bar(bar: ColourBar, height: int) -> Image.Image:
    """A vertical colour bar with ticks and its label, as tall as the drawing area."""
    tick_px, line = px(TICK_PX), px(1)
    f = font(tick_px)
    x0, strip_w, length = px(12), px(24), max(px(40), height - 2 * line)
    ramp = np.linspace(bar.vmax, bar.vmin, length)[:, None].repeat(strip_w, axis=1)
    colours = Image.fromarray(colormap_rgba(ramp, bar.cmap, bar.vmin, bar.vmax)[..., :3])
    ticks = _ticks(bar.vmin, bar.vmax)
    texts = [f"{t:.3g}" for t in ticks]
    label = _rotated_text(bar.label, font(px(LABEL_PX)))
    text_w = max((f.getlength(t) for t in texts), default=0)
    out = Image.new("RGB", (x0 + strip_w + px(8) + int(text_w) + px(8) + label.width, height), "white")
    out.paste(colours, (x0, line))
    draw = ImageDraw.Draw(out)
    draw.rectangle((x0 - line, 0, x0 + strip_w + line - 1, length + 2 * line - 1), outline="black", width=line)
    span = bar.vmax - bar.vmin if bar.vmax > bar.vmin else 1.0
    for t, text in zip(ticks, texts):
        y = line + (bar.vmax - t) / span * (length - 1)
        draw.line((x0 + strip_w, y, x0 + strip_w + px(5), y), fill="black", width=line)
        draw.text((x0 + strip_w + px(8), min(max(0, y - tick_px / 2 - px(2)), height - tick_px - px(4))), text,
                  fill="black", font=f)
    out.paste(label, (out.width - label.width, max(0, round(height / 2 - label.height / 2))))
    return out


def legend(entries: list[LegendEntry], width: int) -> Image.Image:
    """The legend under the picture: a swatch and a label per entry, wrapped into rows, framed."""
    legend_px = px(LEGEND_PX)
    f = font(legend_px)
    swatch, gap, row_h, margin = px(40), px(26), legend_px + px(14), px(12)
    items, x, rows = [], margin, 0
    for entry in entries:
        w = swatch + px(8) + f.getlength(entry.label)
        if x + w > width - margin and x > margin:
            x, rows = margin, rows + 1
        items.append((x, rows, entry))
        x += w + gap
    out = Image.new("RGB", (width, (rows + 1) * row_h + margin), "white")
    draw = ImageDraw.Draw(out)
    draw.rectangle((px(2), 0, width - px(3), out.height - 1), outline=(200, 200, 200), width=px(1))
    for x, row, entry in items:
        y = px(6) + row * row_h + row_h / 2
        colour = tuple(round(255 - (255 - c) * entry.alpha) for c in entry.colour)  # alpha on white
        mid = x + swatch / 2
        if entry.kind == "point":
            r = max(px(3), entry.width // 2 + px(2))
            draw.ellipse((mid - r, y - r, mid + r, y + r), fill=colour, outline="black", width=px(1))
        elif entry.kind == "marker":
            draw.line((mid - px(10), y, mid + px(10), y), fill="black", width=px(6))
            draw.line((mid, y - px(10), mid, y + px(10)), fill="black", width=px(6))
            draw.line((mid - px(9), y, mid + px(9), y), fill=colour, width=px(4))
            draw.line((mid, y - px(9), mid, y + px(9)), fill=colour, width=px(4))
        elif DASHES.get(entry.style) is None:
            draw.line((x, y, x + swatch, y), fill=colour, width=max(entry.width, px(2)))
        else:
            dashed_line(draw, (x, y), (x + swatch, y), colour, max(entry.width, px(2)), entry.style)
        draw.text((x + swatch + px(8), y - legend_px / 2 - px(3)), entry.label, fill="black", font=f)
    return out


def beside(left: Image.Image, right: Image.Image, top: int = 0) -> Image.Image:
    """``right`` next to ``left``, ``top`` pixels down (a colour bar beside its drawing area)."""
    out = Image.new("RGB", (left.width + right.width, max(left.height, right.height + top)), "white")
    out.paste(left, (0, 0))
    out.paste(right, (left.width, top))
    return out


def stack(parts: list[Image.Image], gap: int = 0) -> Image.Image:
    """Pictures one under the other, centred, on white."""
    width = max(p.width for p in parts)
    out = Image.new("RGB", (width, sum(p.height for p in parts) + gap * (len(parts) - 1)), "white")
    y = 0
    for part in parts:
        out.paste(part, ((width - part.width) // 2, y))
        y += part.height + gap
    return out


def side_by_side(parts: list[Image.Image], gap: int = 24) -> Image.Image:
    """Pictures next to each other (panels of one figure), top-aligned, on white."""
    out = Image.new("RGB", (sum(p.width for p in parts) + gap * (len(parts) - 1), max(p.height for p in parts)),
                    "white")
    x = 0
    for part in parts:
        out.paste(part, (x, 0))
        x += part.width + gap
    return out
