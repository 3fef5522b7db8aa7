"""The frame of a finished picture, drawn with PIL as matplotlib draws it, and pictures put together.

:meth:`ui.pictures.Picture.render` surrounds its drawing area with what a matplotlib figure has: a
title line (:func:`text_line`), pixel axes with ticks and their names (:func:`with_axes`), a colour
bar (:func:`colour_bar`) and a legend naming every set drawn (:func:`legend`), in the look of
:mod:`ui.theme` (DejaVu Sans — matplotlib's own font — at the theme's sizes, matplotlib's dash
patterns and tick placement). :func:`stack` and :func:`side_by_side` put finished pictures together
(panels of one figure).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.colors import Normalize
from matplotlib.ticker import MaxNLocator
from PIL import Image, ImageColor, ImageDraw, ImageFont

TITLE_PX, LABEL_PX, TICK_PX, LEGEND_PX, TAG_PX = 25, 22, 18, 20, 17  # the theme's 17/15/12/13/11 pt
DASHES = {"-": None, "--": (3.7, 1.6), ":": (1.0, 1.65), "-.": (6.4, 1.6, 1.0, 1.6)}  # matplotlib's, × width


@lru_cache(maxsize=16)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans, matplotlib's default font, from matplotlib's own data folder."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), size)


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
    line = Image.new("RGB", (max(width, right - left + 8), bottom + 8), "white")
    ImageDraw.Draw(line).text(((line.width - (right - left)) / 2, 4), text, fill="black", font=f)
    return line


def _ticks(low: float, high: float) -> list[float]:
    return [t for t in MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high) if low <= t <= high]


def with_axes(body: Image.Image, view: tuple, scale: float) -> Image.Image:
    """Tick labels in photo pixels on the left and bottom, and the axis names, as matplotlib draws them."""
    x0, y0, x1, y1 = view
    f, lf = font(TICK_PX), font(LABEL_PX)
    yt = _ticks(y0, y1)
    label_w = max((f.getbbox(f"{t:g}")[2] for t in yt), default=0)
    left = label_w + 14 + LABEL_PX + 8
    top = TICK_PX // 2 + 4  # room for the half of the top tick label that sticks out
    right = int(max((f.getlength(f"{t:g}") for t in _ticks(x0, x1)), default=0) / 2) + 4
    bottom = TICK_PX + 14 + LABEL_PX + 8
    out = Image.new("RGB", (body.width + left + right, body.height + top + bottom), "white")
    out.paste(body, (left, top))
    draw = ImageDraw.Draw(out)
    draw.rectangle((left - 1, top - 1, left + body.width, top + body.height), outline="black", width=1)
    base = top + body.height
    for t in _ticks(x0, x1):
        x = left + (t - x0) * scale
        draw.line((x, base, x, base + 6), fill="black", width=1)
        text = f"{t:g}"
        draw.text((x - f.getlength(text) / 2, base + 8), text, fill="black", font=f)
    for t in yt:
        y = top + (t - y0) * scale
        draw.line((left - 7, y, left - 1, y), fill="black", width=1)
        text = f"{t:g}"
        draw.text((left - 9 - f.getlength(text), y - TICK_PX / 2 - 2), text, fill="black", font=f)
    xlabel = "x (pixels)"
    draw.text((left + (body.width - lf.getlength(xlabel)) / 2, base + 11 + TICK_PX), xlabel, fill="black", font=lf)
    ylabel = _rotated_text("y (pixels)", lf)
    out.paste(ylabel, (2, max(0, round(top + body.height / 2 - ylabel.height / 2))))
    return out


def _rotated_text(text: str, f: ImageFont.FreeTypeFont) -> Image.Image:
    left, top, right, bottom = f.getbbox(text)
    line = Image.new("RGB", (right + 4, bottom + 4), "white")
    ImageDraw.Draw(line).text((2, 2), text, fill="black", font=f)
    return line.rotate(90, expand=True, fillcolor="white")


def colour_bar(bar: ColourBar, height: int) -> Image.Image:
    """A vertical colour bar with ticks and its label, as tall as the drawing area."""
    f = font(TICK_PX)
    strip_w, length = 24, max(40, height - 2)
    ramp = np.linspace(bar.vmax, bar.vmin, length)[:, None].repeat(strip_w, axis=1)
    colours = Image.fromarray(colormap_rgba(ramp, bar.cmap, bar.vmin, bar.vmax)[..., :3])
    ticks = _ticks(bar.vmin, bar.vmax)
    texts = [f"{t:.3g}" for t in ticks]
    label = _rotated_text(bar.label, font(LABEL_PX))
    text_w = max((f.getlength(t) for t in texts), default=0)
    out = Image.new("RGB", (12 + strip_w + 8 + int(text_w) + 8 + label.width, height), "white")
    out.paste(colours, (12, 1))
    draw = ImageDraw.Draw(out)
    draw.rectangle((11, 0, 12 + strip_w, length + 1), outline="black", width=1)
    span = bar.vmax - bar.vmin if bar.vmax > bar.vmin else 1.0
    for t, text in zip(ticks, texts):
        y = 1 + (bar.vmax - t) / span * (length - 1)
        draw.line((12 + strip_w, y, 12 + strip_w + 5, y), fill="black", width=1)
        draw.text((12 + strip_w + 8, min(max(0, y - TICK_PX / 2 - 2), height - TICK_PX - 4)), text, fill="black",
                  font=f)
    out.paste(label, (out.width - label.width, max(0, round(height / 2 - label.height / 2))))
    return out


def legend(entries: list[LegendEntry], width: int) -> Image.Image:
    """The legend under the picture: a swatch and a label per entry, wrapped into rows, framed."""
    f = font(LEGEND_PX)
    swatch, gap, row_h = 40, 26, LEGEND_PX + 14
    items, x, rows = [], 12, 0
    for entry in entries:
        w = swatch + 8 + f.getlength(entry.label)
        if x + w > width - 12 and x > 12:
            x, rows = 12, rows + 1
        items.append((x, rows, entry))
        x += w + gap
    out = Image.new("RGB", (width, (rows + 1) * row_h + 12), "white")
    draw = ImageDraw.Draw(out)
    draw.rectangle((2, 0, width - 3, out.height - 1), outline=(200, 200, 200), width=1)
    for x, row, entry in items:
        y = 6 + row * row_h + row_h / 2
        colour = tuple(round(255 - (255 - c) * entry.alpha) for c in entry.colour)  # alpha on white
        if entry.kind == "point":
            r = max(3, entry.width // 2 + 2)
            draw.ellipse((x + swatch / 2 - r, y - r, x + swatch / 2 + r, y + r), fill=colour, outline="black")
        elif entry.kind == "marker":
            draw.line((x + swatch / 2 - 10, y, x + swatch / 2 + 10, y), fill="black", width=6)
            draw.line((x + swatch / 2, y - 10, x + swatch / 2, y + 10), fill="black", width=6)
            draw.line((x + swatch / 2 - 9, y, x + swatch / 2 + 9, y), fill=colour, width=4)
            draw.line((x + swatch / 2, y - 9, x + swatch / 2, y + 9), fill=colour, width=4)
        elif DASHES.get(entry.style) is None:
            draw.line((x, y, x + swatch, y), fill=colour, width=max(entry.width, 2))
        else:
            dashed_line(draw, (x, y), (x + swatch, y), colour, max(entry.width, 2), entry.style)
        draw.text((x + swatch + 8, y - LEGEND_PX / 2 - 3), entry.label, fill="black", font=f)
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
