"""The model registry and :func:`load_model`: official COCO weights, your own checkpoint, or untrained.

Every model here is a torchvision Faster R-CNN; rpn_viz only ever looks at its first stage
(``model.transform``, ``model.backbone`` and ``model.rpn``). Adding a torchvision detector is one
:class:`ModelSpec` more in :data:`MODELS`.
"""

from __future__ import annotations

import os
from typing import Callable
from pathlib import Path

import torch
from torch import nn
from torchvision.models import detection
from torchvision.models.detection import FasterRCNN

from . import paper
from .device import resolve_device
from .download import Progress, find_official
# LoadedModel, ModelSpec, WeightsInfo, FrozenBatchNorm2d live in .loaded (paper builds on them too) and are
# public here as well: rpn_viz.model.models is where a reader looks for "a model".
from .loaded import FrozenBatchNorm2d, LoadedModel, ModelSpec, WeightsInfo, normalize_in_place
from .weights import OfficialFile, WeightsError, is_available, load_state_dict, sha256_of

DEFAULT_MODEL = "mobilenet_v3_large_fpn"
#: The Faster R-CNN paper's RPN on ImageNet MobileNetV2 with the head trained here (rpn_viz.model.paper);
#: ``--checkpoint`` is then a head file saved by ``rpn-viz train --save``.
PAPER_RPN = "paper_rpn"


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "mobilenet_v3_large_fpn",
            "Faster R-CNN MobileNetV3-Large FPN (COCO)",
            detection.fasterrcnn_mobilenet_v3_large_fpn,
            OfficialFile(
                detection.FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1.url,
                "fb6a3cc702b1df54c18a44b26708cd083614211062d0c36d2ca7bf9270df3533",
            ),
            frozen_batchnorm=True,
        ),
        ModelSpec(
            "mobilenet_v3_large_320_fpn",
            "Faster R-CNN MobileNetV3-Large 320 FPN (COCO, low resolution)",
            detection.fasterrcnn_mobilenet_v3_large_320_fpn,
            OfficialFile(
                detection.FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1.url,
                "907ea3f91ff92242bc1baea8049276a3e76bca48ce7560bd268cc029f37977b5",
            ),
            frozen_batchnorm=True,
        ),
        ModelSpec(
            "resnet50_fpn",
            "Faster R-CNN ResNet-50 FPN (COCO)",
            detection.fasterrcnn_resnet50_fpn,
            OfficialFile(
                detection.FasterRCNN_ResNet50_FPN_Weights.COCO_V1.url,
                "258fb6c638b15964ddcdd1ae0748c5eef1be9e732750120cc857feed3faac384",
            ),
            frozen_batchnorm=True,
            frozen_eps_after_load=0.0,
        ),
        ModelSpec(
            "resnet50_fpn_v2",
            "Faster R-CNN ResNet-50 FPN v2 (COCO)",
            detection.fasterrcnn_resnet50_fpn_v2,
            OfficialFile(
                detection.FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1.url,
                "dd69338a24b8d7381807e247652bdc356325bcbaf1cd3e092e00e0a1a58706bf",
            ),
            frozen_batchnorm=False,
        ),
    )
}

def model_names() -> list[str]:
    """Every name :func:`load_model` accepts: the torchvision detectors and ``paper_rpn``."""
    return [*MODELS, PAPER_RPN]


def get_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``, or a one-line error listing the names there are."""
    try:
        return MODELS[name]
    except KeyError:
        raise WeightsError(f"Unknown model {name!r}; choose one of: {', '.join(model_names())}.") from None


def available_models(weights_dir: str | os.PathLike | None = None) -> list[ModelSpec]:
    """Models whose official weights are on this machine (the app and CLI offer only these)."""
    return [spec for spec in MODELS.values() if is_available(spec.official, weights_dir)]


def _freeze_batchnorm(module: nn.Module) -> None:
    """Replace every BatchNorm2d below ``module`` by FrozenBatchNorm2d, as torchvision's trained builds do."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, FrozenBatchNorm2d(child.num_features, eps=child.eps))
        else:
            _freeze_batchnorm(child)


def build(spec: ModelSpec, num_classes: int = 91, trained_layout: bool = True) -> FasterRCNN:
    """An unloaded network with torchvision's layout for trained (or, if not, untrained) weights."""
    model = spec.builder(weights=None, weights_backbone=None, num_classes=num_classes)
    if trained_layout and spec.frozen_batchnorm:
        _freeze_batchnorm(model.backbone)
        normalize_in_place(model.backbone)
    return model


