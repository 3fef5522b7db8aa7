"""The followed anchor drawn on a picture (no Streamlit: the app, the slides and the CLI draw it alike).

:func:`mark` draws a box thick in the follow colour with a dark halo; :func:`cell_box` and
:func:`mark_cell` outline its cell on a feature level; :func:`working_box` maps a network-input box to
the photo the pictures are drawn on. Which anchor is followed is :mod:`ui.follow`'s business.
"""

from __future__ import annotations

import torch

from rpn_viz.lab.follow import History

from . import theme
from .pictures import Picture
from .scene import Scene

COLOUR = theme.FOLLOWED


def mark(picture: Picture, box, label: str = "followed") -> Picture:
    """The followed box, thick, in the follow colour with a dark halo, named in the legend."""
    return picture.boxes([list(map(float, box))], COLOUR, 4, label=label, halo=theme.OKABE_ITO["black"])


def cell_box(found: History | None, level) -> list[float] | None:
    """The followed anchor's cell in input pixels, when it lies on ``level`` (a LevelTrace); else None."""
    if found is None or found.level != level.index:
        return None
    sy, sx = level.stride
    return [found.col * sx, found.row * sy, (found.col + 1) * sx, (found.row + 1) * sy]


def mark_cell(picture: Picture, cell: list[float] | None, found: History | None) -> Picture:
    """Outline the followed anchor's cell (from :func:`cell_box`) when there is one."""
    return mark(picture, cell, f"cell of followed anchor #{found.flat_index}") if cell else picture


def working_box(scene: Scene, box) -> list[float]:
    """A network-input box in ``trace.image`` pixels (the photo the pages draw on)."""
    return scene.trace.to_working(torch.tensor([box], dtype=torch.float32))[0].tolist()
