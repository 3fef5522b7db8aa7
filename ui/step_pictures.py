"""The one main picture of each pipeline step, drawn from a :class:`~ui.scene.Scene` (no Streamlit).

The pages (``ui/steps/*``), presenter mode and the comparison (:mod:`ui.main_pictures`), the slide
deck and ``rpn-viz slides`` (:mod:`ui.slides`) all draw these same functions. What a page's widgets
choose (level, cell, anchor shape, boxes drawn, NMS step) arrives as :class:`Choices`; the followed
anchor (a :class:`~rpn_viz.lab.follow.History`) is marked on every picture. ``scale`` fixes a colour scale
shared by two models (same colours, same scales); None means the picture's own range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Hashable

import numpy as np
import torch
from PIL import Image

from rpn_viz.lab.follow import History
from rpn_viz.pipeline.nms import NmsStep, greedy_nms_steps
from rpn_viz.pipeline.regression import DecodeExplanation, explain_decode
from rpn_viz.pipeline.tracing import LevelTrace

from . import theme
from .marks import cell_box, mark, mark_cell, working_box
from .pictures import Picture, scalar_colours
from .scene import Scene

Scale = tuple[float, float]
Main = tuple[Hashable, Callable[[], Image.Image]]  # (what the picture shows, as a cache key; draw)
RATIO_COLOURS = [theme.OKABE_ITO[c] for c in ("blue", "orange", "green", "purple", "vermillion")]
MAX_NMS_STEPS = 3000  # the NMS page replays at most this many greedy steps
PROPOSALS_SHOWN = 20  # proposals drawn, tagged with their rank


@dataclass(frozen=True)
class Choices:
    """What the pages' widgets chose (None: the page's default). The slides use the defaults or the app's."""

    feat_level: str | None = None  # level shown on the features page
    anchor_level: str | None = None  # the anchors page: level, row and column of the cell
    anchor_row: int | None = None
    anchor_col: int | None = None
    head_level: str | None = None
    head_anchor: str | None = None  # anchor shape label on the head page (None: max over anchors)
    before_drawn: int = 150  # candidates drawn before NMS
    nms_at: int = 1  # NMS step shown (1-based)


def _level(scene: Scene, found: History | None, name: str | None) -> LevelTrace:
    """The followed anchor's level, else the named level when this model has it, else the first."""
    if found is not None:
        return scene.trace.levels[found.level]
    by_name = {level.name: level for level in scene.trace.levels}
    return by_name.get(name, scene.trace.levels[0])


def activation_range(scene: Scene, found: History | None, choices: Choices = Choices()) -> Scale:
    """Min and max mean activation on the level the features picture shows (to share a scale)."""
    values = _level(scene, found, choices.feat_level).features.mean(dim=0)
    return float(values.min()), float(values.max())


def candidate_range(scene: Scene) -> Scale:
    """Min and max objectness of the boxes that reach NMS (to share a colour scale)."""
    probs = scene.result.prob[scene.result.nms_input_pos]
    return (float(probs.min()), float(probs.max())) if probs.numel() else (0.0, 1.0)


def nms_steps(scene: Scene, max_steps: int = MAX_NMS_STEPS) -> list[NmsStep]:
    """Greedy NMS over the boxes that reached NMS, step by step (the first ``max_steps``)."""
    r, pos = scene.result, scene.result.nms_input_pos
    return greedy_nms_steps(r.box[pos], r.prob[pos], scene.settings.nms_iou, levels=r.level[pos], max_steps=max_steps)


# --- the pictures the pages draw ---------------------------------------------------------------------

def best_candidates(scene: Scene, drawn: int) -> torch.Tensor:
    """Candidate positions of the ``drawn`` best boxes that reached NMS, best first."""
    result, survivors = scene.result, scene.result.nms_input_pos
    return survivors[result.prob[survivors].argsort(descending=True, stable=True)][:drawn]


