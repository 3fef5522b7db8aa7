"""Anchor geometry shared by the trace and the lab: the k shapes of a level, and "inside the image".

Both read torchvision's own ``AnchorGenerator``: a shape's width and height are those of its cell
anchors (after the generator's rounding), in its order (ratio-major, then size).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["AnchorShape", "anchor_shapes", "inside_image"]


@dataclass(frozen=True)
class AnchorShape:
    """One of the A anchors every cell of a level gets, as ``AnchorGenerator`` defines it."""

    index: int  # position among the A anchors of a cell
    size: float  # sqrt(area) asked for, in input pixels
    ratio: float  # height / width (torchvision's aspect_ratio)
    width: float  # after AnchorGenerator's rounding
    height: float

    @property
    def label(self) -> str:
        return f"{self.size:g}px · {_ratio_label(self.ratio)}"


def _ratio_label(ratio: float) -> str:
    """'1:2' style label for height/width ratio (1:2 = wide, 2:1 = tall)."""
    if ratio >= 1:
        return f"{ratio:g}:1 (tall)" if ratio > 1 else "1:1"
    return f"1:{1 / ratio:g} (wide)"


def anchor_shapes(generator: torch.nn.Module, level: int = 0) -> list[AnchorShape]:
    """The A anchor shapes of a level, in ``AnchorGenerator``'s order (ratio-major, then size)."""
    sizes, ratios = generator.sizes[level], generator.aspect_ratios[level]
    cell = generator.cell_anchors[level].cpu()
    shapes = []
    for i, (x1, y1, x2, y2) in enumerate(cell.tolist()):
        ratio, size = ratios[i // len(sizes)], sizes[i % len(sizes)]
        shapes.append(AnchorShape(i, float(size), float(ratio), x2 - x1, y2 - y1))
    return shapes


def inside_image(anchors: Tensor, image_size: tuple[int, int], border: float = 0.0) -> Tensor:
    """Bool mask of the boxes (…, 4) lying entirely inside the (w, h) image, allowing ``border`` pixels outside.

    The paper's training check (py-faster-rcnn's ``allowed_border = 0``): an anchor is kept only if
    x1 ≥ 0, y1 ≥ 0, x2 ≤ w and y2 ≤ h.
    """
    w, h = image_size
    return (
        (anchors[..., 0] >= -border) & (anchors[..., 1] >= -border)
        & (anchors[..., 2] <= w + border) & (anchors[..., 3] <= h + border)
    )
