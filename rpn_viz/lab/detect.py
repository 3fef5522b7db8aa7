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
from torchvision.ops import boxes as box_ops

from ..pipeline.filtering import FilterResult
from ..model.models import MODELS
from ..pipeline.tracing import Trace


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


@dataclass(frozen=True)
class ProposalView:
    """What the second stage makes of one proposal on its own: its best class, that class's
    probability (softmax over all classes, background included) and the box refined for it."""

    label: int
    name: str
    score: float
    background: float
    box: tuple[float, float, float, float]  # network-input pixels, clipped to the image


@torch.inference_mode()
def one_proposal(trace: Trace, box: Tensor) -> ProposalView:
    """Run ``roi_heads``' own layers (RoIAlign, box head, predictor, box coder) on one proposal box.

    Detections lose track of the proposal they came from; this keeps it, for following one box.
    The same ops as ``RoIHeads.postprocess_detections`` before its score threshold and NMS.
    """
    heads, device = trace.model.model.roi_heads, trace.model.device
    features = OrderedDict((level.name, level.features[None].to(device)) for level in trace.levels)
    w, h = trace.preprocess.input_size
    proposal = box.reshape(1, 4).to(device=device, dtype=torch.float32)
    logits, regression = heads.box_predictor(heads.box_head(heads.box_roi_pool(features, [proposal], [(h, w)])))
    probs = torch.softmax(logits, -1)[0].cpu()
    boxes = heads.box_coder.decode(regression, [proposal]).reshape(-1, 4)
    boxes = box_ops.clip_boxes_to_image(boxes, (h, w)).cpu()
    label = int(probs[1:].argmax()) + 1
    names = class_names(trace)
    name = names[label] if label < len(names) else f"class {label}"
    return ProposalView(label, name, float(probs[label]), float(probs[0]), tuple(boxes[label].tolist()))
