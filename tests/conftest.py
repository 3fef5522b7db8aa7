"""Shared fixtures: real photos, the weights folder, and models the tests can trust.

Models:
- ``untrained``: torchvision's own builder with random weights (seed 0). Its features are near zero,
  so every score is 0.5 — good for the machinery, useless as an oracle on its own.
- ``scrambled``: the same architecture with every conv re-drawn (seeded) and calibrated
  (``rpn_viz.testing.random_state_dict``, the one random-checkpoint recipe of the tests and the
  benchmarks), saved once per session as a *custom checkpoint* (``scrambled_checkpoint``, ~78 MB)
  and loaded through ``load_model(checkpoint=...)``: varied scores and boxes, so equality with
  ``model.rpn`` means something; also exercises the loading path.
- ``official``: the real COCO weights, when the file is on this machine (skipped, with the reason, if not).
- ``shipped``: the paper's RPN with the head trained here and shipped in ``rpn_viz/trained/`` (needs
  the ImageNet MobileNetV2 file of ``../shared/weights``; skipped, with the reason, without it).

No test touches the internet: :func:`no_internet` (autouse) lets downloads reach only the loopback,
where tests/test_download.py serves checkpoints it makes (``tests/loopback.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import rpn_viz
import torch

from loopback import loopback_only
from rpn_viz.model import download as download_module
from rpn_viz.model.device import resolve_device
from rpn_viz.model.models import DEFAULT_MODEL, MODELS
from rpn_viz.testing import save_random_checkpoint
from rpn_viz.model.weights import WEIGHTS_DIR_ENV, is_available
from ui.serving import THREADS_ENV

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
PHOTOS = sorted(ASSETS.glob("*.jpg"))

# The app gives the network half the cores when it serves (ui.serving.limit_torch_threads); run
# headless inside this process it must not change the threads of every test that follows.
os.environ.setdefault(THREADS_ENV, str(torch.get_num_threads()))


@pytest.fixture(autouse=True)
def no_internet(monkeypatch) -> list[str]:
    """Every test is offline except for the loopback: returns the URLs that something tried to fetch.

    Downloads (ours and torch.hub's) to any other host fail as on a machine without a network, so an
    app test whose default model is the COCO one sees the offline path, quickly. Failures remembered
    by an earlier test are forgotten first.
    """
    refused: list[str] = []
    monkeypatch.setattr(download_module, "open_url", loopback_only(download_module.open_url, refused))
    monkeypatch.setattr(torch.hub, "download_url_to_file", loopback_only(torch.hub.download_url_to_file, refused))
    download_module.forget_failures()
    yield refused
    download_module.forget_failures()


@pytest.fixture()
def no_weights_folder(monkeypatch, tmp_path) -> Path:
    """No weights folder at all, as on a user's machine: neither ``$RPN_VIZ_WEIGHTS_DIR`` nor the
    shared folder beside the checkout; returns an empty torch hub cache (``$TORCH_HOME`` under tmp)."""
    monkeypatch.delenv(WEIGHTS_DIR_ENV, raising=False)
    monkeypatch.setattr("rpn_viz.model.weights.shared_weights_dir", lambda: None)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    return tmp_path / "torch_home" / "hub" / "checkpoints"


#: cpu always; cuda where this machine has it (elsewhere that case is skipped, saying why).
DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param("cuda", id="cuda", marks=pytest.mark.skipif(
        not torch.cuda.is_available(), reason="no CUDA device here: the cuda case runs on a GPU machine")),
]


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    """The device a device-parametrised test runs its model on (and its oracle, on the same one;
    ``rpn_viz.testing.on_device`` moves a fixture's model there)."""
    return torch.device(request.param)


@pytest.fixture()
def app_device() -> torch.device:
    """The device the app runs its models on here ($RPN_VIZ_DEVICE, else CUDA when present): a test
    that compares the app with a direct run makes that run there too."""
    return resolve_device()


@pytest.fixture(scope="session")
def photos() -> list[Path]:
    assert len(PHOTOS) >= 5, "the sample photos in assets/ are missing"
    return PHOTOS


@pytest.fixture(scope="session")
def untrained() -> rpn_viz.LoadedModel:
    return rpn_viz.load_model(untrained=True, seed=0, device="cpu")


@pytest.fixture(scope="session")
def scrambled_checkpoint(tmp_path_factory) -> Path:
    return save_random_checkpoint(tmp_path_factory.mktemp("ckpt") / "scrambled_mobilenet.pth", seed=0)


@pytest.fixture(scope="session")
def scrambled(scrambled_checkpoint) -> rpn_viz.LoadedModel:
    return rpn_viz.load_model(checkpoint=scrambled_checkpoint, device="cpu")


@pytest.fixture(scope="session")
def official() -> rpn_viz.LoadedModel:
    spec = MODELS[DEFAULT_MODEL]
    if not is_available(spec.official):
        pytest.skip(
            f"official COCO weights {spec.official.filename} are not on this machine "
            f"(looked in ${WEIGHTS_DIR_ENV}, ../shared/weights and the torch hub cache); download them from {spec.official.url}"
        )
    return rpn_viz.load_model(DEFAULT_MODEL, allow_download=False, device="cpu")


@pytest.fixture(scope="session")
def imagenet_backbone() -> None:
    """Skip, saying which file is missing and where it was looked for, without the ImageNet MobileNetV2."""
    from rpn_viz.model.paper import MOBILENET_V2_IMAGENET

    if not is_available(MOBILENET_V2_IMAGENET):
        pytest.skip(
            f"needs {MOBILENET_V2_IMAGENET.filename} (torchvision's ImageNet MobileNetV2) in "
            f"${WEIGHTS_DIR_ENV} ({os.environ.get(WEIGHTS_DIR_ENV, 'unset')}), ../shared/weights or "
            f"torchvision's cache; "
            f"download it from {MOBILENET_V2_IMAGENET.url}"
        )


@pytest.fixture(scope="session")
def shipped(imagenet_backbone) -> rpn_viz.LoadedModel:
    return rpn_viz.load_model("paper_rpn", allow_download=False, device="cpu")
