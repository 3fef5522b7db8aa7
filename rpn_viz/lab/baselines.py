"""Before the RPN, and without learning: the baselines a region proposal network is compared with.

* **Exhaustive sliding windows** — the same scales and aspect ratios at every position of a regular
  grid: exactly the anchor tiling, but each window would have to be classified as it is (no
  objectness, no regression). Generating them is instant; the cost is classifying them all.
* **Selective Search** (Uijlings et al., 2013), the proposal method of R-CNN and Fast R-CNN: greedy
  hierarchical grouping of a graph-based over-segmentation, via OpenCV contrib's
  ``cv2.ximgproc.segmentation`` in its "fast" mode, on a downscaled copy (as is usual: it costs
  seconds per image on a CPU, which is the bottleneck Faster R-CNN removed).
* **The same RPN with random weights** — :func:`side_by_side` lays a trained and an untrained
  trace of the same photo next to each other, to show what training did.

Boxes are (x1, y1, x2, y2). The comparison works in network-input pixels, the frame of the RPN's
proposals (``trace.to_input`` / ``trace.to_original`` convert from / to the photo).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np
import PIL.Image
import torch
from torch import Tensor
from torchvision.ops import box_iou, clip_boxes_to_image

from ..pipeline.boxes import best_iou
from ..pipeline.filtering import FilterResult, FilterSettings
from ..pipeline.anchors import PAPER_ANCHORS, AnchorSpec, Rounding, tile_anchors
from .recall import recall_at
from ..pipeline.tracing import Trace, same_network_input


@dataclass(frozen=True)
class WindowLayout:
    """How sliding windows were laid out: ``k`` shapes at every cell of a ``grid`` (rows, cols), ``stride`` apart."""

    grid: tuple[int, int]
    stride: int
    k: int

    @property
    def positions(self) -> int:
        return self.grid[0] * self.grid[1]


@dataclass(frozen=True)
class SearchRun:
    """How Selective Search ran: its ``mode`` on a ``searched_size`` copy of an ``image_size`` photo (w, h)."""

    mode: str
    searched_size: tuple[int, int]
    image_size: tuple[int, int]


@dataclass(frozen=True)
class NetworkRun:
    """Which network gave the proposals: the model's title, its weights' label and the device."""

    model: str
    weights: str
    device: str


@dataclass
class CandidateSet:
    """Candidate boxes from one method, what producing them cost, and how they were made (``made``)."""

    name: str
    boxes: Tensor  # (N, 4) float32
    seconds: float  # wall-clock time to produce them on this machine
    ranked: bool  # whether the order means "best first" (top-n recall makes sense)
    made: WindowLayout | SearchRun | NetworkRun

    @property
    def count(self) -> int:
        return int(self.boxes.shape[0])


def sliding_windows(
    image_size: tuple[int, int], spec: AnchorSpec = PAPER_ANCHORS, clip: bool = True, rounding: Rounding = "ceil"
) -> CandidateSet:
    """Every window of ``spec``'s k shapes at every stride-spaced position of a (w, h) image.

    The positions and shapes are the anchor tiling of :func:`rpn_viz.pipeline.anchors.tile_anchors`, so the
    count is positions × k; with ``clip`` each window is cut to the image (a window-based
    classifier can only look at pixels that exist).
    """
    start = time.perf_counter()
    tiling = tile_anchors(image_size, spec, rounding)
    boxes = tiling.anchors
    if clip:
        boxes = clip_boxes_to_image(boxes, (image_size[1], image_size[0]))
    seconds = time.perf_counter() - start
    return CandidateSet("sliding windows", boxes, seconds, False, WindowLayout(tiling.grid, spec.stride, spec.k))


SearchMode = Literal["fast", "quality", "single"]


def selective_search(image: PIL.Image.Image, max_side: int = 500, mode: SearchMode = "fast") -> CandidateSet:
    """Selective Search boxes of ``image``, in ``image``'s pixels, with the time it took.

    The image is downscaled so its longer side is at most ``max_side`` (the time includes this),
    searched with OpenCV's ``createSelectiveSearchSegmentation`` (``fast``: the paper's fast mode,
    HSV and Lab colour spaces, two strategies; ``quality``: more of both; ``single``: one
    segmentation, the cheapest), and the (x, y, w, h) rectangles are mapped back and clipped to the
    image. The *set* of boxes is deterministic; OpenCV's order (the method's pseudo-random ranking
    by hierarchy level) changes from run to run, so it is not treated as a ranking.
    """
    import cv2  # imported here: only this function needs OpenCV

    if not hasattr(cv2, "ximgproc"):
        raise RuntimeError("Selective Search needs OpenCV's contrib modules (opencv-contrib-python-headless).")
    start = time.perf_counter()
    rgb = image.convert("RGB")
    w, h = rgb.size
    scale = min(1.0, max_side / max(w, h))
    small = rgb.resize((max(1, round(w * scale)), max(1, round(h * scale))), PIL.Image.BILINEAR) if scale < 1 else rgb
    bgr = np.ascontiguousarray(np.asarray(small)[:, :, ::-1])
    search = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    search.setBaseImage(bgr)
    {"fast": search.switchToSelectiveSearchFast, "quality": search.switchToSelectiveSearchQuality,
     "single": search.switchToSingleStrategy}[mode]()
    rects = search.process()
    sx, sy = w / small.size[0], h / small.size[1]
    rects_t = torch.as_tensor(np.asarray(rects, dtype=np.float32).reshape(-1, 4))
    boxes = torch.stack(
        [rects_t[:, 0] * sx, rects_t[:, 1] * sy, (rects_t[:, 0] + rects_t[:, 2]) * sx, (rects_t[:, 1] + rects_t[:, 3]) * sy],
        dim=1,
    )
    boxes = clip_boxes_to_image(boxes, (h, w))
    seconds = time.perf_counter() - start
    return CandidateSet("Selective Search", boxes, seconds, False, SearchRun(mode, small.size, (w, h)))


def selective_search_input(trace: Trace, max_side: int = 500, mode: SearchMode = "fast") -> CandidateSet:
    """Selective Search on ``trace``'s photo (``trace.image``), boxes scaled to network-input pixels."""
    found = selective_search(trace.image, max_side, mode)
    found.boxes = trace.from_working(found.boxes)
    return found


