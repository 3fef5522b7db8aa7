"""The trace's proposals equal torchvision's own ``model.rpn`` — boxes, scores and order, bit for bit.

For every sample photo and four models (untrained, a scrambled custom checkpoint with varied
scores, the paper's RPN with the head trained here, and the official COCO weights when present),
with the model's default settings and with changed ones (which must not re-run the network); on
the CPU and, where there is one, on CUDA: the oracle runs on the same device as the trace (a GPU's
TF32 convolutions are exact to themselves, not to the CPU).
"""

from __future__ import annotations

import copy

import pytest
import torch

import rpn_viz
from torchvision.models.detection.rpn import concat_box_prediction_layers

from rpn_viz.pipeline.filtering import FilterSettings, rpn_with_settings
from rpn_viz.testing import on_device, torchvision_input

CHANGED = [
    dict(nms_iou=0.5, pre_nms_top_n=200, post_nms_top_n=50, score_thresh=0.3),
    dict(nms_iou=0.9, pre_nms_top_n=2000, post_nms_top_n=2000, score_thresh=0.0),
    dict(nms_iou=0.3, pre_nms_top_n=100, post_nms_top_n=1000, score_thresh=0.6, min_size=16.0),
]


@torch.inference_mode()
def torchvision_features(loaded: rpn_viz.LoadedModel, image):
    """torchvision's preset, transform and backbone on the photo, on the model's device (once per photo)."""
    images = torchvision_input(loaded, image)
    return images, loaded.model.backbone(images.tensors)


@torch.inference_mode()
def check_equal(result, loaded, images, features) -> int:
    """``result`` equals torchvision's RPN forward (boxes) and its filter_proposals (boxes and scores)."""
    rpn = rpn_with_settings(loaded.model.rpn, result.settings)
    expected, _ = rpn(images, features)
    assert torch.equal(result.boxes, expected[0].cpu()), "proposal boxes differ from model.rpn"
    feature_list = list(features.values())
    objectness, deltas = rpn.head(feature_list)
    anchors = rpn.anchor_generator(images, feature_list)
    n = [o[0].numel() for o in objectness]
    logits, flat = concat_box_prediction_layers(objectness, deltas)
    proposals = rpn.box_coder.decode(flat, anchors).view(1, -1, 4)
    boxes, scores = rpn.filter_proposals(proposals, logits, images.image_sizes, n)
    assert torch.equal(result.boxes, boxes[0].cpu())
    assert torch.equal(result.scores, scores[0].cpu())
    return int(expected[0].shape[0])


# Every sample photo (tests/conftest.py: the six assets/*.jpg); the first in the fast subset, the
# others marked slow (each photo costs a trace and ten torchvision post-processing runs per model).
PHOTO_INDICES = [pytest.param(i, marks=[pytest.mark.slow] if i else [], id=f"photo{i}") for i in range(6)]


@pytest.mark.parametrize("photo_index", PHOTO_INDICES)
@pytest.mark.parametrize("model_name", ["untrained", "scrambled", "official", "shipped"])
def test_trace_equals_torchvision_on_every_photo(model_name, photo_index, device, request, photos):
    loaded = on_device(request.getfixturevalue(model_name), device)
    assert len(photos) == len(PHOTO_INDICES), "one parameter per sample photo"
    for photo in photos[photo_index : photo_index + 1]:
        trace = rpn_viz.trace(loaded, photo)
        assert trace.default_settings == FilterSettings.from_rpn(loaded.model.rpn)
        images, features = torchvision_features(loaded, trace.image)
        with torch.inference_mode():
            plain, _ = loaded.model.rpn(images, features)  # the model's own rpn, untouched
        assert torch.equal(trace.result.boxes, plain[0].cpu())
        assert check_equal(trace.result, loaded, images, features) > 0
        if model_name != "untrained":
            assert trace.result.scores.std() > 0.01, "scores should vary for a non-degenerate model"
        for changes in CHANGED:
            check_equal(trace.refilter(**changes), loaded, images, features)


def test_model_defaults_are_read_from_model_rpn(untrained):
    rpn = untrained.model.rpn
    settings = FilterSettings.from_rpn(rpn)
    assert settings == FilterSettings(0.7, 1000, 1000, 0.05, 1e-3)  # this model's own values
    assert (settings.nms_iou, settings.score_thresh) == (rpn.nms_thresh, rpn.score_thresh)


def test_refilter_does_not_rerun_the_network(scrambled, photos, monkeypatch):
    trace = rpn_viz.trace(scrambled, photos[0])
    calls = []
    monkeypatch.setattr(scrambled.model.backbone, "forward", lambda *a: calls.append(a))
    monkeypatch.setattr(scrambled.model.rpn.head, "forward", lambda *a: calls.append(a))
    result = trace.refilter(nms_iou=0.4, post_nms_top_n=10)
    assert calls == [] and result.boxes.shape[0] == 10


def test_untrained_proposals_are_their_anchors(untrained, photos):
    """The documented degenerate case: near-zero features, objectness 0.5, proposal = anchor."""
    trace = rpn_viz.trace(untrained, photos[0])
    assert float(trace.levels[0].features.abs().max()) < 1e-5
    assert torch.allclose(trace.result.scores, torch.full_like(trace.result.scores, 0.5))
    assert torch.allclose(trace.proposals, trace.anchors, atol=1e-3)