def candidates_picture(scene: Scene, drawn: int, found: History | None = None, scale: Scale | None = None) -> Picture:
    """The ``drawn`` best candidates over the photo, coloured by objectness (colour bar over ``scale``, or their
    own range), and the followed box."""
    result = scene.result
    order = best_candidates(scene, drawn)
    probs = result.prob[order]
    lo, hi = scale or ((float(probs.min()), float(probs.max())) if drawn else (0.0, 1.0))
    hi = hi if hi > lo else lo + 1e-6
    picture = (Picture(scene.trace.image)
               .boxes(scene.trace.to_working(result.box[order]).tolist(),
                      scalar_colours(probs.tolist(), theme.SCORES, lo, hi), 1.2)
               .colour_bar(theme.SCORES, lo, hi, "objectness probability"))
    if found is not None and found.clipped_box is not None:
        mark(picture, working_box(scene, found.clipped_box), f"followed: anchor #{found.flat_index}")
    return picture


def nms_picture(scene: Scene, steps: list[NmsStep], index: int, found: History | None = None,
                axes: bool = True) -> Image.Image:
    """NMS step ``index`` (0-based): the boxes kept earlier (last 40), the kept box and those it removes."""
    step = steps[index]
    result, trace, pos = scene.result, scene.trace, scene.result.nms_input_pos
    picture = Picture(trace.image)
    earlier = [pos[s.kept] for s in steps[:index]][-40:]
    if earlier:
        picture.boxes(trace.to_working(result.box[torch.stack(earlier)]).tolist(), theme.KEPT, 1.2, alpha=0.6,
                      label="kept earlier")
    if step.suppressed:
        victims = pos[list(step.suppressed)]
        picture.boxes(trace.to_working(result.box[victims]).tolist(), theme.SUPPRESSED, 1.5, style="--",
                      label=f"suppressed now (IoU > {scene.settings.nms_iou:g})",
                      tags=[f"{iou:.2f}" for iou in step.ious] if len(step.ious) <= 12 else None)
    picture.boxes(trace.to_working(result.box[pos[step.kept]][None]).tolist(), theme.CURRENT, 4,
                  label=f"kept: objectness {float(result.prob[pos[step.kept]]):.3f}")
    if found is not None and found.clipped_box is not None:
        mark(picture, working_box(scene, found.clipped_box), f"followed: anchor #{found.flat_index}")
    title = f"Step {index + 1}: keep the best remaining box, remove its overlaps"
    return picture.render(title if axes else None, axes=axes)


def proposals_picture(scene: Scene, shown: int, found: History | None) -> Picture:
    """The best ``shown`` proposals, tagged with their rank when few, and the followed box (no title, no axes:
    clicks map straight to photo pixels)."""
    result, trace = scene.result, scene.trace
    labels = [f"#{i} {p:.2f}" for i, p in enumerate(result.scores[:shown].tolist())] if shown <= 20 else None
    picture = Picture(trace.image).boxes(
        trace.to_working(result.boxes[:shown]).tolist(),
        theme.CYCLE[0] if shown > 20 else [theme.CYCLE[i % 7] for i in range(shown)], 2, tags=labels)
    if found is not None and found.clipped_box is not None:
        mark(picture, working_box(scene, found.clipped_box), f"followed: anchor #{found.flat_index}")
    return picture


def decode_picture(scene: Scene, ex: DecodeExplanation, followed: int | None) -> Image.Image:
    """One anchor, its decoded box and the arrow between their centres (the view holds both); the
    anchor in the follow colour when it is the followed one (``followed``: its index)."""
    iw, ih = scene.input_size
    view = (min(0, ex.anchor[0], ex.box[0]), min(0, ex.anchor[1], ex.box[1]),
            max(iw, ex.anchor[2], ex.box[2]), max(ih, ex.anchor[3], ex.box[3]))
    picture = Picture(scene.input_view, view=view)
    if followed is not None:
        mark(picture, ex.anchor, f"anchor (followed #{followed})")
    else:
        picture.boxes([ex.anchor], theme.ANCHOR, 2.5, style="--", label="anchor")
    return (picture
            .boxes([ex.box], theme.DECODED, 3, label="decoded box")
            .arrows([[ex.xa, ex.ya]], [[ex.x, ex.y]], linewidth=2, head=16)
            .render("One anchor and its decoded box"))