def rpn_candidates(trace: Trace, result: FilterResult | None = None) -> CandidateSet:
    """The traced RPN's proposals (input pixels, ranked) and the time the whole first stage took.

    ``result`` is a re-filtering of the trace (other post-processing settings); its time is the
    network's plus that re-filtering's.
    """
    seconds = trace.timings_ms.get("total", float("nan")) / 1000.0
    if result is not None and result is not trace.result:
        seconds += (result.timings_ms.get("filter", 0.0) + result.timings_ms.get("nms", 0.0)
                    - trace.timings_ms.get("filter", 0.0) - trace.timings_ms.get("nms", 0.0)) / 1000.0
    result = result or trace.result
    made = NetworkRun(trace.model.spec.title, trace.model.weights.label, str(trace.model.device))
    return CandidateSet("RPN", result.boxes.float(), seconds, True, made)


@dataclass
class Comparison:
    """Candidate sets of several methods on one photo, and a table comparing them on the gt boxes."""

    sets: list[CandidateSet]
    gt_boxes: Tensor  # (M, 4), same frame as the sets
    rows: list[dict[str, object]] = field(default_factory=list)


def compare(sets: Sequence[CandidateSet], gt_boxes: Tensor) -> Comparison:
    """Count, time and recall (IoU 0.5 and 0.7, all boxes of each method) per method.

    Recall uses each method's full set, so it does not depend on an order; with no gt box the
    recall columns are left out.
    """
    gt = torch.as_tensor(gt_boxes, dtype=torch.float32).reshape(-1, 4)
    rows: list[dict[str, object]] = []
    for s in sets:
        row: dict[str, object] = {"method": s.name, "boxes": s.count, "seconds": round(s.seconds, 4)}
        if gt.shape[0]:
            row["recall@0.5"] = recall_at(s.boxes, gt, 0.5)
            row["recall@0.7"] = recall_at(s.boxes, gt, 0.7)
            row["mean best IoU"] = float(best_iou(gt, s.boxes).mean())
        rows.append(row)
    return Comparison(list(sets), gt, rows)


def before_the_rpn(
    trace: Trace,
    gt_boxes: Tensor,
    spec: AnchorSpec = PAPER_ANCHORS,
    max_side: int = 500,
    mode: SearchMode = "fast",
) -> Comparison:
    """Sliding windows, Selective Search and the RPN on ``trace``'s photo; ``gt_boxes`` in input pixels.

    Sliding windows tile the network input with ``spec``; Selective Search runs on the working
    photo (``trace.image``) and its boxes are scaled to input pixels, so all three share one frame.
    """
    windows = sliding_windows(trace.preprocess.input_size, spec)
    search = selective_search_input(trace, max_side, mode)
    return compare([windows, search, rpn_candidates(trace)], gt_boxes)