def test_stages_account_for_every_candidate(scrambled, photos):
    trace = rpn_viz.trace(scrambled, photos[1])
    result = trace.refilter(score_thresh=0.5, min_size=8.0)
    fates = result.fates()
    assert len(fates) == result.logit.numel() == 3 * 1000
    counts = {f: fates.count(f) for f in set(fates)}
    assert counts.get("proposal", 0) == result.final_pos.numel()
    assert counts.get("too small", 0) == int(result.too_small.sum())
    assert counts.get("low score", 0) == int(result.low_score.sum())
    assert bool((result.prob[result.low_score] < 0.5).all())
    widths = result.box[:, 2] - result.box[:, 0]
    heights = result.box[:, 3] - result.box[:, 1]
    assert bool(((widths < 8) | (heights < 8))[result.too_small].all())
    # every suppressed box has a kept box of its own level, ranked higher, with IoU above the threshold
    suppressed = torch.where(result.suppressed_by >= 0)[0]
    assert suppressed.numel() > 0
    sup = result.suppressed_by[suppressed]
    assert bool((result.level[sup] == result.level[suppressed]).all())
    assert bool((result.prob[sup] >= result.prob[suppressed]).all())
    assert bool((result.suppress_iou[suppressed] > 0.7).all())
    assert set(sup.tolist()) <= set(result.nms_kept_pos.tolist())


def test_boxes_map_back_to_the_original_photo(scrambled, photos):
    trace = rpn_viz.trace(scrambled, photos[0])
    w, h = trace.preprocess.original_size
    original = trace.to_original(trace.result.boxes)
    assert float(original[:, [0, 2]].max()) <= w + 1e-3 and float(original[:, [1, 3]].max()) <= h + 1e-3
    assert torch.allclose(trace.to_input(original), trace.result.boxes, atol=1e-3)


def test_the_network_input_is_torchvisions(scrambled, device, photos):
    """The trace keeps its input as a picture and recomputes the tensor: both are torchvision's own,
    made on the model's device."""
    loaded = on_device(scrambled, device)
    trace = rpn_viz.trace(loaded, photos[2])
    images = torchvision_input(loaded, trace.image)
    assert trace.input_tensor().device == images.tensors.device == loaded.device
    assert torch.equal(trace.input_tensor(), images.tensors[0])  # bit for bit, padding included
    w, h = trace.preprocess.input_size
    mean = torch.tensor(scrambled.model.transform.image_mean, device=device).view(3, 1, 1)
    std = torch.tensor(scrambled.model.transform.image_std, device=device).view(3, 1, 1)
    expected = ((images.tensors[0, :, :h, :w] * std + mean).clamp(0, 1) * 255).round().to(torch.uint8)
    assert torch.equal(torch.from_numpy(trace.input_view()), expected.permute(1, 2, 0).cpu())
    other = rpn_viz.trace(scrambled, photos[3])
    assert rpn_viz.pipeline.tracing.same_network_input(trace, rpn_viz.trace(scrambled, photos[2]))
    assert not rpn_viz.pipeline.tracing.same_network_input(trace, other)


@pytest.mark.parametrize("model_name", ["scrambled", "shipped"])
def test_our_frozen_batchnorm_is_torchvisions_bit_for_bit(model_name, request, photos):
    """rpn_viz's FrozenBatchNorm2d (sum added in place, to save memory) changes no number: the same
    network with torchvision's own module in every place gives equal features and proposals."""
    from torchvision.ops import misc

    from rpn_viz.model.models import FrozenBatchNorm2d

    loaded = request.getfixturevalue(model_name)
    ours = [m for m in loaded.model.modules() if isinstance(m, misc.FrozenBatchNorm2d)]
    assert ours and all(type(m) is FrozenBatchNorm2d for m in ours)
    assert all(m.in_place for m in ours), "every norm follows a conv here: each normalises in place"
    reference = copy.deepcopy(loaded.model)
    for module in reference.modules():
        if isinstance(module, misc.FrozenBatchNorm2d):
            module.__class__ = misc.FrozenBatchNorm2d  # torchvision's forward: x * scale + bias
    trace = rpn_viz.trace(loaded, photos[1])
    images, features = torchvision_features(loaded, trace.image)
    with torch.inference_mode():
        expected = reference.backbone(images.tensors)
        assert list(features) == list(expected)
        for name in features:
            assert torch.equal(features[name], expected[name]), f"feature map {name} differs"
        boxes, _ = reference.rpn(images, expected)
    assert torch.equal(trace.result.boxes, boxes[0])


def test_in_place_normalisation_leaves_autograd_and_shared_inputs_alone():
    """With gradients on, the in-place norm writes nothing it was given: backward still works and
    equals torchvision's; a norm not after a conv never works in place."""
    from torchvision.ops import misc

    from rpn_viz.model.models import FrozenBatchNorm2d, normalize_in_place

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3)
    ours = torch.nn.Sequential(conv, FrozenBatchNorm2d(4))
    theirs = torch.nn.Sequential(conv, misc.FrozenBatchNorm2d(4))
    weight, variance = torch.rand(4) + 0.5, torch.rand(4) + 0.5
    for norm in (ours[1], theirs[1]):
        norm.weight.copy_(weight)
        norm.running_var.copy_(variance)
    assert normalize_in_place(ours) == 1 and ours[1].in_place
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    mine = ours(x).square().sum()
    (grad_ours,) = torch.autograd.grad(mine, x)
    (grad_theirs,) = torch.autograd.grad(theirs(x).square().sum(), x)
    assert torch.equal(grad_ours, grad_theirs)
    alone = FrozenBatchNorm2d(3)
    assert normalize_in_place(torch.nn.Sequential(torch.nn.ReLU(), alone)) == 0
    y = torch.rand(1, 3, 4, 4)
    kept = y.clone()
    with torch.inference_mode():
        alone(y)
    assert torch.equal(y, kept)
