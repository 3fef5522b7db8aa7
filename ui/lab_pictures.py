"""The main picture of each lab page that has one, drawn from a :class:`~ui.scene.Scene` (no Streamlit).

The lab pages (``ui/steps/lab_*.py``) and the slide deck (:mod:`ui.slide_lab`) draw these same
functions, as :mod:`ui.step_pictures` does for the pipeline steps. What a page computes for its
picture (a tiling, a custom-anchor decoding, recall curves, the methods' boxes, a receptive field, the
boxes' best anchors) comes from ``rpn_viz`` and is passed in; what its widgets choose arrives as
:class:`LabChoices` (the pages' defaults, or this session's values in the app).

L5 (trained vs untrained) is not here: its pictures need a second network's trace of the photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from rpn_viz.lab import anchor_fit as af
from rpn_viz.lab import baselines, custom_anchors as lab, recall, receptive
from rpn_viz.pipeline.anchors import PAPER_ANCHORS, AnchorSpec, Tiling
from rpn_viz.pipeline.tracing import Trace

from . import theme
from .picture_frame import side_by_side
from .pictures import Picture
from .scene import Scene

# L1 · Anchor lab
PAPER_IMAGE = (1000, 600)  # the paper's example image (w, h)
RATIO_CHOICES = [0.25, 0.5, 1.0, 2.0, 4.0]
RATIO_COLOURS = [theme.OKABE_ITO[c] for c in ("purple", "blue", "green", "orange", "vermillion")]
# L2 · Custom anchors
MODEL_COLOUR = theme.KEPT
CUSTOM_COLOUR = theme.OKABE_ITO["orange"]
# L3 · Recall
MISSED = theme.SUPPRESSED
# L4 · Before the RPN
DRAWN = 100
METHOD_COLOURS = {"sliding windows": theme.OKABE_ITO["orange"], "Selective Search": theme.OKABE_ITO["purple"],
                  "RPN": theme.KEPT}
# L7 · Fit anchors
FIT_COLOURS = {af.MATCHED: theme.POSITIVE, af.BEST_MATCH_ONLY: theme.OKABE_ITO["orange"],
               af.UNMATCHED: theme.OKABE_ITO["vermillion"]}
FIT_STYLES = {af.MATCHED: "-", af.BEST_MATCH_ONLY: "--", af.UNMATCHED: "-."}  # a second cue besides colour


@dataclass(frozen=True)
class LabChoices:
    """What the lab pages' widgets chose; the defaults are the pages' own (the deck without the app uses them)."""

    sizes: tuple[float, ...] = PAPER_ANCHORS.sizes  # L1: the lab's custom anchors (L7's fit may have set them)
    ratios: tuple[float, ...] = PAPER_ANCHORS.ratios
    stride: int = PAPER_ANCHORS.stride
    on_photo: bool = True  # L1: tile this photo's input (False: the paper's 1000×600 example)
    custom_scale: float = 1.0  # L2: every anchor size times this
    custom_ratios: tuple[float, ...] | None = None  # L2: None = the model's own ratios
    custom_shown: int = 10  # L2: proposals drawn (at most the proposals there are)
    recall_iou: float = 0.5  # L3: IoU that counts a box as found
    window_sizes: tuple[float, ...] = (128, 256, 512)  # L4: sliding windows
    window_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    window_stride: int = 16
    fit_source: str = "model"  # L7: "model", "paper" or "custom" anchors
    fit_ignore: bool = False  # L7: ignore anchors crossing the border


    @property
    def spec(self) -> AnchorSpec:
        """The lab's custom anchors (L1)."""
        return AnchorSpec(tuple(sorted(self.sizes)), tuple(sorted(self.ratios)), int(self.stride))


def fit_sources(trace: Trace, custom: AnchorSpec) -> dict[str, af.AnchorSource]:
    """L7's three anchor sets: the model's own, the paper's k = 9 and the lab's custom anchors."""
    return {
        "model": af.ModelAnchors.of(trace),
        "paper": af.GridAnchors(PAPER_ANCHORS, "the paper's k = 9"),
        "custom": af.GridAnchors(custom, "custom anchors (L1)"),
    }


