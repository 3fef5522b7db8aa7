"""The lab pages of the slide deck: one page per lab page whose main picture the deck can draw (no Streamlit).

Each page gets its picture from :mod:`ui.lab_pictures`, the code the lab page draws with, its title,
one sentence with this photo's numbers and 2–4 key numbers (:class:`ui.slides.StepPage`), computed
here by the same ``rpn_viz`` functions the page calls, with the page's widget choices
(:class:`~ui.lab_pictures.LabChoices`). :func:`plan` says which lab pages go in and why the others do not:

- L3 · Recall and L7 · Fit anchors need ground-truth boxes (the session's, or ``rpn-viz slides --box``);
- L5 · Trained vs untrained is left out: its pictures need a second network's run of the photo;
- L6 · Receptive field is in the deck only when the caller has the receptive field already (the app
  passes the one this session computed on L6): it takes a backward pass through the backbone, 14–40 s
  on 2 CPU cores (measured on coffee.jpg), more than the whole deck's budget;
- L4 · Before the RPN shows Selective Search only when the caller has its boxes (the app passes this
  session's run): 2–4 s in its fast mode. Without it the page compares sliding windows and the RPN, as
  the page does before its button is pressed.
- The learning page (T1) needs a training run, so it is never in the deck.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from PIL import Image

from rpn_viz.lab import anchor_fit as af
from rpn_viz.lab import baselines, custom_anchors as lab, recall
from rpn_viz.pipeline.anchors import AnchorSpec, tile_anchors
from rpn_viz.lab.baselines import CandidateSet
from rpn_viz.lab.receptive import ReceptiveField, mass_box

from .lab_pictures import (PAPER_IMAGE, LabChoices, coverage_picture, custom_proposals_picture, fit_sources,
                           method_panels, receptive_picture, tiling_picture, unmatched_picture)
from .scene import Scene
from .steps import STEPS

TITLES = {step.key: step.title for step in STEPS}
LAB_KEYS = ("lab_anchors", "lab_custom", "lab_recall", "lab_before", "lab_untrained", "lab_receptive", "lab_fit")


@dataclass(frozen=True)
class Receptive:
    """A receptive field computed on page L6, with what that page showed it with."""

    field: ReceptiveField
    level_name: str
    mass: float  # the share of the gradient the drawn box holds


@dataclass
class LabInputs:
    """What the lab pages are drawn from besides the scene: the photo's ground-truth boxes (network-input
    pixels, M × 4, M may be 0), the pages' widget choices, and what only an earlier click on a page made."""

    gt: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 4))
    choices: LabChoices = LabChoices()
    search: CandidateSet | None = None  # L4: this session's Selective Search (input pixels)
    receptive: Receptive | None = None  # L6: this session's receptive field


@dataclass
class LabPage:
    """One lab page of the deck: its words and how to draw its picture."""

    key: str
    title: str
    sentence: str
    numbers: list[tuple[str, str]]
    draw: Callable[[], Image.Image]


def plan(scene: Scene, inputs: LabInputs) -> tuple[list[str], dict[str, str]]:
    """(the lab pages in the deck, in the app's order; {left-out page: why}) — cheap checks only."""
    why: dict[str, str] = {}
    no_gt = inputs.gt.shape[0] == 0
    proposals = int(scene.result.final_pos.numel())
    if proposals == 0:
        why["lab_custom"] = why["lab_recall"] = "no proposals with these settings"
    if no_gt:
        why.setdefault("lab_recall", "needs ground-truth boxes")
        why["lab_fit"] = "needs ground-truth boxes"
    why["lab_untrained"] = "needs a second network's run"
    if inputs.receptive is None:
        why["lab_receptive"] = "a backward pass, tens of seconds: in the deck once computed on its page"
    if "lab_custom" not in why:
        sizes, ratios = _custom(scene, inputs)
        if any(len(s) * len(ratios) != len(level.anchor_shapes) for s, level in zip(sizes, scene.trace.levels)):
            why["lab_custom"] = "the custom anchor ratios do not match the head's anchors per cell"
    return [key for key in LAB_KEYS if key not in why], why


def left_out_line(why: dict[str, str]) -> str:
    """The title page's line naming the lab pages left out, and why."""
    return "Lab pages left out: " + "; ".join(f"{TITLES[k]} ({reason})" for k, reason in why.items())


