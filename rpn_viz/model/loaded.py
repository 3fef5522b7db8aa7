"""What a loaded model is, shared by the torchvision zoo (:mod:`rpn_viz.model.models`) and the paper's RPN
(:mod:`rpn_viz.model.paper`): its spec, its weights' facts, and the memory-lean FrozenBatchNorm2d.

Here, below both, so that ``models.load_model`` can build the paper's RPN and the paper's RPN can be
a ``LoadedModel`` without either importing the other in a circle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.ops import misc

from .weights import OfficialFile


@dataclass(frozen=True)
class ModelSpec:
    """How to build one torchvision Faster R-CNN exactly as torchvision builds its trained version."""

    name: str
    title: str
    builder: Callable[..., FasterRCNN]
    official: OfficialFile
    # torchvision builds trained backbones with FrozenBatchNorm2d (plain BatchNorm2d when untrained);
    # the two round differently, so we rebuild the trained layout to get the official numbers.
    frozen_batchnorm: bool
    # torchvision sets FrozenBatchNorm2d.eps to 0 after loading ResNet-50 FPN v1's COCO weights.
    frozen_eps_after_load: float | None = None


WeightsKind = Literal["official", "custom", "untrained", "trained here"]  # "trained here": rpn_viz.training.session


@dataclass(frozen=True)
class WeightsInfo:
    """What the network's weights are; the app and the JSON always show this next to results."""

    kind: WeightsKind
    label: str  # e.g. "official COCO", "custom (sha256 1a2b3c4d…)", "untrained (seed 0)"
    path: str | None = None
    sha256: str | None = None
    seed: int | None = None

    def as_json(self) -> dict[str, object]:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass
class LoadedModel:
    """A Faster R-CNN in eval mode on its device, with the facts needed to label it honestly."""

    spec: ModelSpec
    model: FasterRCNN
    weights: WeightsInfo
    device: torch.device
    num_classes: int

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def is_trained(self) -> bool:
        return self.weights.kind != "untrained"


class FrozenBatchNorm2d(misc.FrozenBatchNorm2d):
    """torchvision's ``FrozenBatchNorm2d``, computing the same numbers in less fresh memory.

    torchvision's forward returns ``x * scale + bias``: two new activation-sized tensors per layer.
    Here ``bias`` is added in place into the product; and where ``x`` is a convolution's output that
    nothing else holds (:func:`normalize_in_place`, inference only), ``x`` itself is scaled. Same two
    roundings in the same order, so the output is bit-identical (``tests/test_oracle.py`` compares
    whole networks with ``torch.equal``), while a COCO-model trace maps and zeroes a third less
    memory: with the server's 1 MB mmap threshold every fresh activation costs page faults
    (``ui/serving.py``). Autograd is unaffected: with gradients on, ``x`` is never written.
    """

    in_place: bool = False  # set by normalize_in_place: x is a private convolution output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.reshape(1, -1, 1, 1)  # (1, C, 1, 1) each, as in torchvision
        b = self.bias.reshape(1, -1, 1, 1)
        rv = self.running_var.reshape(1, -1, 1, 1)
        rm = self.running_mean.reshape(1, -1, 1, 1)
        scale = w * (rv + self.eps).rsqrt()
        bias = b - rm * scale
        if self.in_place and not (torch.is_grad_enabled() and x.requires_grad):
            return x.mul_(scale).add_(bias)
        return (x * scale).add_(bias)


def normalize_in_place(model: nn.Module) -> int:
    """Let every FrozenBatchNorm2d that directly follows a Conv2d in an ``nn.Sequential`` (torchvision's
    ``Conv2dNormActivation``: conv → norm → activation) normalise the conv's output in place: that
    output is a fresh tensor only the Sequential holds. Returns how many layers were set."""
    count = 0
    for sequence in model.modules():
        if isinstance(sequence, nn.Sequential):
            layers = list(sequence)
            for before, layer in zip(layers, layers[1:]):
                if isinstance(before, nn.Conv2d) and isinstance(layer, FrozenBatchNorm2d):
                    layer.in_place = True
                    count += 1
    return count
