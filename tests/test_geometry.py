"""Anchors, decoding and step-through NMS against known geometry, hand computation and torchvision."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.models.detection._utils import BoxCoder
from torchvision.ops import batched_nms, box_iou, nms

import rpn_viz
from rpn_viz.pipeline.nms import greedy_nms_steps, kept_indices
from rpn_viz.testing import on_device, torchvision_input
from rpn_viz.pipeline.regression import explain_decode


@pytest.fixture(scope="module")
def trace(untrained, photos):
    return rpn_viz.trace(untrained, photos[0])


def test_torchvision_nms_operator_is_registered():
    """torch and torchvision must be a matching pair, or this operator fails to load."""
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]])
    assert nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist() == [0, 2]


def test_anchor_counts_strides_and_centres(trace):
    pw, ph = trace.preprocess.padded_size
    assert (pw % 32, ph % 32) == (0, 0)
    total = 0
    for level in trace.levels:
        h, w = level.grid
        sy, sx = level.stride
        assert (sy, sx) == (ph // h, pw // w)  # torchvision's own stride rule
        a = len(level.anchor_shapes)
        assert a == 15  # 5 sizes × 3 ratios for fasterrcnn_mobilenet_v3_large_fpn
        assert level.anchors.shape == (h, w, a, 4)
        centres = (level.anchors[..., :2] + level.anchors[..., 2:]) / 2
        for row, col in [(0, 0), (h - 1, w - 1), (h // 2, w // 3)]:
            # every anchor of a cell is centred on (col·stride, row·stride), up to rounding of half sizes
            assert torch.allclose(centres[row, col], torch.tensor([col * sx, row * sy], dtype=torch.float32)
                                  .expand(a, 2), atol=0.5)
        total += h * w * a
    assert total == trace.anchors.shape[0] == trace.logits.shape[0]
    # this model's real strides: two FPN levels at 32 (not the paper's 16) and a pooled one at ~64,
    # which torchvision computes as padded size // grid size (61 when 800 px is cut into 13 cells)
    assert [lv.stride for lv in trace.levels[:2]] == [(32, 32), (32, 32)]
    assert trace.levels[2].stride == (ph // trace.levels[2].grid[0], pw // trace.levels[2].grid[1])


def test_anchor_sizes_and_ratios(trace):
    shapes = trace.levels[0].anchor_shapes
    assert sorted({s.size for s in shapes}) == [32, 64, 128, 256, 512]
    assert sorted({s.ratio for s in shapes}) == [0.5, 1.0, 2.0]
    for shape in shapes:
        area = shape.width * shape.height
        assert math.isclose(area, shape.size**2, rel_tol=0.07)  # rounding of the base anchors
        assert math.isclose(shape.height / shape.width, shape.ratio, rel_tol=0.07)
    assert shapes[0].ratio == 0.5 and shapes[0].size == 32  # ratio-major, then size, as AnchorGenerator


def test_decoding_by_hand():
    anchor = torch.tensor([10.0, 20.0, 50.0, 100.0])  # xa=30, ya=60, wa=40, ha=80
    deltas = torch.tensor([0.5, -0.25, math.log(2.0), 0.0])
    ex = explain_decode(anchor, deltas)
    assert (ex.xa, ex.ya, ex.wa, ex.ha) == (30.0, 60.0, 40.0, 80.0)
    assert ex.x == pytest.approx(50.0) and ex.y == pytest.approx(40.0)
    assert ex.w == pytest.approx(80.0) and ex.h == pytest.approx(80.0)
    assert ex.box == pytest.approx((10.0, 0.0, 90.0, 80.0), abs=1e-4)
    assert not ex.clamped


def test_decoding_clamps_huge_size_deltas():
    anchor = torch.tensor([0.0, 0.0, 16.0, 16.0])
    ex = explain_decode(anchor, torch.tensor([0.0, 0.0, 10.0, 10.0]))
    assert ex.clamped and ex.w == pytest.approx(1000.0, rel=1e-4)  # 16 · 1000/16


def test_decoding_matches_boxcoder_on_the_trace(trace):
    coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
    for index in [0, 12345, trace.anchors.shape[0] - 1]:
        ex = explain_decode(trace.anchors[index], trace.deltas[index], coder)
        assert torch.allclose(torch.tensor(ex.box), trace.proposals[index], atol=1e-3)


def _random_boxes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 200
    wh = torch.rand(n, 2, generator=g) * 60 + 5
    scores = torch.rand(n, generator=g)
    levels = torch.randint(0, 3, (n,), generator=g)
    return torch.cat([xy, xy + wh], dim=1), scores, levels


@pytest.mark.parametrize("count", [400, 1500])  # 1500: several of nms._one_level's blocks per level
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_step_through_nms_equals_torchvision(threshold, count):
    boxes, scores, levels = _random_boxes(count, seed=int(threshold * 10))
    steps = greedy_nms_steps(boxes, scores, threshold)
    assert kept_indices(steps) == nms(boxes, scores, threshold).tolist()
    per_level = greedy_nms_steps(boxes, scores, threshold, levels=levels)
    assert sorted(kept_indices(per_level)) == sorted(batched_nms(boxes, scores, levels, threshold).tolist())
    removed = [i for step in per_level for i in step.suppressed]
    assert len(removed) == len(set(removed)) == count - len(per_level)  # every box decided exactly once
    for step in per_level:
        assert all(levels[i] == levels[step.kept] for i in step.suppressed)
        assert all(iou > threshold for iou in step.ious)
        if step.suppressed:  # the same numbers as torchvision's box_iou, exactly
            expected = box_iou(boxes[step.kept][None], boxes[list(step.suppressed)])[0].tolist()
            assert list(step.ious) == expected


@pytest.mark.slow
def test_step_through_nms_on_the_trace(scrambled, device, photos):
    """The replay (on the CPU) keeps the boxes torchvision's batched_nms kept on the model's device."""
    result = rpn_viz.trace(on_device(scrambled, device), photos[2]).result
    pos = result.nms_input_pos
    steps = greedy_nms_steps(result.box[pos], result.prob[pos], result.settings.nms_iou, levels=result.level[pos])
    assert sorted(pos[kept_indices(steps)].tolist()) == sorted(result.nms_kept_pos.tolist())
    # the suppressor the trace derives is the step that removed the box
    for step in steps[:50]:
        for victim in step.suppressed:
            assert int(result.suppressed_by[pos[victim]]) == int(pos[step.kept])


@pytest.mark.slow
def test_second_stage_equals_the_full_detector(scrambled, device, photos):
    """Detections from the trace's proposals equal torchvision's transform → backbone → rpn → roi_heads
    on the same device."""
    from rpn_viz.lab.detect import has_second_stage, second_stage

    loaded = on_device(scrambled, device)
    trace = rpn_viz.trace(loaded, photos[0])
    assert has_second_stage(trace)
    ours = second_stage(trace)
    model = loaded.model
    images = torchvision_input(loaded, trace.image)
    with torch.inference_mode():
        features = model.backbone(images.tensors)
        proposals, _ = model.rpn(images, features)
        expected, _ = model.roi_heads(features, proposals, images.image_sizes)
    assert torch.equal(ours.boxes, expected[0]["boxes"].cpu())
    assert torch.equal(ours.scores, expected[0]["scores"].cpu())
    assert len(ours.names) == ours.labels.numel()