# --- each step's main picture -------------------------------------------------------------------------

def _input(scene: Scene, found: History | None, scale: Scale | None, choices: Choices) -> Main:
    w, h = scene.input_size
    return ("main-input",), lambda: Picture(scene.input_view).render(f"network input {w}×{h}")


def _features(scene: Scene, found: History | None, scale: Scale | None, choices: Choices) -> Main:
    level = _level(scene, found, choices.feat_level)
    values = level.features.mean(dim=0).numpy()
    lo, hi = scale or (float(np.min(values)), float(np.max(values)))
    (sy, sx), (h, w) = level.stride, level.grid
    cell = cell_box(found, level)

    def draw() -> Image.Image:
        picture = (Picture(scene.input_view).heatmap(values, (w * sx, h * sy), vmin=lo, vmax=hi if hi > lo else lo + 1e-12,
                                                     label="mean activation")
                   .grid((sx, sy), (w, h), alpha=0.5))
        return mark_cell(picture, cell, found).render(f"level '{level.name}': {h}×{w} cells, stride {sx}")

    return ("main-features", level.index, scale, cell and found.flat_index), draw


def anchor_cell(scene: Scene, found: History | None, choices: Choices) -> tuple[LevelTrace, int, int]:
    """The cell whose anchors the anchors picture draws: the followed anchor's, the chosen one, or the middle."""
    if found is not None:
        return scene.trace.levels[found.level], found.row, found.col
    level = _level(scene, None, choices.anchor_level)
    h, w = level.grid
    row = h // 2 if choices.anchor_row is None else min(int(choices.anchor_row), h - 1)
    col = w // 2 if choices.anchor_col is None else min(int(choices.anchor_col), w - 1)
    return level, row, col


def _anchors(scene: Scene, found: History | None, scale: Scale | None, choices: Choices) -> Main:
    level, row, col = anchor_cell(scene, found, choices)
    anchors = level.anchors[row, col]
    iw, ih = scene.input_size
    view = (min(0.0, float(anchors[:, 0].min())), min(0.0, float(anchors[:, 1].min())),
            max(float(iw), float(anchors[:, 2].max())), max(float(ih), float(anchors[:, 3].max())))
    ratios = sorted({s.ratio for s in level.anchor_shapes})

    def draw() -> Image.Image:
        picture = Picture(scene.input_view, view=view)
        for i, ratio in enumerate(ratios):
            shapes = [s for s in level.anchor_shapes if s.ratio == ratio]
            picture.boxes(anchors[[s.index for s in shapes]].tolist(), RATIO_COLOURS[i % len(RATIO_COLOURS)], 2,
                          label=f"height:width {ratio:g}", tags=[f"{s.size:g}" for s in shapes])
        if found is not None:
            mark(picture, found.anchor_box, f"followed: {found.shape.label}")
        sy, sx = level.stride
        picture.boxes([[col * sx, row * sy, (col + 1) * sx, (row + 1) * sy]], theme.OKABE_ITO["black"], 2)
        return picture.render(f"the {len(level.anchor_shapes)} anchors of cell ({row}, {col}), level '{level.name}'")

    return ("main-anchors", level.index, row, col, found and found.flat_index), draw


def head_map(scene: Scene, found: History | None, choices: Choices) -> tuple[LevelTrace, str, np.ndarray]:
    """The head picture's level, what it shows (an anchor shape or "max over anchors") and its objectness map."""
    level = _level(scene, found, choices.head_level)
    probs = torch.sigmoid(level.objectness)
    labels = [s.label for s in level.anchor_shapes]
    shape = found.shape.label if found is not None else choices.head_anchor
    if shape in labels:
        return level, shape, probs[labels.index(shape)].numpy()
    return level, "max over anchors", probs.max(dim=0).values.numpy()


