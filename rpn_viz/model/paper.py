"""The Faster R-CNN paper's Region Proposal Network on an ImageNet backbone, in torchvision's parts.

Ren et al., "Faster R-CNN" (2015), section 3.1: a 3×3 conv with 512 filters + ReLU slides over the
backbone's last shared feature map; two sibling 1×1 convs give, per cell, 2k object/background
scores (a softmax per anchor) and 4k box deltas, for k = 9 anchors (128², 256², 512² × 1:2, 1:1, 2:1);
photos are resized so their short side is 600. New layers start as N(0, 0.01²), biases 0.

Here the backbone is torchvision's ``mobilenet_v2`` with its official ImageNet weights, cut where its
feature map has stride 16 (``features[:14]``, 96 channels — the paper's VGG-16 conv5_3 has stride 16
too). Everything else is torchvision's own: ``GeneralizedRCNNTransform`` (resize, ImageNet
normalisation), ``AnchorGenerator``, ``RegionProposalNetwork`` (matching, sampling, loss, decoding,
NMS). The only new module is :class:`PaperRPNHead`, which keeps the paper's 2k softmax scores and
hands ``RegionProposalNetwork`` the k logits it expects: ``logit = object − background``, because
``sigmoid(o − b) = eᵒ / (eᵒ + eᵇ)`` is exactly the softmax probability of "object". For the same
reason torchvision's binary cross-entropy on that logit *is* the paper's 2-class log loss.

The head shipped with the project (:data:`SHIPPED_HEAD`) was trained with the backbone's last three
stride-16 blocks, as the paper fine-tunes its backbone's upper layers with the RPN: for training,
:func:`split_for_tuning` cuts the same network lower and :class:`TunedHead` holds those blocks and the
head; :func:`load_head` puts a saved one back into the usual model.

Three numbers differ from the paper, each chosen by measuring recall on the bundled photos: NMS
keeps proposals overlapping by up to IoU 0.55 (:data:`NMS_IOU`; the paper: 0.7), starting from the
best 12,000 at test time too (:data:`PRE_NMS_TOP_N`; the paper's code: 6,000), and ``rpn-viz train``
labels anchors positive from IoU 0.45 (:data:`TRAIN_POSITIVE_IOU`; the paper: 0.7).

The result is a :class:`~rpn_viz.model.models.LoadedModel` like the COCO ones, so ``rpn_viz.trace`` and
``Trace.refilter`` work on it unchanged. With a fresh head it is labelled *untrained*: an ImageNet
backbone does not make an RPN — the head is what proposes, and :mod:`rpn_viz.training.session` trains it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from typing import Callable
from collections import OrderedDict
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models import MobileNet_V2_Weights, mobilenet_v2
from torchvision.models.detection._utils import Matcher
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.rpn import RegionProposalNetwork
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from .device import resolve_device
from .loaded import FrozenBatchNorm2d, LoadedModel, ModelSpec, WeightsInfo, normalize_in_place
from .download import Progress, find_official
from .weights import OfficialFile, WeightsError, load_state_dict, sha256_of

#: torchvision's ``MobileNet_V2_Weights.IMAGENET1K_V1`` file and the sha256 of its bytes.
MOBILENET_V2_IMAGENET = OfficialFile(
    MobileNet_V2_Weights.IMAGENET1K_V1.url,
    "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
)

# The paper's settings (section 3.1.1 anchors, 3.1.3 and 3.3 implementation details).
ANCHOR_SIZES: tuple[int, ...] = (128, 256, 512)
ASPECT_RATIOS: tuple[float, ...] = (0.5, 1.0, 2.0)  # torchvision's height / width
MIN_SIZE = 600  # short side of the network input
MAX_SIZE = 1000  # long side cap (py-faster-rcnn's)
HEAD_CHANNELS = 512  # the 3×3 conv's filters (ZF: 256, VGG-16: 512)
INIT_STD = 0.01  # "zero-mean Gaussian distribution with standard deviation 0.01"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FG_IOU, BG_IOU = 0.7, 0.3  # positive / negative anchor IoU thresholds
BATCH_PER_IMAGE, POSITIVE_FRACTION = 256, 0.5  # the mini-batch of sampled anchors
# The paper keeps ~2000 proposals per image after NMS 0.7 for training and the top 300 at test time
# (sections 3.3, 4.1); the pre-NMS numbers are those of its reference code (py-faster-rcnn's config),
# except that testing, too, takes the best 12,000 (py-faster-rcnn: 6,000): NMS at IoU 0.55 (below)
# removes more boxes, and from 6,000 it left fewer than 300 on some photos (the wine corner: 269).
# From 12,000 it fills the 300: recall@300 on the validation photos 0.76 → 0.79, for 30 ms instead of
# 6.5 to re-run the post-processing of a photo on 2 CPU cores (bench/benchmark.py).
PRE_NMS_TOP_N = {"training": 12000, "testing": 12000}
POST_NMS_TOP_N = {"training": 2000, "testing": 300}
#: NMS IoU 0.55, not the paper's 0.7 (chosen by measurement, like ``TRAIN_POSITIVE_IOU`` below).
#: Recall counts a box as found from IoU 0.5, so a proposal overlapping a better-scored one by more than
#: about that mostly finds the same boxes again; suppressing it gives its place among the top 300 to
#: another object. With the shipped head it raised recall@100 / @300 from 0.58 / 0.70 to 0.63 / 0.76 on
#: the validation photos and from 0.80 / 0.88 to 0.88 / 0.89 on hand-boxed ones (README, "The offline
#: model"). The NMS IoU slider in the app shows any other value.
NMS_IOU = 0.55
PAPER_NMS_IOU = 0.7  # the paper's (section 3.3), for the app to say so
SCORE_THRESH = 0.0

#: Index of the stride-16 cut: ``mobilenet_v2().features[:CUT]`` ends with the last 96-channel block.
CUT = 14
#: ``features[FIRST_STRIDE16]`` is the first block that both takes and gives stride 16 (blocks 8–13).
FIRST_STRIDE16 = 8
#: ``rpn-viz train`` fine-tunes the backbone's blocks ``features[TUNED_FROM:CUT]`` (the last three
#: stride-16 blocks) with the head, as the paper fine-tunes VGG-16 "conv3_1 and up" with its RPN
#: (section 4.1): on the bundled photos it raised recall@300 on hand-boxed photos from 0.77 to 0.88
#: (README, "The offline model"). Three blocks keep the shipped file near 3 MB.
TUNED_FROM = 11
#: ``rpn-viz train`` labels an anchor positive from IoU 0.45 with a box, not the paper's ``FG_IOU`` (0.7).
#: Recall counts a box as found from IoU 0.5: at 0.7 the anchors that decode onto a box at 0.5–0.7
#: are ignored while training, so nothing teaches the head to score them high. Chosen by measurement
#: (0.4, 0.45, 0.5 and 0.7 with two seeds each, 0.6 with one; README, "The offline model"): with NMS
#: 0.7 it raised recall@10 / @100 from 0.15 / 0.48 to 0.24 / 0.58 on the validation photos and from
#: 0.23 / 0.66 to 0.36 / 0.80 on hand-boxed ones. The app's own training (the learning page) keeps 0.7.
TRAIN_POSITIVE_IOU = 0.45


class PaperRPNHead(nn.Module):
    """The paper's RPN head: 3×3 conv (512) + ReLU, 1×1 conv → 2k scores, 1×1 conv → 4k deltas.

    Score channels follow the original Caffe layout (py-faster-rcnn): channels ``0..k-1`` are the k
    anchors' *background* scores and ``k..2k-1`` their *object* scores; a softmax over each pair gives
    the probabilities. ``forward`` returns what ``RegionProposalNetwork`` expects of ``RPNHead`` —
    per level, k logits (object − background) and 4k deltas — so torchvision's loss, decoding and
    NMS apply unchanged.
    """

    def __init__(self, in_channels: int, num_anchors: int, channels: int = HEAD_CHANNELS, seed: int = 0) -> None:
        super().__init__()
        self.num_anchors = num_anchors
        self.conv = nn.Sequential(nn.Conv2d(in_channels, channels, kernel_size=3, padding=1), nn.ReLU(inplace=False))
        self.cls_scores = nn.Conv2d(channels, 2 * num_anchors, kernel_size=1)
        self.bbox_pred = nn.Conv2d(channels, 4 * num_anchors, kernel_size=1)
        self.reset_parameters(seed)

    def reset_parameters(self, seed: int) -> None:
        """The paper's initialisation, N(0, 0.01²) weights and zero biases, from a private seeded generator.

        A private generator makes the head a function of ``seed`` alone and leaves torch's global
        random state untouched.
        """
        generator = torch.Generator().manual_seed(seed)
        for layer in (self.conv[0], self.cls_scores, self.bbox_pred):
            with torch.no_grad():
                weight = torch.randn(layer.weight.shape, generator=generator) * INIT_STD
                layer.weight.copy_(weight)
                layer.bias.zero_()

    def scores(self, conv: Tensor) -> tuple[Tensor, Tensor]:
        """(background, object) scores, each N×k×H×W, from the 3×3 conv's activations."""
        both = self.cls_scores(conv)
        return both[:, : self.num_anchors], both[:, self.num_anchors :]

    def object_probability(self, feature: Tensor) -> Tensor:
        """The paper's softmax probability of "object" per anchor (N×k×H×W) — for checking the logits."""
        background, obj = self.scores(self.conv(feature))
        return torch.softmax(torch.stack([background, obj]), dim=0)[1]

    def trace_parts(self, feature: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(3×3-conv activations, k logits, 4k deltas) of one level, as ``rpn_viz.pipeline.tracing.head_parts`` wants."""
        conv = self.conv(feature)
        background, obj = self.scores(conv)
        return conv, obj - background, self.bbox_pred(conv)

    def forward(self, features: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Per level: k objectness logits and 4k deltas, exactly like torchvision's ``RPNHead``."""
        logits, deltas = [], []
        for feature in features:
            _, logit, delta = self.trace_parts(feature)
            logits.append(logit)
            deltas.append(delta)
        return logits, deltas


class TunedHead(nn.Module):
    """The backbone's last stride-16 blocks and the paper's head as one trainable module.

    ``rpn-viz train`` trains this: the blocks ``features[TUNED_FROM:CUT]`` are fine-tuned with the
    head, as the paper fine-tunes its backbone's upper layers with the RPN. Its input is the output
    of the frozen blocks below (:func:`split_for_tuning`); its outputs are the head's, so
    ``RegionProposalNetwork``'s loss, decoding and NMS apply unchanged. Batch norm stays frozen
    (``FrozenBatchNorm2d``, ImageNet statistics): only convolution weights change.
    """

    def __init__(self, blocks: nn.Sequential, head: PaperRPNHead) -> None:
        super().__init__()
        self.blocks = blocks
        self.head = head
        self.num_anchors = head.num_anchors

    def trace_parts(self, feature: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The head's (3×3-conv activations, k logits, 4k deltas) on the blocks' output."""
        return self.head.trace_parts(self.blocks(feature))

    def forward(self, features: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        return self.head([self.blocks(feature) for feature in features])


class Stride16Backbone(nn.Module):
    """MobileNetV2's layers up to its last stride-16 block; returns one level, like a torchvision backbone."""

    def __init__(self, body: nn.Sequential, out_channels: int) -> None:
        super().__init__()
        self.body = body
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> "OrderedDict[str, Tensor]":
        return OrderedDict([("0", self.body(x))])


class PaperRPN(nn.Module):
    """A Faster R-CNN's first stage only: ``transform``, ``backbone`` and ``rpn``, as rpn_viz reads them."""

    def __init__(self, transform: GeneralizedRCNNTransform, backbone: Stride16Backbone, rpn: RegionProposalNetwork):
        super().__init__()
        self.transform = transform
        self.backbone = backbone
        self.rpn = rpn

    def forward(self, images: list[Tensor]) -> list[Tensor]:
        """Proposals per image, in network-input pixels (``model.rpn``'s own output)."""
        batch, _ = self.transform(images)
        features = self.backbone(batch.tensors)
        boxes, _ = self.rpn(batch, features)
        return boxes


def split_for_tuning(loaded: LoadedModel, tune_from: int = TUNED_FROM) -> LoadedModel:
    """The same network cut lower: backbone ``features[:tune_from]``, head ``TunedHead(features[tune_from:CUT], head)``.

    Its proposals are the whole model's (the same layers run in the same order); only the boundary
    between "backbone" and "head" moves, so a training session — which keeps the backbone's features
    and trains the head — trains the blocks too. The lower blocks are shared with ``loaded`` (frozen);
    the upper blocks and the RPN are copies, so training never touches ``loaded``. ``tune_from``
    must leave a stride-16 backbone (``FIRST_STRIDE16`` ≤ ``tune_from`` ≤ ``CUT``; ``CUT``: no block).
    """
    if not FIRST_STRIDE16 <= tune_from <= CUT:
        raise ValueError(f"blocks to fine-tune start from {FIRST_STRIDE16} to {CUT} (stride 16), not {tune_from}")
    model: PaperRPN = loaded.model
    body = model.backbone.body
    stem = Stride16Backbone(body[:tune_from], out_channels=body[tune_from - 1].out_channels)
    rpn = copy.deepcopy(model.rpn)
    rpn.head = TunedHead(copy.deepcopy(body[tune_from:]), rpn.head)
    return dataclasses.replace(loaded, model=PaperRPN(model.transform, stem, rpn))


def labelled_at(loaded: LoadedModel, positive_iou: float) -> LoadedModel:
    """The same network whose training labels an anchor positive from IoU ``positive_iou`` (paper: ``FG_IOU``).

    Negatives stay below ``BG_IOU`` and each box's best anchor stays positive (torchvision's ``Matcher``
    with ``allow_low_quality_matches``); anchors in between are ignored. Only training reads the
    matcher — proposals are unchanged. ``loaded`` is untouched: its ``rpn`` is copied.
    """
    if not BG_IOU < positive_iou <= 1:
        raise ValueError(f"a positive anchor's IoU must be above {BG_IOU} (the negatives') and at most 1, "
                         f"not {positive_iou}")
    model: PaperRPN = loaded.model
    rpn = copy.deepcopy(model.rpn)
    rpn.proposal_matcher = Matcher(positive_iou, BG_IOU, allow_low_quality_matches=True)
    return dataclasses.replace(loaded, model=PaperRPN(model.transform, model.backbone, rpn))


def trained_state(head: nn.Module) -> dict[str, Tensor]:
    """What training changed, on the CPU: the parameters of a ``PaperRPNHead`` or a ``TunedHead``.

    Buffers are left out — batch norm's are ImageNet's own, loaded from the official file — so a
    saved file holds only weights learned here.
    """
    return {name: value.detach().cpu().clone() for name, value in head.named_parameters()}


def build_paper_rpn(seed: int = 0) -> PaperRPN:
    """The paper's RPN with an *unloaded* MobileNetV2 backbone and a fresh head initialised from ``seed``.

    The backbone uses ``FrozenBatchNorm2d``, as torchvision's detection builders do for pretrained
    backbones, so nothing (not even ``.train()``) can change its statistics.
    """
    classifier = mobilenet_v2(weights=None, norm_layer=FrozenBatchNorm2d)
    backbone = Stride16Backbone(classifier.features[:CUT], out_channels=classifier.features[CUT - 1].out_channels)
    normalize_in_place(backbone)
    anchors = AnchorGenerator(sizes=(ANCHOR_SIZES,), aspect_ratios=(ASPECT_RATIOS,))
    head = PaperRPNHead(backbone.out_channels, anchors.num_anchors_per_location()[0], seed=seed)
    rpn = RegionProposalNetwork(
        anchors,
        head,
        fg_iou_thresh=FG_IOU,
        bg_iou_thresh=BG_IOU,
        batch_size_per_image=BATCH_PER_IMAGE,
        positive_fraction=POSITIVE_FRACTION,
        pre_nms_top_n=dict(PRE_NMS_TOP_N),
        post_nms_top_n=dict(POST_NMS_TOP_N),
        nms_thresh=NMS_IOU,
        score_thresh=SCORE_THRESH,
    )
    transform = GeneralizedRCNNTransform(MIN_SIZE, MAX_SIZE, list(IMAGENET_MEAN), list(IMAGENET_STD))
    return PaperRPN(transform, backbone, rpn)


#: How rpn_viz names and labels this model. Not in ``models.MODELS``: ``load_model`` builds whole
#: detectors; this one is loaded by :func:`load_paper_model`.
PAPER_SPEC = ModelSpec(
    name="paper_rpn",  # == rpn_viz.model.models.PAPER_RPN, the name load_model and the CLI take
    title="The paper's RPN on MobileNetV2 (ImageNet backbone)",
    builder=build_paper_rpn,
    official=MOBILENET_V2_IMAGENET,
    frozen_batchnorm=True,
)


def load_imagenet_backbone(model: PaperRPN, state_dict: dict[str, Tensor]) -> None:
    """Load a full ``mobilenet_v2`` ImageNet state dict (strictly) and keep its stride-16 part in ``model``.

    Loading into a whole ``mobilenet_v2`` first checks every key of the file, classifier included,
    so a wrong file fails loudly instead of half-loading.
    """
    classifier = mobilenet_v2(weights=None, norm_layer=FrozenBatchNorm2d)
    try:
        classifier.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise WeightsError(f"Not a torchvision mobilenet_v2 state dict: {first[:240]}") from None
    model.backbone.body.load_state_dict(classifier.features[:CUT].state_dict(), strict=True)


def load_paper_model(
    weights_dir: str | os.PathLike | None = None,
    *,
    seed: int = 0,
    device: str | torch.device | None = None,
    allow_download: bool = True,
    progress: Callable[[Progress], None] | None = None,
) -> LoadedModel:
    """The paper's RPN: official ImageNet MobileNetV2 backbone, fresh head from ``seed``, eval mode.

    The weights file is found (and its sha256 checked) by :func:`rpn_viz.model.download.find_official`, so
    ``weights_dir`` / ``$RPN_VIZ_WEIGHTS_DIR`` / torchvision's cache all work; a missing file raises
    :class:`~rpn_viz.model.weights.WeightsError` — there is no random-backbone fallback. All parameters are
    frozen (``requires_grad=False``); :mod:`rpn_viz.training.session` trains a copy of the head.
    """
    target = resolve_device(device)
    path = find_official(MOBILENET_V2_IMAGENET, weights_dir, allow_download=allow_download, progress=progress)
    model = build_paper_rpn(seed=seed)
    load_imagenet_backbone(model, load_state_dict(path))
    model.eval().to(target)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    info = WeightsInfo(
        "untrained",
        f"the paper's RPN: ImageNet MobileNetV2 backbone ({path.name}), untrained head (seed {seed})",
        str(path),
        MOBILENET_V2_IMAGENET.sha256,
        seed,
    )
    return LoadedModel(PAPER_SPEC, model, info, target, num_classes=2)


def feature_stride(model: PaperRPN, size: tuple[int, int] = (608, 928)) -> tuple[int, int]:
    """(sy, sx): input pixels per feature cell, measured by running the backbone on a zero image."""
    parameter = next(model.backbone.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    with torch.inference_mode():
        feature = model.backbone(torch.zeros(1, 3, *size, device=device))["0"]
    return size[0] // feature.shape[-2], size[1] // feature.shape[-1]


# --- the head trained here, shipped with the project ------------------------------------------

#: The paper's head trained on the bundled photos by ``rpn-viz train`` (see its README).
SHIPPED_HEAD = Path(__file__).resolve().parents[1] / "trained" / "paper_rpn_head.pt"
#: What ``SHIPPED_HEAD`` was trained on and how; written by the same command.
SHIPPED_FACTS = SHIPPED_HEAD.with_suffix(".json")
#: sha256 of ``SHIPPED_HEAD``'s bytes: the file is refused unless it matches.
SHIPPED_HEAD_SHA256 = "15b5a8c15e9f880d8084bf098dfb1b2b92247de35f02b6cb28e1f8beb596fd13"


def load_head(model: PaperRPN, path: str | os.PathLike) -> str:
    """Load a saved head into ``model``; its sha256. Files are ``weights_only`` state dicts of either

    * a ``PaperRPNHead`` (what the learning page and ``rpn-viz train --tune-from 14`` save), or
    * a ``TunedHead`` (``rpn-viz train``'s default, the shipped file): ``blocks.<i>.…`` are the weights
      of backbone block ``features[i]`` (the last n blocks, up to ``CUT``) and ``head.…`` the head's.

    Only parameters are read (:func:`trained_state`); a file with a missing, unexpected or
    wrongly-shaped one raises :class:`~rpn_viz.model.weights.WeightsError` in one line naming it
    (never a half-loaded model).
    """
    path = Path(path)
    state = load_state_dict(path)
    target: nn.Module = model.rpn.head
    count = block_count(state)
    if count > CUT - FIRST_STRIDE16:
        raise WeightsError(f"{path.name} is not a head of the paper's RPN: it has {count} backbone blocks")
    if count:
        target = TunedHead(model.backbone.body[CUT - count:], model.rpn.head)  # the model's own modules
    expected = dict(target.named_parameters())
    problems = [f"missing {key}" for key in expected if key not in state]
    problems += [f"unexpected {key}" for key in state if key not in expected]
    problems += [f"{key} has shape {tuple(state[key].shape)}, expected {tuple(value.shape)}"
                 for key, value in expected.items() if key in state and state[key].shape != value.shape]
    if problems:
        raise WeightsError(f"{path.name} is not a head of the paper's RPN: {problems[0][:200]}")
    with torch.no_grad():
        for key, value in expected.items():
            value.copy_(state[key])
    return sha256_of(path)


def block_count(state: dict[str, Tensor]) -> int:
    """How many backbone blocks a saved head's state holds (its ``blocks.<i>.…`` keys; 0: a head alone)."""
    return len({key.split(".")[1] for key in state if key.startswith("blocks.")})


def shipped_facts() -> dict[str, object]:
    """What the shipped head was trained on (photos, boxes, steps, seed, command), from its JSON."""
    try:
        return json.loads(SHIPPED_FACTS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def shipped_training(facts: dict[str, object]) -> str:
    """e.g. "head trained on 95 bundled photos, 4,000 steps, with the backbone's last 3 blocks fine-tuned"."""
    photos, steps, blocks = facts.get("photos"), facts.get("steps"), facts.get("tuned_blocks")
    if not (photos and steps):
        return "head trained here"
    tuned = f", with the backbone's last {blocks} blocks fine-tuned" if isinstance(blocks, int) and blocks > 0 else ""
    return f"head trained on {photos} bundled photos, {steps:,} steps{tuned}"


def shipped_label(facts: dict[str, object]) -> str:
    """e.g. "the paper's RPN (ImageNet MobileNetV2 + head trained on 95 bundled photos, 4,000 steps)"."""
    return f"the paper's RPN (ImageNet MobileNetV2 + {shipped_training(facts)})"


def load_trained_paper_model(
    weights_dir: str | os.PathLike | None = None,
    *,
    head: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    allow_download: bool = True,
    progress: Callable[[Progress], None] | None = None,
) -> LoadedModel:
    """The paper's RPN with a trained head: the shipped one (hash-checked) or ``head``, a file you saved.

    The backbone file is found like any official file (folder, cache, download); the head is loaded
    with ``weights_only=True``. The shipped head must hash to :data:`SHIPPED_HEAD_SHA256`.
    """
    model = load_paper_model(weights_dir, device=device, allow_download=allow_download, progress=progress)
    path = Path(head) if head is not None else SHIPPED_HEAD
    if head is None:
        if not path.is_file():
            raise WeightsError(f"The shipped head {path} is missing; re-create it with rpn-viz train.")
        actual = sha256_of(path)
        if actual != SHIPPED_HEAD_SHA256:
            raise WeightsError(
                f"{path.name} is not the shipped head (sha256 {actual[:16]}…, expected {SHIPPED_HEAD_SHA256[:16]}…); "
                "restore it with git checkout."
            )
    digest = load_head(model.model, path)
    model.model.to(model.device)
    for parameter in model.model.parameters():
        parameter.requires_grad_(False)
    if head is None:
        label = shipped_label(shipped_facts())
    else:
        label = f"the paper's RPN (ImageNet MobileNetV2 + your head {path.name}, sha256 {digest[:12]}…)"
    info = WeightsInfo("trained here", label, str(path), digest)
    return LoadedModel(PAPER_SPEC, model.model, info, model.device, num_classes=2)
