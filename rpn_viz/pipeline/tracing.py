"""One forward pass through a Faster R-CNN's first stage, keeping every intermediate.

:func:`trace` calls the model's own modules in the order ``model.rpn`` calls them — transform,
backbone, head (3×3 conv, then the objectness and box-regression 1×1 convs), anchor generator, box
decoding, post-processing — and keeps each output. Nothing is computed twice, and the proposals equal
``model.rpn``'s (tests/test_oracle.py proves it). ``Trace.refilter`` re-runs only the
post-processing, for the sliders.

Shapes (per level ``l``: H×W cells, A anchors per cell, C channels):
    features   C×H×W     backbone/FPN output
    conv       C×H×W     the head's 3×3 conv + ReLU
    objectness A×H×W     logits (torchvision: k sigmoid logits; the paper: 2k softmax scores)
    deltas     A×4×H×W   (dx, dy, dw, dh) per anchor
    anchors    H×W×A×4   (x1, y1, x2, y2), network-input pixels
    decoded    H×W×A×4   anchors moved by their deltas
Flat tensors concatenate all levels in torchvision's order: level, then row, column, anchor.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence, Union

import PIL.Image
import torch
from torch import Tensor
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import concat_box_prediction_layers
from torchvision.transforms.functional import convert_image_dtype, pil_to_tensor

from .anchors import AnchorShape, anchor_shapes
from ..model.device import to_cpu
from .filtering import FilterResult, FilterSettings, filter_stages
from ..io.adaptations import Adaptation
from ..io.images import LoadedImage, load_image
from ..model.models import LoadedModel

if TYPE_CHECKING:
    import numpy

ImageInput = Union[PIL.Image.Image, LoadedImage, str, os.PathLike, bytes]


@dataclass
class LevelTrace:
    """Everything the RPN computed on one feature level (CPU tensors, copied once from the model's device)."""

    index: int
    name: str
    stride: tuple[int, int]  # (sy, sx) input pixels per cell
    features: Tensor  # C×H×W
    conv_shape: tuple[int, int, int]  # C×H×W of the head's 3×3 conv + ReLU (the activations themselves, the
    # largest tensor of a trace, are not kept: 4.5 MB for the paper's head, and only their shape is shown)
    objectness: Tensor  # A×H×W logits
    deltas: Tensor  # A×4×H×W
    anchors: Tensor  # H×W×A×4
    decoded: Tensor  # H×W×A×4
    anchor_shapes: list[AnchorShape]
    offset: int  # row of this level's first anchor in the flat list

    @property
    def grid(self) -> tuple[int, int]:
        """(H, W): feature-map rows and columns."""
        return int(self.features.shape[1]), int(self.features.shape[2])

    @property
    def num_anchors(self) -> int:
        return self.anchors.shape[0] * self.anchors.shape[1] * self.anchors.shape[2]

    def objectness_map(self) -> tuple[Tensor, Tensor]:
        """(H, W) best objectness probability of each cell and (H, W) its anchor (:func:`objectness_map`)."""
        return objectness_map(self.objectness)

    def flat_index(self, row: int, col: int, anchor: int) -> int:
        """Row in the trace's flat anchor list of (row, col, anchor) on this level."""
        h, w = self.grid
        return self.offset + (row * w + col) * len(self.anchor_shapes) + anchor


@dataclass
class Preprocess:
    """What ``model.transform`` did to the photo."""

    original_size: tuple[int, int]  # (w, h) as displayed, EXIF applied
    working_size: tuple[int, int]  # (w, h) handed to the model (huge photos are downscaled first)
    input_size: tuple[int, int]  # (w, h) after the model's resize: proposals are clipped to this
    padded_size: tuple[int, int]  # (w, h) of the batch tensor (multiple of 32): anchors tile this
    min_size: int
    max_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_pixels: Tensor  # H×W×3 uint8: the network input as a picture (normalisation undone, padding cut)
    adapted: tuple[Adaptation, ...] = ()  # what load_image changed in the photo (rpn_viz.io.adaptations)

    @property
    def scale(self) -> tuple[float, float]:
        """(sx, sy): network-input pixels per original pixel."""
        return self.input_size[0] / self.original_size[0], self.input_size[1] / self.original_size[1]


@dataclass
class Trace:
    """One image through one model's RPN, with everything needed to explain its proposals."""

    model: LoadedModel
    image: PIL.Image.Image  # the working RGB image (what the network saw before its own resize)
    preprocess: Preprocess
    levels: list[LevelTrace]
    logits: Tensor  # (N,) all levels
    deltas: Tensor  # (N, 4)
    anchors: Tensor  # (N, 4)
    proposals: Tensor  # (N, 4) decoded boxes, unclipped
    default_settings: FilterSettings
    result: FilterResult
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def rpn(self) -> torch.nn.Module:
        """The traced model's ``RegionProposalNetwork`` (its anchor generator, box coder, head)."""
        return self.model.model.rpn

    @property
    def num_anchors_per_level(self) -> list[int]:
        return [level.num_anchors for level in self.levels]

    def level_of(self, flat_index: int) -> LevelTrace:
        """The level a flat anchor row belongs to."""
        for level in reversed(self.levels):
            if flat_index >= level.offset:
                return level
        raise IndexError(flat_index)

    def locate(self, flat_index: int) -> tuple[LevelTrace, int, int, int]:
        """(level, row, col, anchor) of a flat anchor row."""
        level = self.level_of(flat_index)
        local = flat_index - level.offset
        a = len(level.anchor_shapes)
        cell, anchor = divmod(local, a)
        row, col = divmod(cell, level.grid[1])
        return level, row, col, anchor

    def refilter(self, settings: FilterSettings | None = None, **changes: float | int | None) -> FilterResult:
        """Post-processing again with other settings — no network is run.

        ``trace.refilter(nms_iou=0.5, post_nms_top_n=100)`` changes those and keeps the model's own
        values for the rest.
        The boxes go back to the model's device for it, so the result is what ``model.rpn`` with these
        settings gives on that device (a GPU's NMS and top-k are exact to themselves, not to the CPU's).
        """
        chosen = (settings or self.default_settings).with_changes(**changes)
        h, w = self.preprocess.input_size[1], self.preprocess.input_size[0]
        device = self.model.device
        return filter_stages(self.proposals.to(device), self.logits.to(device), self.num_anchors_per_level, (h, w),
                             chosen)

    def to_original(self, boxes: Tensor) -> Tensor:
        """Boxes from network-input pixels to the original photo's pixels (as displayed)."""
        sx, sy = self.preprocess.scale
        return boxes / torch.tensor([sx, sy, sx, sy], dtype=boxes.dtype)

    def _working_scale(self, dtype: torch.dtype) -> Tensor:
        """Network-input pixels per ``trace.image`` pixel, as (sx, sy, sx, sy)."""
        sx = self.preprocess.input_size[0] / self.preprocess.working_size[0]
        sy = self.preprocess.input_size[1] / self.preprocess.working_size[1]
        return torch.tensor([sx, sy, sx, sy], dtype=dtype)

    def to_working(self, boxes: Tensor) -> Tensor:
        """Boxes from network-input pixels to pixels of ``trace.image`` (the photo the app draws on)."""
        return boxes / self._working_scale(boxes.dtype)

    def from_working(self, boxes: Tensor) -> Tensor:
        """Boxes from ``trace.image`` pixels to network-input pixels (the inverse of :meth:`to_working`)."""
        return boxes * self._working_scale(boxes.dtype)

    def input_view(self) -> "numpy.ndarray":
        """The network input as an H×W×3 uint8 picture: normalisation undone, padding cropped."""
        return self.preprocess.input_pixels.numpy()

    def input_tensor(self) -> Tensor:
        """The 3×H×W normalised, padded network input on the model's device, recomputed with the model's own transform.

        Bit-identical to what :func:`trace` fed the backbone (same photo, same deterministic
        transform). A trace does not keep it: 12 MB per photo for a COCO model, and only the
        receptive-field lab needs it.
        """
        return network_input(self.model, self.image).tensors[0]

    def to_input(self, boxes: Tensor) -> Tensor:
        """Boxes from original-photo pixels to network-input pixels."""
        sx, sy = self.preprocess.scale
        return boxes * torch.tensor([sx, sy, sx, sy], dtype=boxes.dtype)


def as_loaded_image(image: ImageInput) -> LoadedImage:
    """Accept a path, bytes, a PIL image or a :class:`LoadedImage`."""
    if isinstance(image, LoadedImage):
        return image
    if isinstance(image, PIL.Image.Image):
        rgb = image.convert("RGB")
        return LoadedImage(rgb, rgb.size, 1.0, image.format or "PIL", image.mode, None)
    return load_image(image)


class _Clock:
    """Wall-clock stage timer that waits for the GPU before reading the time."""

    def __init__(self, device: torch.device) -> None:
        self.sync: Callable[[], None] = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        self.times: dict[str, float] = {}
        self.start = time.perf_counter()

    def restart(self) -> None:
        """Start the next stage now (after a stage that timed itself)."""
        self.start = time.perf_counter()

    def lap(self, stage: str) -> None:
        self.sync()
        now = time.perf_counter()
        self.times[stage] = (now - self.start) * 1000.0
        self.start = now


def head_parts(head: torch.nn.Module, feature: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(3×3-conv activations, objectness logits, deltas) of one level, with the head's own layers.

    torchvision's ``RPNHead`` computes ``t = conv(x)``, then ``cls_logits(t)`` and ``bbox_pred(t)``;
    calling the same layers in the same order gives its exact outputs. A head of another layout
    (the paper's 2k-softmax head) provides ``trace_parts`` instead.
    """
    if hasattr(head, "trace_parts"):
        return head.trace_parts(feature)
    t = head.conv(feature)
    return t, head.cls_logits(t), head.bbox_pred(t)


def objectness_map(objectness: Tensor) -> tuple[Tensor, Tensor]:
    """(H, W) max over the A anchors of sigmoid(logit), and (H, W) which anchor gave it, of A×H×W logits.

    "Is there an object here?" per cell, as one picture: the heatmap of the head step, the lab and
    the learning page.
    """
    return torch.sigmoid(objectness).max(dim=0)


def network_input(loaded: LoadedModel, image: PIL.Image.Image) -> ImageList:
    """The model's own transform of an RGB photo (resize, normalise, pad) on its device: the backbone's input.

    The photo becomes floats in [0, 1] on the CPU exactly as torchvision's detection weights' preset
    makes them (``weights.transforms()``: ``pil_to_tensor``, then ``convert_image_dtype``); that
    tensor goes to the model's device and ``model.transform`` runs there, as in ``model([tensor])``.
    Dividing by 255 on a GPU instead would differ in the last bit (CUDA multiplies by the reciprocal
    of a scalar), and cuDNN grows that into visibly different proposals.
    """
    pixels = convert_image_dtype(pil_to_tensor(image), torch.float32).to(loaded.device)
    images, _ = loaded.model.transform([pixels])
    return images


def same_network_input(first: Trace, second: Trace) -> bool:
    """Whether two traces fed their backbones the very same tensor: the same photo through the same
    transform settings (the transform is deterministic), without recomputing either input."""
    a, b = first.preprocess, second.preprocess
    settings = lambda p: (p.input_size, p.padded_size, p.min_size, p.max_size, p.mean, p.std)  # noqa: E731
    return settings(a) == settings(b) and first.image.size == second.image.size and (
        first.image is second.image or first.image.tobytes() == second.image.tobytes())


def _as_picture(tensor: Tensor, size: tuple[int, int], mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """H×W×3 uint8 of a normalised, padded 3×H'×W' input: normalisation undone, padding cropped.

    Made on the input's device, so a GPU sends a quarter of the bytes (uint8, not float32)."""
    w, h = size
    per_channel = lambda values: torch.tensor(values, device=tensor.device).view(3, 1, 1)  # noqa: E731
    pixels = tensor[:, :h, :w] * per_channel(std) + per_channel(mean)
    return (pixels.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous()


@torch.inference_mode()
def trace(loaded: LoadedModel, image: ImageInput, settings: FilterSettings | None = None) -> Trace:
    """Run ``loaded``'s transform, backbone and RPN on ``image`` and keep every intermediate."""
    model, device = loaded.model, loaded.device
    rpn = model.rpn
    source = as_loaded_image(image)
    clock = _Clock(device)

    images = network_input(loaded, source.image)
    clock.lap("preprocess")

    features = model.backbone(images.tensors)
    clock.lap("backbone")

    feature_list = list(features.values())
    parts = [head_parts(rpn.head, f) for f in feature_list]
    objectness = [p[1] for p in parts]
    deltas = [p[2] for p in parts]
    clock.lap("head")

    anchors = rpn.anchor_generator(images, feature_list)[0]
    clock.lap("anchors")

    num_per_level = [o.shape[1] * o.shape[2] * o.shape[3] for o in objectness]
    flat_logits, flat_deltas = concat_box_prediction_layers(objectness, deltas)
    decoded = rpn.box_coder.decode(flat_deltas, [anchors]).view(-1, 4)
    clock.lap("decode")

    settings = settings or FilterSettings.from_rpn(rpn)
    input_h, input_w = images.image_sizes[0]
    result = filter_stages(decoded, flat_logits.flatten(), num_per_level, (input_h, input_w), settings)
    clock.times.update({k: v for k, v in result.timings_ms.items() if k in ("filter", "nms")})
    clock.restart()

    # Everything a trace keeps, to the CPU in one transfer (to_cpu): levels, flat tensors, the picture.
    transform = model.transform
    input_h, input_w = int(input_h), int(input_w)
    padded_h, padded_w = (int(d) for d in images.tensors.shape[-2:])
    picture = _as_picture(images.tensors[0], (input_w, input_h), transform.image_mean, transform.image_std)
    names = [str(name) for name in features]
    shapes = [tuple(int(d) for d in p[1].shape[1:]) for p in parts]  # (A, H, W) per level
    count = len(names)
    kept = to_cpu([*(f[0] for f in feature_list), *(p[1][0] for p in parts),
                   *(p[2][0].view(a, 4, h, w) for p, (a, h, w) in zip(parts, shapes)),
                   flat_logits.flatten(), flat_deltas, anchors, decoded, picture])
    cpu_features, cpu_objectness, cpu_deltas = kept[:count], kept[count:2 * count], kept[2 * count:3 * count]
    cpu_logits, cpu_flat_deltas, cpu_anchors, cpu_decoded, cpu_picture = kept[3 * count:]
    clock.lap("to CPU")

    levels: list[LevelTrace] = []
    offset = 0
    for index, (a, h, w) in enumerate(shapes):
        size = a * h * w
        levels.append(
            LevelTrace(
                index=index,
                name=names[index],
                stride=(padded_h // h, padded_w // w),
                features=cpu_features[index],
                conv_shape=tuple(int(d) for d in parts[index][0].shape[1:]),
                objectness=cpu_objectness[index],
                deltas=cpu_deltas[index],
                anchors=cpu_anchors[offset : offset + size].view(h, w, a, 4),
                decoded=cpu_decoded[offset : offset + size].view(h, w, a, 4),
                anchor_shapes=anchor_shapes(rpn.anchor_generator, index),
                offset=offset,
            )
        )
        offset += size

    preprocess = Preprocess(
        original_size=source.original_size,
        working_size=source.image.size,
        input_size=(input_w, input_h),
        padded_size=(padded_w, padded_h),
        min_size=int(transform.min_size[0]),
        max_size=int(transform.max_size),
        mean=tuple(float(m) for m in transform.image_mean),
        std=tuple(float(s) for s in transform.image_std),
        input_pixels=cpu_picture,
        adapted=source.adapted,
    )
    timings = dict(clock.times)
    timings["total"] = math.fsum(timings.values())
    return Trace(
        model=loaded,
        image=source.image,
        preprocess=preprocess,
        levels=levels,
        logits=cpu_logits,
        deltas=cpu_flat_deltas,
        anchors=cpu_anchors,
        proposals=cpu_decoded,
        default_settings=settings,
        result=result,
        timings_ms=timings,
    )
