"""Recall of the trained RPN and of what came before it, on the bundled validation photos.

A ground-truth box is recalled by the top-n boxes of a method when one of them overlaps it with
IoU ≥ 0.5 (the proposal papers' measure). Recall is pooled over every box of every photo of the
split. Each method ranks its own boxes:

* an RPN (the head trained here, the untrained head, a COCO model): its proposals, best objectness
  first, with the model's own test settings;
* Selective Search (fast mode, as in R-CNN): in the order OpenCV returns them;
* sliding windows (the paper's 9 anchor shapes at every 16 px): they have no score, so a seeded
  random order — recall@n is that of n windows drawn at random.

``rpn-viz evaluate`` (:mod:`rpn_viz.commands.evaluate`) prints the table (README's copy comes from it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import Tensor

from .baselines import selective_search, sliding_windows
from ..training.dataset import AnnotatedPhoto, load_photos
from ..io.images import LoadedImage
from ..model.models import LoadedModel
from .recall import best_iou_by_rank
from ..pipeline.tracing import trace

TOP_NS: tuple[int, ...] = (10, 100, 300)
IOU = 0.5


@dataclass
class MethodRecall:
    """One method's pooled recall on a set of photos."""

    method: str
    top_ns: tuple[int, ...]
    hits: dict[int, int] = field(default_factory=dict)  # top-n → boxes recalled
    boxes: int = 0  # ground-truth boxes seen
    seconds: float = 0.0  # producing the candidates, all photos

    def add(self, found: tuple[Tensor, float], gt: Tensor, iou: float = IOU) -> None:
        """Count one photo: ``found`` = (ranked (N, 4) best first, seconds), ``gt`` (M, 4) in the same frame."""
        ranked, seconds = found
        running = best_iou_by_rank(ranked, gt)  # M × N
        for n in self.top_ns:
            best = running[:, min(n, running.shape[1]) - 1] if running.shape[1] else torch.zeros(gt.shape[0])
            self.hits[n] = self.hits.get(n, 0) + int((best >= iou).sum())
        self.boxes += int(gt.shape[0])
        self.seconds += seconds

    def recall(self, n: int) -> float:
        return self.hits.get(n, 0) / self.boxes if self.boxes else float("nan")


def rpn_ranked(model: LoadedModel, image: LoadedImage) -> tuple[Tensor, float]:
    """An RPN's proposals (original-photo pixels, best first) and the seconds its first stage took."""
    clock = time.perf_counter()
    traced = trace(model, image)
    return traced.to_original(traced.result.boxes.float().cpu()), time.perf_counter() - clock


def search_ranked(image: LoadedImage) -> tuple[Tensor, float]:
    """Selective Search boxes in OpenCV's order, original-photo pixels, and their seconds."""
    found = selective_search(image.image)
    return found.boxes / image.downscale, found.seconds


def windows_ranked(image: LoadedImage, scale: float, seed: int) -> tuple[Tensor, float]:
    """Every sliding window (the paper's k = 9 shapes every 16 px of the ``scale``-resized photo) in a
    seeded random order, original-photo pixels."""
    w, h = image.original_size
    found = sliding_windows((round(w * scale), round(h * scale)))
    order = torch.randperm(found.count, generator=torch.Generator().manual_seed(seed))
    return found.boxes[order] / scale, found.seconds


def paper_scale(size: tuple[int, int]) -> float:
    """The paper's resize factor: short side 600, long side at most 1000."""
    from ..model.paper import MAX_SIZE, MIN_SIZE

    return min(MIN_SIZE / min(size), MAX_SIZE / max(size))


def recall_table(
    photos: Sequence[AnnotatedPhoto],
    models: Sequence[tuple[str, LoadedModel]],
    top_ns: Sequence[int] = TOP_NS,
    baselines: bool = True,
    seed: int = 0,
) -> list[MethodRecall]:
    """Pooled recall@n (IoU ≥ 0.5) of each model and of the two baselines on ``photos``."""
    rows = {name: MethodRecall(name, tuple(top_ns)) for name, _ in models}
    if baselines:
        rows["Selective Search (fast)"] = MethodRecall("Selective Search (fast)", tuple(top_ns))
        rows["sliding windows (random order)"] = MethodRecall("sliding windows (random order)", tuple(top_ns))
    for entry, image in load_photos(photos):
        gt = entry.box_tensor()
        for name, model in models:
            rows[name].add(rpn_ranked(model, image), gt)
        if baselines:
            rows["Selective Search (fast)"].add(search_ranked(image), gt)
            rows["sliding windows (random order)"].add(windows_ranked(image, paper_scale(image.original_size), seed), gt)
    return list(rows.values())


def format_table(rows: Sequence[MethodRecall], photos: int) -> str:
    """The table as Markdown (README's copy)."""
    top_ns = rows[0].top_ns if rows else TOP_NS
    head = "| method | " + " | ".join(f"recall@{n}" for n in top_ns) + " | s / photo |"
    lines = [head, "|---|" + "---:|" * (len(top_ns) + 1)]
    for row in rows:
        cells = " | ".join(f"{row.recall(n):.2f}" for n in top_ns)
        lines.append(f"| {row.method} | {cells} | {row.seconds / max(photos, 1):.2f} |")
    return "\n".join(lines)