# --------------------------------------------------------------------------------------------------
# trained vs untrained
# --------------------------------------------------------------------------------------------------


@dataclass
class LevelHeatmap:
    """One level's objectness as a picture: the best anchor's probability at every cell."""

    name: str
    stride: tuple[int, int]
    prob: Tensor  # (H, W) max over the A anchors of sigmoid(logit)
    best_anchor: Tensor  # (H, W) which anchor gave it


def objectness_heatmaps(trace: Trace) -> list[LevelHeatmap]:
    """Per level, max over anchors of the objectness probability (what "is there an object here?" looks like)."""
    maps = []
    for level in trace.levels:
        prob, arg = level.objectness_map()
        maps.append(LevelHeatmap(level.name, level.stride, prob, arg))
    return maps


@dataclass
class TraceView:
    """One side of the comparison."""

    label: str  # the weights, as the model labels them
    trained: bool
    heatmaps: list[LevelHeatmap]
    boxes: Tensor  # (n, 4) top proposals, input pixels
    scores: Tensor  # (n,)
    stats: dict[str, float]


@dataclass(frozen=True)
class UntrainedOutput:
    """What an untrained network put out on one photo (``ui.widgets.untrained_text`` says it in words)."""

    label: str  # the weights, as the model labels them
    mean: float  # mean objectness probability
    spread: float  # its standard deviation: ~0 when random weights give near-zero features
    largest_shift: float  # px: the largest distance of a decoded box's side from its anchor's


@dataclass
class SideBySide:
    """A trained and an untrained trace of the same photo through the same architecture."""

    left: TraceView
    right: TraceView
    same_input: bool  # the two network inputs are equal (the same photo, the same preprocessing)
    untrained: list[UntrainedOutput]  # one per side with untrained weights


def trace_view(trace: Trace, top_n: int = 20, result: FilterResult | None = None) -> TraceView:
    """Heatmaps, the top proposals and a few numbers that tell learned from random output apart.

    ``result`` is the post-processing to show (default ``trace.result``). "IoU with their anchors"
    compares the decoded boxes *before* clipping, so a box that did not move scores exactly 1.
    """
    result = result or trace.result
    prob = torch.sigmoid(trace.logits)
    picked = result.final_pos[:top_n]
    top_anchors = trace.anchors[result.anchor_index[picked]]
    boxes = result.box[picked]
    moved = box_iou(result.box_unclipped[picked], top_anchors).diagonal() if picked.numel() else torch.zeros(0)
    stats = {
        "max objectness": float(prob.max()),
        "mean objectness": float(prob.mean()),
        "spread of objectness (std)": float(prob.std()),
        "anchors above 0.5": float((prob > 0.5).sum()),
        "mean |delta|": float(trace.deltas.abs().mean()),
        f"IoU of top-{top_n} proposals with their anchors": float(moved.mean()) if moved.numel() else float("nan"),
    }
    return TraceView(trace.model.weights.label, trace.model.is_trained, objectness_heatmaps(trace), boxes,
                     result.prob[picked], stats)


def untrained_output(trace: Trace) -> UntrainedOutput:
    """What an untrained network's output is, measured on this trace: flat scores? unmoved boxes?"""
    prob = torch.sigmoid(trace.logits)
    return UntrainedOutput(trace.model.weights.label, float(prob.mean()), float(prob.std()),
                           float((trace.proposals - trace.anchors).abs().max()))


def side_by_side(first: Trace, second: Trace, top_n: int = 20, settings: FilterSettings | None = None) -> SideBySide:
    """The data for "trained vs untrained": heatmaps per level and top proposals of two traces.

    ``settings`` re-filters both traces the same way (default: each trace's own post-processing).

    Both must come from the same architecture on the same photo (same input size and grids);
    otherwise the heatmaps would not line up and a ``ValueError`` says so.
    """
    if first.preprocess.input_size != second.preprocess.input_size or [l.grid for l in first.levels] != [
        l.grid for l in second.levels
    ]:
        raise ValueError(
            "The two traces must be the same photo through the same architecture (input "
            f"{first.preprocess.input_size} vs {second.preprocess.input_size}, grids "
            f"{[l.grid for l in first.levels]} vs {[l.grid for l in second.levels]})."
        )
    same_input = same_network_input(first, second)
    untrained = [untrained_output(trace) for trace in (first, second) if not trace.model.is_trained]
    results = [None, None] if settings is None else [first.refilter(settings), second.refilter(settings)]
    return SideBySide(trace_view(first, top_n, results[0]), trace_view(second, top_n, results[1]), same_input, untrained)
