"""Charts (curves, bars, point clouds) as native Vega-Lite charts: the browser draws them, not the server.

A matplotlib chart costs the server ~0.2 s per drawing (and again on every new setting); a chart spec
costs it nothing, reacts at once, shows each value on hover, and its menu (⋯) saves it as PNG or SVG.
One look for every chart: the Okabe–Ito colours of :mod:`ui.theme`, in the order each chart names
them, and text sized for a projector (the same sizes as the photo pictures of :mod:`ui.pictures`).

Each function returns a Vega-Lite spec (a dict); :func:`show_chart` shows one.
"""

from __future__ import annotations

import math
from typing import Sequence

import streamlit as st

from . import theme

HEIGHT = 340  # pixels: two charts side by side still fit a 1280×720 projector with the page's text

CONFIG = {
    "font": "DejaVu Sans, sans-serif",
    "title": {"fontSize": 22, "anchor": "start", "offset": 10},
    "axis": {"labelFontSize": 17, "titleFontSize": 19, "gridOpacity": 0.5, "labelOverlap": "greedy"},
    "legend": {"labelFontSize": 17, "titleFontSize": 17, "symbolSize": 180, "labelLimit": 400},
    "view": {"stroke": None},
}


def _colour(names: Sequence[str], colours: Sequence[str] | None = None) -> dict:
    """A colour scale naming each series in the given order (one Okabe–Ito colour each)."""
    return {"domain": list(names), "range": list(colours or theme.CYCLE[:len(names)])}


def _spec(title: str, layers: list[dict] | None = None, height: int = HEIGHT, **single: object) -> dict:
    spec = {"title": title, "height": height, "config": CONFIG}
    if layers is not None:
        spec["layer"] = layers
    spec.update(single)
    return spec


def lines(x: Sequence[float], series: dict[str, Sequence[float]], *, title: str, x_title: str, y_title: str,
          log_x: bool = False, y_domain: tuple[float, float] | None = None, legend_at: str = "top-left",
          colours: Sequence[str] | None = None) -> dict:
    """One curve (with its points) per entry of ``series``, all over the same ``x``."""
    rows = [{"x": float(xv), "y": float(yv), "series": name}
            for name, values in series.items() for xv, yv in zip(x, values)]
    y_scale = {"domain": list(y_domain), "nice": False} if y_domain else {}
    return _spec(title, data={"values": rows}, mark={"type": "line", "point": {"size": 60}, "strokeWidth": 3},
                 encoding={
                     "x": {"field": "x", "type": "quantitative", "title": x_title,
                           "scale": {"type": "log"} if log_x else {"zero": False}},
                     "y": {"field": "y", "type": "quantitative", "title": y_title, "scale": y_scale},
                     "color": {"field": "series", "type": "nominal", "title": None,
                               "scale": _colour(list(series), colours),
                               "legend": {"orient": legend_at, "fillColor": "white", "padding": 6}},
                     "tooltip": [{"field": "series", "title": "curve"}, {"field": "x", "title": x_title},
                                 {"field": "y", "title": y_title, "format": ".3f"}],
                 })


def bars(values: dict[str, float], *, title: str, y_title: str, log_y: bool = False,
         colours: Sequence[str] | None = None, fmt: str = ",.4~g") -> dict:
    """One bar per entry of ``values`` (named on the x axis), each in its own colour."""
    rows = [{"name": name, "value": float(v)} for name, v in values.items()]
    y_scale: dict = {}
    base: dict = {}
    if log_y:  # a log axis has no zero: bars rise from the power of ten below the smallest value
        low = 10.0 ** math.floor(math.log10(min(rows, key=lambda r: r["value"])["value"]))
        high = 10.0 ** math.ceil(math.log10(max(rows, key=lambda r: r["value"])["value"]) + 1e-9)
        y_scale, base = {"type": "log", "domain": [low, high]}, {"y2": {"datum": low}}
    return _spec(title, data={"values": rows}, mark={"type": "bar"},
                 encoding={**base,
                     "x": {"field": "name", "type": "nominal", "title": None, "sort": None,
                           "axis": {"labelAngle": 0}},
                     "y": {"field": "value", "type": "quantitative", "title": y_title, "scale": y_scale, "stack": None},
                     "color": {"field": "name", "type": "nominal", "scale": _colour(list(values), colours),
                               "legend": None},
                     "tooltip": [{"field": "name", "title": " "}, {"field": "value", "title": y_title, "format": fmt}],
                 })