def _custom(scene: Scene, inputs: LabInputs) -> tuple[list[tuple[float, ...]], list[float]]:
    """L2's custom anchors: the model's sizes times the chosen scale, the chosen (or the model's) ratios."""
    sizes, ratios = lab.model_anchor_set(scene.trace)
    c = inputs.choices
    return [tuple(s * float(c.custom_scale) for s in level) for level in sizes], list(c.custom_ratios or ratios[0])


def _values(values) -> str:
    return ", ".join(f"{v:g}" for v in values)


def _anchors(scene: Scene, inputs: LabInputs) -> LabPage:
    c = inputs.choices
    spec = c.spec
    tiling = tile_anchors(scene.input_size if c.on_photo else PAPER_IMAGE, spec)
    (w, h), (rows, cols) = tiling.image_size, tiling.grid
    share = tiling.num_inside / tiling.num_anchors
    return LabPage("lab_anchors", TITLES["lab_anchors"],
                   f"The lab's anchors (sizes {_values(spec.sizes)} px, height:width {_values(spec.ratios)}) every "
                   f"{spec.stride} px over the {w}×{h} {'network input' if c.on_photo else 'example of the paper'}: "
                   f"{rows}×{cols} positions × k = {tiling.k} = {tiling.num_anchors:,} anchors, {tiling.num_inside:,} "
                   f"({share:.0%}) inside the image; the paper's training ignores the others.",
                   [(f"{tiling.num_positions:,}", "positions"), (f"{tiling.k}", "anchors per position k"),
                    (f"{tiling.num_anchors:,}", "anchors"), (f"{tiling.num_inside:,}", "inside the image")],
                   lambda: tiling_picture(scene, tiling, c.on_photo))


def _custom_page(scene: Scene, inputs: LabInputs) -> LabPage:
    sizes, ratios = _custom(scene, inputs)
    gt = inputs.gt
    out = lab.decode_with_custom_anchors(scene.trace, sizes, ratios, gt if gt.numel() else None, own=scene.result)
    shown = min(int(scene.result.final_pos.numel()), inputs.choices.custom_shown)
    m = out.metrics
    return LabPage("lab_custom", TITLES["lab_custom"],
                   f"The head's deltas decoded against anchors {inputs.choices.custom_scale:g}× the model's sizes "
                   f"(height:width {_values(ratios)}): for the anchors behind the top {int(m['anchors compared'])} "
                   f"proposals the boxes overlap the model's own with IoU {m['same anchor IoU (mean)']:.2f} on average "
                   f"and have {m['area ratio (median)']:.2f}× their area (median). "
                   + ("These are the model's own anchors, so the proposals are its own: choose others on page L2."
                      if out.same_set else "The head only knows the anchors it was trained with."),
                   [(f"× {inputs.choices.custom_scale:g}", "anchor sizes"), (f"{m['same anchor IoU (mean)']:.2f}",
                    "IoU with the model's box (mean)"), (f"{m['area ratio (median)']:.2f}×", "area (median)")],
                   lambda: custom_proposals_picture(scene, out, gt, shown))


def _recall(scene: Scene, inputs: LabInputs) -> LabPage:
    gt, threshold = inputs.gt, inputs.choices.recall_iou
    curves = recall.recall_curves(scene.result.boxes, gt)
    found = curves.num_gt - len(curves.uncovered(threshold))
    r05, r07 = curves.recall_vs_count[0.5], curves.recall_vs_count[0.7]
    n = int(scene.result.final_pos.numel())
    return LabPage("lab_recall", TITLES["lab_recall"],
                   f"With these {n:,} proposals, {found} of the {curves.num_gt} ground-truth boxes are found at IoU ≥ "
                   f"{threshold:g}: recall {r05[-1] if r05 else 0:.0%} at IoU 0.5 and {r07[-1] if r07 else 0:.0%} at "
                   f"0.7; averaged over IoU 0.5…0.95 (AR) {curves.average_recall:.2f}.",
                   [(f"{found} / {curves.num_gt}", f"boxes found at IoU ≥ {threshold:g}"),
                    (f"{r05[-1] if r05 else 0:.0%}", "recall at IoU 0.5"), (f"{r07[-1] if r07 else 0:.0%}",
                    "recall at IoU 0.7"), (f"{curves.average_recall:.2f}", "average recall")],
                   lambda: coverage_picture(scene, curves, gt, threshold))


