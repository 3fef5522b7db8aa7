"""The second stage on the RPN's proposals: what Faster R-CNN finally detects.

Faster R-CNN's ``roi_heads`` crops every proposal out of the feature maps (RoIAlign), classifies it
and refines its box once more. Running it on a trace's proposals — the ones the app shows, with the
sidebar's settings — closes the story: these crops become these detections.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import Tensor

from .filtering import FilterResult
from .models import MODELS
from .tracing import Trace


@dataclass(frozen=True)
class Detections:
    """Final detections, network-input pixels, best first."""

    boxes: Tensor  # (D, 4)
    scores: Tensor  # (D,)
    labels: Tensor  # (D,) class indices
    names: list[str]


def class_names(trace: Trace) -> list[str]:
    """Category names: COCO's for official weights, 'class k' for a custom checkpoint."""
    spec = MODELS.get(trace.model.name)
    if trace.model.weights.kind == "official" and spec is not None:
        from torchvision.models.detection import FasterRCNN_MobileNet_V3_Large_FPN_Weights as coco

        return list(coco.COCO_V1.meta["categories"])
    return [f"class {k}" for k in range(trace.model.num_classes)]


def has_second_stage(trace: Trace) -> bool:
    """Whether the traced model is a full detector (the paper RPN on its own is not)."""
    return hasattr(trace.model.model, "roi_heads")


@torch.inference_mode()
def second_stage(trace: Trace, result: FilterResult | None = None) -> Detections:
    """Run the detector's ``roi_heads`` on ``result``'s proposals with the trace's feature maps."""
    result = result or trace.result
    model, device = trace.model.model, trace.model.device
    features = OrderedDict((level.name, level.features[None].to(device)) for level in trace.levels)
    w, h = trace.preprocess.input_size
    detections, _ = model.roi_heads(features, [result.boxes.to(device)], [(h, w)])
    found = detections[0]
    names = class_names(trace)
    labels = found["labels"].cpu()
    return Detections(
        boxes=found["boxes"].cpu(),
        scores=found["scores"].cpu(),
        labels=labels,
        names=[names[int(k)] if int(k) < len(names) else f"class {int(k)}" for k in labels],
    )
