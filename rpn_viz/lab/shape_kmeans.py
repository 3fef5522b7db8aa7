"""Anchor shapes fitted to a set's boxes: k-means on (width, height) with the distance 1 − IoU.

Redmon & Farhadi, YOLO9000 (2017), §"Dimension Clusters": two boxes sharing a centre overlap with
IoU = min(w)·min(h) / union, so 1 − IoU compares shapes the way the RPN's matching will, without the
bias of a Euclidean distance towards large boxes. The fit is seeded — k-means++ initialisation and a
few restarts, all drawn from its own ``numpy`` generator — and its shapes become an anchor source
(:class:`~rpn_viz.lab.anchor_fit.ShapeAnchors`) or, every size with every ratio, the lab's custom anchors
(:func:`as_grid`). Widths and heights are network-input pixels (:func:`box_shapes` scales each photo's
boxes as the model resizes that photo).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .anchor_fit import Resize, ShapeAnchors, scaled_boxes
from ..pipeline.anchors import AnchorSpec
from ..io.box_files import ImageBoxes


def box_shapes(images: Sequence[ImageBoxes], resize: Resize) -> np.ndarray:
    """(M, 2) width and height of every box of a set, in network-input pixels."""
    shapes = [scaled_boxes(im, resize.frame(im.size)) for im in images if im.size is not None and im.boxes]
    if not shapes:
        return np.zeros((0, 2))
    boxes = torch.cat(shapes).double().numpy()
    return np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)


def shape_iou(shapes: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """(M, K) IoU of boxes (w, h) with centroid boxes (w, h), all placed on the same centre."""
    inter = np.minimum(shapes[:, None, 0], centroids[None, :, 0]) * np.minimum(shapes[:, None, 1], centroids[None, :, 1])
    union = (shapes[:, 0] * shapes[:, 1])[:, None] + (centroids[:, 0] * centroids[:, 1])[None, :] - inter
    return inter / union


@dataclass
class ShapeFit:
    """k anchor shapes fitted to box shapes (network-input pixels), sorted by area."""

    widths: np.ndarray  # (k,)
    heights: np.ndarray  # (k,)
    assignment: np.ndarray  # (M,) cluster of each box (indices into the sorted shapes)
    mean_iou: float  # mean over boxes of the IoU with their nearest shape (centred): the fit's objective
    k: int
    seed: int
    iterations: int

    @property
    def sizes(self) -> np.ndarray:
        """torchvision's size of each shape: √(w·h)."""
        return np.sqrt(self.widths * self.heights)

    @property
    def ratios(self) -> np.ndarray:
        """torchvision's aspect ratio of each shape: h / w."""
        return self.heights / self.widths

    def cluster_sizes(self) -> list[int]:
        return np.bincount(self.assignment, minlength=self.k).tolist()

    def anchors(self, stride: int = 16) -> ShapeAnchors:
        """The fitted shapes as an anchor source at ``stride``."""
        return ShapeAnchors(tuple(float(s) for s in self.sizes), tuple(float(r) for r in self.ratios), stride)


def _kmeans_pp(shapes: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding with the 1 − IoU distance: each next centre drawn with probability ∝ distance²."""
    centres = [shapes[rng.integers(len(shapes))]]
    for _ in range(1, k):
        d = 1.0 - shape_iou(shapes, np.array(centres)).max(axis=1)
        total = float((d**2).sum())
        index = rng.choice(len(shapes), p=d**2 / total) if total > 0 else rng.integers(len(shapes))
        centres.append(shapes[index])
    return np.array(centres, dtype=np.float64)


def kmeans_shapes(shapes: np.ndarray | Sequence[Sequence[float]], k: int, seed: int = 0, restarts: int = 5,
                  max_iterations: int = 300) -> ShapeFit:
    """Fit k anchor shapes to box (w, h) by k-means with the distance 1 − IoU (YOLOv2's dimension clusters).

    Each run: k-means++ seeding, then assign every box to the shape it overlaps most (same centre)
    and move each shape to the mean width and height of its boxes, until no box changes cluster. An
    emptied cluster restarts at the box worst served. ``restarts`` runs, the best mean IoU kept.
    All randomness comes from ``numpy.random.default_rng(seed)``: the same seed, the same fit, and
    no global random state is touched.
    """
    shapes = np.asarray(shapes, dtype=np.float64).reshape(-1, 2)
    if k < 1:
        raise ValueError("k must be at least 1.")
    if (shapes <= 0).any():
        raise ValueError("Box widths and heights must be positive.")
    distinct = len(np.unique(shapes, axis=0))
    if distinct < k:
        raise ValueError(f"k = {k} needs at least {k} different box shapes; these boxes have {distinct}.")
    rng = np.random.default_rng(seed)
    best: tuple[float, np.ndarray, np.ndarray, int] | None = None
    for _ in range(max(1, restarts)):
        centres = _kmeans_pp(shapes, k, rng)
        assign = np.full(len(shapes), -1)
        for iteration in range(1, max_iterations + 1):
            new = shape_iou(shapes, centres).argmax(axis=1)
            if np.array_equal(new, assign):
                break
            assign = new
            for c in range(k):
                members = shapes[assign == c]
                if len(members):
                    centres[c] = members.mean(axis=0)
                else:
                    centres[c] = shapes[shape_iou(shapes, centres).max(axis=1).argmin()]
        score = float(shape_iou(shapes, centres).max(axis=1).mean())
        if best is None or score > best[0] + 1e-12:
            best = (score, centres.copy(), assign.copy(), iteration)
    score, centres, _, iterations = best
    order = np.argsort(centres[:, 0] * centres[:, 1], kind="stable")
    centres = centres[order]
    assignment = shape_iou(shapes, centres).argmax(axis=1)
    return ShapeFit(centres[:, 0], centres[:, 1], assignment, score, k, seed, iterations)


def as_grid(fit: ShapeFit, stride: int, size_decimals: int = 0, ratio_decimals: int = 2) -> AnchorSpec:
    """The fitted shapes in the form the lab's custom anchors (and ``AnchorGenerator``) take: a set of sizes
    and a set of ratios, every size with every ratio — so k shapes become up to k² anchors per cell.
    Sizes are rounded to ``size_decimals`` and ratios to ``ratio_decimals`` so near-equal values merge."""
    sizes = sorted({round(float(s), size_decimals) for s in fit.sizes})
    ratios = sorted({round(float(r), ratio_decimals) for r in fit.ratios})
    return AnchorSpec(tuple(sizes), tuple(ratios), stride)