def histogram(values: Sequence[float], *, title: str, x_title: str, y_title: str, bins: int = 40,
              value_range: tuple[float, float] = (0.0, 1.0), colour: str = theme.KEPT,
              mark_at: float | None = None, mark_label: str = "", mark_colour: str = theme.SUPPRESSED) -> dict:
    """How many values fall in each of ``bins`` equal bins (counted here), with an optional labelled line."""
    import numpy as np

    counts, edges = np.histogram(np.asarray(values, dtype=float), bins=bins, range=value_range)
    rows = [{"start": float(a), "end": float(b), "count": int(c)} for a, b, c in zip(edges[:-1], edges[1:], counts)]
    x = {"field": "start", "type": "quantitative", "title": x_title, "scale": {"domain": list(value_range)},
         "axis": {"tickCount": 5, "labelOverlap": "greedy"}}
    layers = [{"data": {"values": rows}, "mark": {"type": "rect", "color": colour},
               "encoding": {"x": x, "x2": {"field": "end"},
                            "y": {"field": "count", "type": "quantitative", "title": y_title}, "y2": {"datum": 0},
                            "tooltip": [{"field": "start", "title": "from", "format": ".3f"},
                                        {"field": "end", "title": "to", "format": ".3f"},
                                        {"field": "count", "title": y_title}]}}]
    if mark_at is not None:
        rule = {"data": {"values": [{"at": float(mark_at), "label": mark_label}]},
                "encoding": {"x": {"field": "at", "type": "quantitative"}}}
        layers += [{**rule, "mark": {"type": "rule", "color": mark_colour, "strokeWidth": 4}},
                   {**rule, "mark": {"type": "text", "color": mark_colour, "align": "left", "dx": 6, "dy": -8,
                                     "fontSize": 17, "fontWeight": "bold", "y": 0},
                    "encoding": {**rule["encoding"], "text": {"field": "label"}}}]
    return _spec(title, layers=layers)


def stacked_bars(rows: Sequence[str], parts: dict[str, Sequence[float]], *, title: str, x_title: str,
                 colours: Sequence[str] | None = None) -> dict:
    """Horizontal bars, one per entry of ``rows`` (top to bottom), each split into ``parts`` (left to right)."""
    data = [{"row": row, "part": part, "order": i, "value": float(values[j])}
            for i, (part, values) in enumerate(parts.items()) for j, row in enumerate(rows)]
    return _spec(title, height=max(120, 44 * len(rows)), data={"values": data}, mark={"type": "bar"},
                 encoding={
                     "y": {"field": "row", "type": "nominal", "title": None, "sort": list(rows),
                           "axis": {"labelLimit": 400, "labelOverlap": False}},
                     "x": {"field": "value", "type": "quantitative", "title": x_title, "stack": "zero",
                           "axis": {"tickCount": 6}},
                     "color": {"field": "part", "type": "nominal", "title": None, "scale": _colour(list(parts), colours),
                               "legend": {"orient": "bottom", "direction": "horizontal"}},
                     "order": {"field": "order"},
                     "tooltip": [{"field": "row", "title": " "}, {"field": "part", "title": " "},
                                 {"field": "value", "title": x_title, "format": ","}],
                 })


def points(groups: dict[str, Sequence[Sequence[float]]], styles: dict[str, tuple[str, str, bool, int]], *,
           title: str, x_title: str, y_title: str, log: bool = True, height: int = 2 * HEIGHT) -> dict:
    """Point clouds: ``groups`` name → (x, y) pairs; ``styles`` name → (colour, Vega shape, filled, size).

    One layer per group (its own marker size and fill); the colour and shape scales name every group,
    so the one legend below the chart shows each group's marker.
    """
    names = list(groups)
    scale = {"type": "log"} if log else {"zero": False}
    legend = {"orient": "bottom", "columns": 3, "title": None, "symbolStrokeWidth": 2.5}

    def layer(name: str) -> dict:
        colour, shape, filled, size = styles[name]
        return {"data": {"values": [{"x": float(x), "y": float(y), "group": name} for x, y in groups[name]]},
                "mark": {"type": "point", "filled": filled, "size": size, "opacity": 0.85 if filled else 1.0,
                         # filled markers get a thin dark outline (a yellow one stays visible on white)
                         **({"stroke": "#333333", "strokeWidth": 1} if filled else {"strokeWidth": 2.5})},
                "encoding": {
                    "x": {"field": "x", "type": "quantitative", "title": x_title, "scale": scale},
                    "y": {"field": "y", "type": "quantitative", "title": y_title, "scale": scale},
                    "color": {"field": "group", "type": "nominal",
                              "scale": _colour(names, [styles[n][0] for n in names]), "legend": legend},
                    "shape": {"field": "group", "type": "nominal",
                              "scale": {"domain": names, "range": [styles[n][1] for n in names]}, "legend": legend},
                    "tooltip": [{"field": "group", "title": " "}, {"field": "x", "title": x_title, "format": ".0f"},
                                {"field": "y", "title": y_title, "format": ".0f"}],
                }}

    return _spec(title, layers=[layer(name) for name in reversed(names)], height=height)  # the first on top


def show_chart(spec: dict, key: str | None = None) -> None:
    """Show a spec made here, as wide as its column (its own look, not Streamlit's chart theme)."""
    st.vega_lite_chart(spec, theme=None, width="stretch", key=key)