def _head(scene: Scene, found: History | None, scale: Scale | None, choices: Choices) -> Main:
    level, title, values = head_map(scene, found, choices)
    (sy, sx), (h, w) = level.stride, level.grid
    cell = cell_box(found, level)

    def draw() -> Image.Image:
        picture = Picture(scene.input_view).heatmap(values, (w * sx, h * sy))
        return mark_cell(picture, cell, found).render(f"objectness, level '{level.name}': {title}")

    return ("main-head", level.index, title, cell and found.flat_index), draw


def decoded_anchor(scene: Scene, found: History | None) -> tuple[int, DecodeExplanation]:
    """The anchor the regression picture decodes (the followed one, else the highest-scoring) and its decoding."""
    trace = scene.trace
    flat = found.flat_index if found is not None else int(torch.argmax(trace.logits))
    return flat, explain_decode(trace.anchors[flat], trace.deltas[flat], trace.rpn.box_coder)


def _regression(scene: Scene, found: History | None, scale: Scale | None, choices: Choices) -> Main:
    flat, ex = decoded_anchor(scene, found)
    followed = flat if found is not None else None
    return ("main-regression", flat, followed), lambda: decode_picture(scene, ex, followed)


def _before_nms(scene: Scene, found: History | None, scale: Scale | None, choices: Choices) -> Main | None:
    n = int(scene.result.nms_input_pos.numel())
    if n == 0:
        return None
    drawn = min(n, int(choices.before_drawn))
    return (("main-before", drawn, scale, found and found.flat_index),
            lambda: candidates_picture(scene, drawn, found, scale).render(
                f"{drawn} of {n:,} candidates, coloured by objectness"))


def nms_index(steps: list[NmsStep], choices: Choices) -> int:
    """The NMS step (0-based) the NMS picture shows."""
    return min(int(choices.nms_at), len(steps)) - 1


def _nms(scene: Scene, found: History | None, scale: Scale | None, choices: Choices,
         steps: Callable[[], list[NmsStep]]) -> Main | None:
    if scene.result.nms_input_pos.numel() == 0:
        return None
    replay = steps()
    index = nms_index(replay, choices)
    return ("main-nms", index, found and found.flat_index), lambda: nms_picture(scene, replay, index, found)


def _proposals(scene: Scene, found: History | None, scale: Scale | None, choices: Choices) -> Main | None:
    n = int(scene.result.final_pos.numel())
    if n == 0:
        return None
    shown = min(n, PROPOSALS_SHOWN)
    return (("main-proposals", shown, found and found.flat_index),
            lambda: proposals_picture(scene, shown, found).render(f"top {shown} of {n} proposals"))


PICTURES: dict[str, Callable[..., Main | None]] = {
    "input": _input, "features": _features, "anchors": _anchors, "head": _head, "regression": _regression,
    "before_nms": _before_nms, "proposals": _proposals,
}
STEP_KEYS = ("input", "features", "anchors", "head", "regression", "before_nms", "nms", "proposals")

#: Pictures whose colour scale two models share in the comparison (objectness heatmaps are 0…1 already).
SHARED_SCALES: dict[str, Callable[[Scene, History | None, Choices], Scale]] = {
    "features": activation_range, "before_nms": lambda scene, found, choices: candidate_range(scene),
}


def main_picture(step_key: str, scene: Scene, found: History | None = None, scale: Scale | None = None,
                 choices: Choices = Choices(), steps: Callable[[], list[NmsStep]] | None = None) -> Main | None:
    """(what it shows, draw) of a pipeline step's main picture; None for other pages or when there is nothing to draw.

    The first part of the key says what the picture shows within ``scene`` (callers that cache add the
    scene's own key). ``steps`` gives the NMS replay (the app keeps it per session); by default it is
    computed here.
    """
    if step_key == "nms":
        return _nms(scene, found, scale, choices, steps or (lambda: nms_steps(scene)))
    make = PICTURES.get(step_key)
    return make(scene, found, scale, choices) if make is not None else None
