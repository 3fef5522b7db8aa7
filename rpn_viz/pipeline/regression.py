"""Box decoding of one anchor, with every intermediate number, for the regression step.

torchvision's ``BoxCoder`` (weights (1, 1, 1, 1) in the RPN) turns an anchor and its deltas into a
box:

    xa, ya, wa, ha = centre and size of the anchor
    x = xa + dx · wa          y = ya + dy · ha
    w = wa · exp(min(dw, c))  h = ha · exp(min(dh, c))     with c = log(1000 / 16) ≈ 4.135
    box = (x − w/2, y − h/2, x + w/2, y + h/2)

:func:`explain_decode` returns those numbers (``ui.words.decode_formulas`` writes them out); its ``box``
equals ``BoxCoder.decode_single``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torchvision.models.detection._utils import BoxCoder


@dataclass(frozen=True)
class DecodeExplanation:
    """The decoding of one anchor, number by number (network-input pixels)."""

    anchor: tuple[float, float, float, float]
    xa: float
    ya: float
    wa: float
    ha: float
    dx: float
    dy: float
    dw: float
    dh: float
    clamp: float
    x: float
    y: float
    w: float
    h: float
    box: tuple[float, float, float, float]

    @property
    def clamped(self) -> bool:
        """Whether dw or dh hit the clamp (the box would otherwise grow by more than 1000/16)."""
        return self.dw / self.weights_w > self.clamp or self.dh / self.weights_h > self.clamp

    weights_w: float = 1.0
    weights_h: float = 1.0


def explain_decode(anchor: torch.Tensor, deltas: torch.Tensor, coder: BoxCoder | None = None) -> DecodeExplanation:
    """Decode one ``anchor`` (4,) by ``deltas`` (4,) the way ``coder`` does, keeping each number."""
    coder = coder or BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
    wx, wy, ww, wh = coder.weights
    x1, y1, x2, y2 = (float(v) for v in anchor)
    dx, dy, dw, dh = (float(v) for v in deltas)
    wa, ha = x2 - x1, y2 - y1
    xa, ya = x1 + 0.5 * wa, y1 + 0.5 * ha
    clamp = float(coder.bbox_xform_clip)
    x = xa + dx / wx * wa
    y = ya + dy / wy * ha
    w = wa * math.exp(min(dw / ww, clamp))
    h = ha * math.exp(min(dh / wh, clamp))
    box = coder.decode_single(deltas.reshape(1, 4).float(), anchor.reshape(1, 4).float())[0]
    return DecodeExplanation(
        anchor=(x1, y1, x2, y2), xa=xa, ya=ya, wa=wa, ha=ha, dx=dx, dy=dy, dw=dw, dh=dh, clamp=clamp,
        x=x, y=y, w=w, h=h, box=tuple(float(v) for v in box), weights_w=ww, weights_h=wh,
    )