def _before(scene: Scene, inputs: LabInputs) -> LabPage:
    c = inputs.choices
    windows = baselines.sliding_windows(scene.input_size, AnchorSpec(tuple(sorted(c.window_sizes)),
                                                                    tuple(sorted(c.window_ratios)), c.window_stride))
    search = inputs.search
    rpn = baselines.rpn_candidates(scene.trace, scene.result)
    table = baselines.compare([windows, *([search] if search is not None else []), rpn], inputs.gt)
    text = f"Exhaustive sliding windows give {windows.count:,} boxes, each to be classified on its own; "
    if search is not None:
        text += f"Selective Search {search.count:,} boxes in {search.seconds:.2f} s on the CPU; "
    text += (f"the RPN {rpn.count:,} proposals in {rpn.seconds:.2f} s for the whole network on "
             f"{scene.trace.model.device}.")
    numbers = [(f"{windows.count:,}", "sliding windows"), *([(f"{search.count:,}", "Selective Search boxes")]
                                                            if search is not None else []),
               (f"{rpn.count:,}", "RPN proposals"), (f"{rpn.seconds:.2f} s", "the RPN's time, whole network")]
    return LabPage("lab_before", TITLES["lab_before"], text, numbers, lambda: method_panels(scene, table, inputs.gt))


def _receptive(scene: Scene, inputs: LabInputs) -> LabPage:
    r = inputs.receptive
    erf = r.field
    box, held = mass_box(erf.weights, r.mass)
    x1, y1, x2, y2 = box
    widths = erf.cell_anchors[:, 2] - erf.cell_anchors[:, 0]
    heights = erf.cell_anchors[:, 3] - erf.cell_anchors[:, 1]
    bigger = int(((widths > x2 - x1) & (heights > y2 - y1)).sum())
    k = int(erf.cell_anchors.shape[0])
    return LabPage("lab_receptive", TITLES["lab_receptive"],
                   f"The gradient of cell ({erf.row}, {erf.col}) of level '{r.level_name}' ({erf.target}) with "
                   f"respect to every input pixel: {held:.0%} of it lies in a {x2 - x1:.0f}×{y2 - y1:.0f} px box; "
                   f"{bigger} of the cell's {k} anchors are larger than that box on both sides.",
                   [(f"{x2 - x1:.0f}×{y2 - y1:.0f}", f"px holding {held:.0%} of the gradient"),
                    (f"{bigger} / {k}", "anchors larger than that box"), (f"({erf.row}, {erf.col})", "cell")],
                   lambda: receptive_picture(scene, erf, box, held, r.level_name))


def _fit(scene: Scene, inputs: LabInputs) -> LabPage:
    c = inputs.choices
    source = fit_sources(scene.trace, c.spec)[c.fit_source]
    stats, match = af.photo_stats(source, af.trace_frame(scene.trace), inputs.gt, c.fit_ignore)
    counts = match.counts()
    return LabPage("lab_fit", TITLES["lab_fit"],
                   f"Training labels an anchor positive at IoU ≥ 0.7 with a box, and each box's best anchor too. With "
                   f"{source.name}, {counts[af.MATCHED]} of the {stats.num_boxes} boxes have an anchor at 0.7, "
                   f"{counts[af.BEST_MATCH_ONLY]} only their best one and {counts[af.UNMATCHED]} none; mean best IoU "
                   f"{stats.mean_best_iou:.2f}.",
                   [(f"{counts[af.MATCHED]}", "boxes matched at IoU ≥ 0.7"),
                    (f"{counts[af.BEST_MATCH_ONLY]}", "positive only as best anchor"),
                    (f"{counts[af.UNMATCHED]}", "with no positive anchor"), (f"{stats.mean_best_iou:.2f}", "mean best IoU")],
                   lambda: unmatched_picture(scene, match, source.name))


PAGES: dict[str, Callable[[Scene, LabInputs], LabPage]] = {
    "lab_anchors": _anchors, "lab_custom": _custom_page, "lab_recall": _recall, "lab_before": _before,
    "lab_receptive": _receptive, "lab_fit": _fit,
}


def lab_page(key: str, scene: Scene, inputs: LabInputs) -> LabPage:
    """One lab page's words and picture (a key :func:`plan` put in the deck)."""
    return PAGES[key](scene, inputs)