def ratio_colour(ratio: float, ratios: tuple[float, ...] = ()) -> str:
    """L1's colour of an aspect ratio: fixed for the choices, by position for a fitted ratio (L7)."""
    if ratio in RATIO_CHOICES:
        return RATIO_COLOURS[RATIO_CHOICES.index(ratio) % len(RATIO_COLOURS)]
    return theme.CYCLE[ratios.index(ratio) % len(theme.CYCLE)] if ratio in ratios else theme.CYCLE[0]


def tiling_picture(scene: Scene, tiling: Tiling, on_photo: bool) -> Image.Image:
    """L1: anchor centres over the image and the k anchors of the middle cell (they may cross the border)."""
    w, h = tiling.image_size
    rows, cols = tiling.grid
    row, col = rows // 2, cols // 2
    cell = tiling.cell_anchors(row, col)
    margin = max(0.0, float(-cell[:, :2].min()), float(cell[:, 2].max() - w), float(cell[:, 3].max() - h)) + 10
    picture = Picture(scene.input_view if on_photo else None, view=(-margin, -margin, w + margin, h + margin),
                      size=(w, h))
    ys, xs = np.meshgrid(np.arange(rows) * tiling.spec.stride, np.arange(cols) * tiling.spec.stride, indexing="ij")
    picture.points(np.stack([xs.ravel(), ys.ravel()], axis=1), theme.OKABE_ITO["yellow"],
                   radius=max(1.0, 4.0 / max(rows, cols) ** 0.25), edge="black",
                   label=f"anchor centres (every {tiling.spec.stride} px)")
    for shape, box in zip(tiling.spec.shapes(), cell.tolist()):
        picture.boxes([box], ratio_colour(shape.ratio, tiling.spec.ratios), 2.5)
    for r in tiling.spec.ratios:
        picture.legend_entry(f"height:width {r:g}", ratio_colour(r, tiling.spec.ratios), 3)
    picture.marker(col * tiling.spec.stride, row * tiling.spec.stride)
    picture.boxes([[0, 0, w, h]], theme.OKABE_ITO["black"], 2, style=":")
    title = (f"{tiling.num_anchors:,} anchors: {rows}×{cols} positions × k = {tiling.k}" if on_photo
             else f"The paper's 1000×600 example: {tiling.num_anchors:,} anchors")
    return picture.render(title)


def custom_proposals_picture(scene: Scene, out: lab.CustomAnchorDecode, gt: torch.Tensor, shown: int) -> Image.Image:
    """L2: the top ``shown`` proposals decoded from the model's anchors and from the custom ones (and the boxes)."""
    trace = scene.trace
    picture = (Picture(trace.image)
               .boxes(trace.to_working(scene.result.boxes[:shown]).tolist(), MODEL_COLOUR, 2.2,
                      label="with the model's own anchors")
               .boxes(trace.to_working(out.proposals[:shown]).tolist(), CUSTOM_COLOUR, 2.2, style="--",
                      label="same head, your anchors"))
    if gt.numel():
        picture.boxes(trace.to_working(gt).tolist(), theme.GROUND_TRUTH, 3.5, label="your ground truth")
    return picture.render(f"Top {shown} proposals: the model's anchors vs yours")


def coverage_picture(scene: Scene, curves: recall.RecallCurves, gt: torch.Tensor, threshold: float) -> Image.Image:
    """L3: each ground-truth box, found or missed at ``threshold``, and its best proposal."""
    trace, boxes = scene.trace, scene.result.boxes
    missed = set(curves.uncovered(threshold))
    picture = Picture(trace.image)
    ranks = [r for r in curves.best_rank.tolist() if r >= 0]
    if ranks:
        picture.boxes(trace.to_working(boxes[ranks]).tolist(), theme.KEPT, 2, style="--", label="best proposal")
    working = trace.to_working(gt).tolist()
    found = [i for i in range(len(working)) if i not in missed]
    if found:
        picture.boxes([working[i] for i in found], theme.GROUND_TRUTH, 3.5, label="found",
                      tags=[f"GT {i + 1}: {float(curves.best_iou[i]):.2f}" for i in found])
    if missed:
        picture.boxes([working[i] for i in sorted(missed)], MISSED, 3.5, label="no proposal covers it",
                      tags=[f"GT {i + 1}: {float(curves.best_iou[i]):.2f}" for i in sorted(missed)])
    return picture.render(f"Best proposal for each box ({len(missed)} missed at IoU {threshold:g})")