def _apply_frozen_eps(spec: ModelSpec, model: FasterRCNN) -> None:
    """Set FrozenBatchNorm2d.eps as torchvision does after loading this architecture's weights."""
    if spec.frozen_eps_after_load is not None:
        for module in model.modules():
            if isinstance(module, FrozenBatchNorm2d):
                module.eps = spec.frozen_eps_after_load


def num_classes_of(state_dict: dict[str, torch.Tensor]) -> int:
    """Number of classes of a Faster R-CNN state dict, read from its box predictor."""
    key = "roi_heads.box_predictor.cls_score.weight"
    if key not in state_dict:
        raise WeightsError(f"Not a torchvision Faster R-CNN state dict: no {key!r}.")
    return int(state_dict[key].shape[0])


def _load_into(model: FasterRCNN, state_dict: dict[str, torch.Tensor], what: str) -> None:
    """Load strictly, summarising any mismatch in one line that names the offending keys."""
    try:
        result = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as exc:  # shape mismatches: the first detail line names the key
        details = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
        raise WeightsError(f"{what} does not fit this architecture: {(details or [str(exc)])[0][:240]}") from None
    problems = []
    for label, keys in (("missing", result.missing_keys), ("unexpected", result.unexpected_keys)):
        if keys:
            problems.append(f"{len(keys)} {label} key(s), e.g. {', '.join(keys[:3])}")
    if problems:
        raise WeightsError(f"{what} does not fit this architecture: {'; '.join(problems)}.")


def load_model(
    name: str = DEFAULT_MODEL,
    *,
    weights_dir: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    untrained: bool = False,
    seed: int = 0,
    device: str | torch.device | None = None,
    allow_download: bool = True,
    progress: Callable[[Progress], None] | None = None,
) -> LoadedModel:
    """Build a Faster R-CNN and load its weights: official (default), ``checkpoint``, or ``untrained``.

    An official file that is not on this machine is downloaded (unless ``allow_download`` is false);
    ``progress`` receives each :class:`~rpn_viz.model.download.Progress` of that download (``None``:
    silent; ``rpn_viz.load_model``, the Python API, shows a progress line on stderr by default).

    ``name="paper_rpn"`` is the paper's RPN (:mod:`rpn_viz.model.paper`): the head trained here, or your
    head file as ``checkpoint``, or a fresh head with ``untrained``.

    Raises :class:`~rpn_viz.model.weights.WeightsError` with a one-line, actionable message whenever the
    weights cannot be had; it never falls back to random weights.
    """
    if untrained and checkpoint is not None:
        raise WeightsError("Choose either --untrained or --checkpoint, not both.")
    if name == PAPER_RPN:
        if untrained:
            return paper.load_paper_model(weights_dir, seed=seed, device=device, allow_download=allow_download,
                                          progress=progress)
        return paper.load_trained_paper_model(weights_dir, head=checkpoint, device=device,
                                              allow_download=allow_download, progress=progress)
    spec = get_spec(name)
    target = resolve_device(device)
    if untrained:
        torch.manual_seed(seed)
        model = build(spec, trained_layout=False)
        info = WeightsInfo("untrained", f"untrained (random weights, seed {seed})", seed=seed)
        num_classes = 91
    elif checkpoint is not None:
        path = Path(checkpoint)
        state = load_state_dict(path)
        num_classes = num_classes_of(state)
        model = build(spec, num_classes=num_classes)
        _load_into(model, state, f"Checkpoint {path.name}")
        _apply_frozen_eps(spec, model)  # a fine-tuned checkpoint starts from the official build
        digest = sha256_of(path)
        info = WeightsInfo("custom", f"custom checkpoint {path.name} (sha256 {digest[:12]}…)", str(path), digest)
    else:
        path = find_official(spec.official, weights_dir, allow_download=allow_download, progress=progress)
        state = load_state_dict(path)
        num_classes = num_classes_of(state)
        model = build(spec, num_classes=num_classes)
        _load_into(model, state, f"{path.name}")
        _apply_frozen_eps(spec, model)
        info = WeightsInfo("official", f"official COCO weights ({path.name})", str(path), spec.official.sha256)
    model.eval().to(target)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return LoadedModel(spec, model, info, target, num_classes)
