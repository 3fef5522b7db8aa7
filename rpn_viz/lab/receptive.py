"""Which input pixels a feature-map cell actually looks at: the gradient-based effective receptive field.

A cell's *theoretical* receptive field is every input pixel that can influence it (for a deep
backbone often the whole image). Its *effective* receptive field (Luo et al., 2016) is where the
influence really is: the gradient of the cell's output with respect to the network input. Here the
output is the sum of the cell's feature vector (or of its objectness logits), the gradient is taken
by autograd on the model's own transform and backbone (not under ``inference_mode``), its absolute
value is summed over colour channels and normalised to total 1. The box that holds most of that
mass is what the cell "sees" — to compare with the anchors the cell is responsible for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
from torch import Tensor

from ..pipeline.tracing import Trace, head_parts

Box = tuple[float, float, float, float]
Target = Literal["features", "objectness"]


@dataclass
class ReceptiveField:
    """The effective receptive field of one cell, in the input's pixels (network-input pixels for a model)."""

    weights: Tensor  # (H, W) |gradient| summed over channels, normalised to sum 1
    row: int
    col: int
    support_box: Box  # bounding box of every pixel with a non-zero gradient (x1, y1, x2, y2; pixel edges)
    mass_box: Box  # smallest box trimmed symmetrically in x and y quantiles that holds ``mass``
    mass: float  # the mass asked for
    mass_in_box: float  # the mass the box actually holds (≥ ``mass``)
    target: str
    cell_centre: tuple[float, float] | None = None  # (x, y) of the cell's anchors, when known
    cell_anchors: Tensor | None = None  # (A, 4) the cell's anchors, when known

    @property
    def peak(self) -> tuple[int, int]:
        """(x, y) of the pixel with the largest gradient."""
        flat = int(torch.argmax(self.weights))
        return flat % self.weights.shape[1], flat // self.weights.shape[1]

    def as_image(self) -> Tensor:
        """(H, W) scaled to [0, 1] by the maximum, for drawing."""
        top = self.weights.max()
        return self.weights / top if top > 0 else self.weights


def _bbox_of_nonzero(weights: Tensor) -> Box:
    rows = torch.where(weights.sum(dim=1) > 0)[0]
    cols = torch.where(weights.sum(dim=0) > 0)[0]
    return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)


def _trimmed(cum: Tensor, q: float) -> tuple[int, int]:
    """[first, last + 1) indices of a 1-D mass distribution after trimming ``q`` from each end."""
    first = int(torch.searchsorted(cum, torch.tensor([q], dtype=cum.dtype), right=True)[0])
    last = int(torch.searchsorted(cum, torch.tensor([1.0 - q], dtype=cum.dtype), right=False)[0])
    last = min(max(last, first), cum.numel() - 1)
    return first, last + 1


def mass_box(weights: Tensor, mass: float = 0.95, steps: int = 40) -> tuple[Box, float]:
    """The box holding at least ``mass`` of ``weights`` (H, W ≥ 0, sum 1), and the mass it holds.

    The box keeps the columns between the q and 1 − q quantiles of the column sums and likewise
    for rows; the largest q whose box still holds ``mass`` is found by bisection (boxes shrink as q
    grows). At q = 0 it is the box of all non-zero pixels, holding everything.
    """
    w = weights.double()
    cx, cy = torch.cumsum(w.sum(dim=0), 0), torch.cumsum(w.sum(dim=1), 0)

    def box_at(q: float) -> tuple[tuple[int, int, int, int], float]:
        x1, x2 = _trimmed(cx, q)
        y1, y2 = _trimmed(cy, q)
        return (x1, y1, x2, y2), float(w[y1:y2, x1:x2].sum())

    lo, hi = 0.0, 0.5
    best = box_at(0.0)
    for _ in range(steps):
        mid = (lo + hi) / 2
        box, held = box_at(mid)
        if held >= mass:
            lo, best = mid, (box, held)
        else:
            hi = mid
    (x1, y1, x2, y2), held = best
    return (float(x1), float(y1), float(x2), float(y2)), held


def effective_receptive_field(
    forward: Callable[[Tensor], Tensor],
    image: Tensor,
    row: int,
    col: int,
    mass: float = 0.95,
    target: str = "features",
) -> ReceptiveField:
    """Gradient of ``forward(image)[0, :, row, col].sum()`` w.r.t. ``image`` (1, C, H, W), as a map.

    ``forward`` returns a (1, D, h, w) map (features, or objectness logits). Autograd runs with
    grad enabled and outside inference mode whatever the caller's mode; parameters need not
    require grad. Raises ``ValueError`` if the gradient is zero everywhere.
    """
    with torch.inference_mode(False), torch.enable_grad():
        x = image.detach().clone().requires_grad_(True)
        out = forward(x)
        h, w = out.shape[-2:]
        if not (0 <= row < h and 0 <= col < w):
            raise ValueError(f"Cell ({row}, {col}) is outside the {h}×{w} feature map.")
        (grad,) = torch.autograd.grad(out[0, :, row, col].sum(), x)
    magnitude = grad[0].abs().sum(dim=0).detach().to("cpu", torch.float64)
    total = magnitude.sum()
    if not total > 0:
        raise ValueError("The gradient is zero everywhere: this cell does not depend on the input.")
    weights = magnitude / total
    box, held = mass_box(weights, mass)
    return ReceptiveField(weights.float(), row, col, _bbox_of_nonzero(weights), box, mass, held, target)


def model_input(trace: Trace) -> Tensor:
    """(1, 3, H, W) the network input of the trace (the model's own transform of the photo), on the model's device."""
    return trace.input_tensor()[None].to(trace.model.device)


def receptive_field(trace: Trace, level: int, row: int, col: int, target: Target = "features",
                    mass: float = 0.95) -> ReceptiveField:
    """Effective receptive field of cell (row, col) of ``trace``'s level ``level`` on the network input.

    ``features``: gradient of the sum of the cell's backbone/FPN feature vector; ``objectness``:
    of the sum of its A objectness logits (the head's 3×3 conv widens the field by one cell). The
    map is in network-input pixels, padded size — the frame of the cell's anchors, which come along.
    """
    loaded = trace.model
    model = loaded.model
    image = model_input(trace)

    def forward(x: Tensor) -> Tensor:
        feature = list(model.backbone(x).values())[level]
        if target == "objectness":
            return head_parts(trace.rpn.head, feature)[1]
        return feature

    erf = effective_receptive_field(forward, image, row, col, mass, target)
    lvl = trace.levels[level]
    erf.cell_anchors = lvl.anchors[row, col].clone()
    centre = erf.cell_anchors.view(-1, 2, 2).mean(dim=1).mean(dim=0)
    erf.cell_centre = (float(centre[0]), float(centre[1]))
    return erf
