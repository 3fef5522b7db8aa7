"""Shared fixtures: real photos, the weights folder, and models the tests can trust.

Models:
- ``untrained``: torchvision's own builder with random weights (seed 0). Its features are near zero,
  so every score is 0.5 — good for the machinery, useless as an oracle on its own.
- ``scrambled``: the same architecture with every weight re-drawn (He-normal, seeded) and saved as a
  *custom checkpoint* that the tests make, then loaded through ``load_model(checkpoint=...)``: varied
  scores and boxes, so equality with ``model.rpn`` means something; also exercises the loading path.
- ``official``: the real COCO weights, when the file is on this machine (skipped, with the reason, if not).
- ``shipped``: the paper's RPN with the head trained here and shipped in ``rpn_viz/trained/`` (needs
  the ImageNet MobileNetV2 file of ``../shared/weights``; skipped, with the reason, without it).

No test touches the internet: :func:`no_internet` (autouse) lets downloads reach only the loopback,
where tests/test_download.py serves checkpoints it makes (``tests/loopback.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import math

import torch
from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn

import rpn_viz
from loopback import loopback_only
from rpn_viz import weights as weights_module
from rpn_viz.models import DEFAULT_MODEL, MODELS, build
from rpn_viz.weights import WEIGHTS_DIR_ENV, is_available

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
PHOTOS = sorted(ASSETS.glob("*.jpg"))
SHARED_WEIGHTS = ROOT.parent / "shared" / "weights"

if not os.environ.get(WEIGHTS_DIR_ENV) and SHARED_WEIGHTS.is_dir():
    os.environ[WEIGHTS_DIR_ENV] = str(SHARED_WEIGHTS)


@torch.no_grad()
def scrambled_state_dict(seed: int = 0, name: str = DEFAULT_MODEL) -> dict[str, torch.Tensor]:
    """A state dict of the official layout whose every conv is random but *calibrated* (seeded).

    Plain random weights either vanish (torchvision's untrained build) or explode through the
    backbone's depth. Here each conv, in forward order, is re-drawn and rescaled so that its output
    on a real photo has unit spread (LSUV initialisation); the objectness layer is scaled to a spread
    of 0.5 (varied, unsaturated probabilities) and the box layer to 0.3 (moderate deltas).
    """
    generator = torch.Generator().manual_seed(seed)
    model = build(MODELS[name]).eval()
    rpn = model.rpn
    photo = rpn_viz.load_image(ASSETS / "coffee.jpg").image.resize((416, 320))
    x = model.transform.normalize(torch.from_numpy(np.array(photo)).permute(2, 0, 1).float().div(255))[None]
    convs = [m for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    convs += [m for m in rpn.head.modules() if isinstance(m, torch.nn.Conv2d)]
    targets = {id(rpn.head.cls_logits): 0.5, id(rpn.head.bbox_pred): 0.3}
    for conv in convs:
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator))
        if conv.bias is not None:
            conv.bias.zero_()
        outputs: list[torch.Tensor] = []
        handle = conv.register_forward_hook(lambda _m, _i, out: outputs.append(out))
        rpn.head(list(model.backbone(x).values()))
        handle.remove()
        spread = torch.cat([o.flatten() for o in outputs]).std().clamp_min(1e-12)
        conv.weight.mul_(targets.get(id(conv), 1.0) / spread)
    return model.state_dict()


def varied_state_dict(seed: int = 0, num_classes: int = 91, gain: float = 0.9) -> dict[str, torch.Tensor]:
    """torchvision's ``fasterrcnn_mobilenet_v3_large_fpn`` (weights=None) with every float tensor
    re-drawn from a seeded normal: convolutions He-normal × ``gain``, norms near 1, biases small.

    With gain 0.9 the signal neither dies out nor explodes through the backbone, so objectness
    depends on the photo and almost every proposal has its own score (gain 1 saturates to 1.0).
    """
    model = fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None, num_classes=num_classes)
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in model.state_dict().items():
        if value.is_floating_point():
            noise = torch.randn(value.shape, generator=generator)
            if value.dim() >= 2:
                value = noise * gain * math.sqrt(2.0 / value[0].numel())
            elif key.endswith("running_var"):
                value = 1.0 + 0.1 * noise.abs()
            elif key.endswith("weight"):
                value = 1.0 + 0.1 * noise
            else:  # biases, running means
                value = 0.1 * noise
        state[key] = value
    return state


def untrained_app_state() -> dict[str, object]:
    """Session state that opens the app on the untrained network, as the "no trained model" screen's
    button does (only then does the picker offer it): for app tests that need no weights file at all."""
    from ui.resources import UNTRAINED_OK_KEY

    return {UNTRAINED_OK_KEY: True, "model": f"untrained:{DEFAULT_MODEL}"}


@pytest.fixture(autouse=True)
def no_internet(monkeypatch) -> list[str]:
    """Every test is offline except for the loopback: returns the URLs that something tried to fetch.

    Downloads (ours and torch.hub's) to any other host fail as on a machine without a network, so an
    app test whose default model is the COCO one sees the offline path, quickly. Failures remembered
    by an earlier test are forgotten first.
    """
    refused: list[str] = []
    monkeypatch.setattr(weights_module, "open_url", loopback_only(weights_module.open_url, refused))
    monkeypatch.setattr(torch.hub, "download_url_to_file", loopback_only(torch.hub.download_url_to_file, refused))
    weights_module.forget_failures()
    yield refused
    weights_module.forget_failures()


@pytest.fixture(scope="session")
def photos() -> list[Path]:
    assert len(PHOTOS) >= 5, "the sample photos in assets/ are missing"
    return PHOTOS


@pytest.fixture(scope="session")
def untrained() -> rpn_viz.LoadedModel:
    return rpn_viz.load_model(untrained=True, seed=0, device="cpu")


@pytest.fixture(scope="session")
def scrambled_checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "scrambled_mobilenet.pth"
    torch.save(scrambled_state_dict(), path)
    return path


@pytest.fixture(scope="session")
def varied_file(tmp_path_factory) -> Path:
    """``varied_state_dict(seed=0)`` saved with torch.save (~78 MB): a full-size checkpoint, quick to make."""
    path = tmp_path_factory.mktemp("varied") / "varied.pth"
    torch.save(varied_state_dict(seed=0), path)
    return path


@pytest.fixture(scope="session")
def scrambled(scrambled_checkpoint) -> rpn_viz.LoadedModel:
    return rpn_viz.load_model(checkpoint=scrambled_checkpoint, device="cpu")


@pytest.fixture(scope="session")
def official() -> rpn_viz.LoadedModel:
    spec = MODELS[DEFAULT_MODEL]
    if not is_available(spec.official):
        pytest.skip(
            f"official COCO weights {spec.official.filename} are not on this machine "
            f"(looked in ${WEIGHTS_DIR_ENV} and the torch hub cache); download them from {spec.official.url}"
        )
    return rpn_viz.load_model(DEFAULT_MODEL, allow_download=False, device="cpu")


@pytest.fixture(scope="session")
def imagenet_backbone() -> None:
    """Skip, saying which file is missing and where it was looked for, without the ImageNet MobileNetV2."""
    from rpn_viz.paper import MOBILENET_V2_IMAGENET

    if not is_available(MOBILENET_V2_IMAGENET):
        pytest.skip(
            f"needs {MOBILENET_V2_IMAGENET.filename} (torchvision's ImageNet MobileNetV2) in "
            f"${WEIGHTS_DIR_ENV} ({os.environ.get(WEIGHTS_DIR_ENV, 'unset')}) or torchvision's cache; "
            f"download it from {MOBILENET_V2_IMAGENET.url}"
        )


@pytest.fixture(scope="session")
def shipped(imagenet_backbone) -> rpn_viz.LoadedModel:
    return rpn_viz.load_model("paper_rpn", allow_download=False, device="cpu")