def method_panels(scene: Scene, table: baselines.Comparison, gt: torch.Tensor) -> Image.Image:
    """L4: one panel per method: its boxes (the best, or a seeded random sample when unranked) over the photo."""
    trace = scene.trace
    generator = torch.Generator().manual_seed(0)
    panels = []
    for s in table.sets:
        if s.ranked:
            picked, how = s.boxes[:DRAWN], f"best {min(DRAWN, s.count)}"
        else:
            order = torch.randperm(s.count, generator=generator)[:DRAWN]
            picked, how = s.boxes[order], f"{min(DRAWN, s.count)} at random"
        picture = Picture(trace.image, width=600, height=600).boxes(
            trace.to_working(picked).tolist(), METHOD_COLOURS.get(s.name, theme.CYCLE[0]), 1.0, alpha=0.7,
            label=f"{s.name}: {how} of {s.count:,}")
        if gt.numel():
            picture.boxes(trace.to_working(gt).tolist(), theme.GROUND_TRUTH, 3, label="your boxes")
        panels.append(picture.render(s.name, axes=False))
    return side_by_side(panels)


def receptive_picture(scene: Scene, erf: receptive.ReceptiveField, box: tuple, held: float,
                      level_name: str) -> Image.Image:
    """L6: where the gradient of one cell's output lies on the input, the cell's anchors and the mass box."""
    heat = erf.as_image().numpy()
    ph, pw = heat.shape
    shown = np.sqrt(heat)  # square root: the tails stay visible next to the peak
    return (Picture(scene.input_view)
            # transparent where there is no gradient: the photo shows
            .heatmap(shown, (pw, ph), alpha=np.clip(1.5 * shown, 0.0, 0.85), label="√(|gradient| / max)", smooth=True)
            .boxes(erf.cell_anchors.tolist(), theme.ANCHOR, 1.8, style=":", alpha=0.95,
                   label=f"the cell's {erf.cell_anchors.shape[0]} anchors")
            .boxes([box], theme.OKABE_ITO["vermillion"], 3, style="--", label=f"box holding {held:.0%} of the gradient")
            .marker(*erf.cell_centre, colour="white", label="cell centre (anchor centre)")
            .render(f"Effective receptive field of cell ({erf.row}, {erf.col}), level '{level_name}'"))


def view_with(boxes: torch.Tensor, iw: int, ih: int) -> tuple[float, float, float, float]:
    """The input image and every box (anchors may cross the border), with 10 px around them."""
    if not boxes.numel():
        return (0.0, 0.0, float(iw), float(ih))
    return (min(0.0, float(boxes[:, 0].min())) - 10, min(0.0, float(boxes[:, 1].min())) - 10,
            max(float(iw), float(boxes[:, 2].max())) + 10, max(float(ih), float(boxes[:, 3].max())) + 10)


def unmatched_picture(scene: Scene, match: af.BoxMatch, source_name: str) -> Image.Image:
    """L7: each box coloured by what training gives it, with its best anchor dotted and that IoU."""
    iw, ih = scene.input_size
    cats = match.categories
    best = match.best_anchor_boxes
    picture = Picture(scene.input_view, view=view_with(torch.cat([match.boxes, best]), iw, ih))
    for cat in af.CATEGORIES:  # every category in the legend, even when no box is in it
        rows = [i for i, c in enumerate(cats) if c == cat]
        picture.legend_entry(f"{cat}: {len(rows)}", FIT_COLOURS[cat], 3.5, FIT_STYLES[cat])
        if rows:
            picture.boxes(best[rows].tolist(), FIT_COLOURS[cat], 2.0, style=":")
            picture.boxes(match.boxes[rows].tolist(), FIT_COLOURS[cat], 3.5, style=FIT_STYLES[cat],
                          tags=[f"GT {i + 1} · IoU {float(match.best_iou[i]):.2f}" for i in rows])
    picture.legend_entry("its best anchor (dotted, same colour)", theme.OKABE_ITO["black"], 2.0, ":")
    return picture.render(f"Your boxes and {source_name}")
