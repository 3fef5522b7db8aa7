"""Anchor lab, custom anchors vs the head, recall, baselines, trained vs untrained, receptive field.

Oracles: known geometry (the paper's 1000×600 example, nested and disjoint boxes, a hand-built conv
net with a known receptive field), torchvision itself (AnchorGenerator, the RPN's own
``assign_targets_to_anchors``, BoxCoder via ``regression.explain_decode``), and the paper's reference
anchor code (py-faster-rcnn's ``generate_anchors``, re-implemented below) for the anchor counts.
The official COCO weights are not needed: models are untrained or given a hand-set head.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler
from torch import nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList

import rpn_viz
from rpn_viz.lab import baselines, custom_anchors as lab, receptive, recall
from rpn_viz.pipeline.anchors import PAPER_ANCHORS, AnchorSpec, anchors_for_grids, assign_labels, sample_minibatch, tile_anchors
from rpn_viz.model.models import LoadedModel, WeightsInfo
from rpn_viz.pipeline.regression import explain_decode
from rpn_viz.testing import torchvision_input
from ui.words import custom_decode_text

ASSETS = Path(__file__).resolve().parents[1] / "assets"
FAST_MODEL = "mobilenet_v3_large_320_fpn"  # 320-px input: every model test stays well under a second


# --------------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def untrained() -> LoadedModel:
    return rpn_viz.load_model(FAST_MODEL, untrained=True)


@pytest.fixture(scope="module")
def untrained_trace(untrained):
    return rpn_viz.trace(untrained, ASSETS / "coffee.jpg")


DELTAS = (0.1, -0.2, 0.3, -0.1)


@pytest.fixture(scope="module")
def handset(untrained) -> LoadedModel:
    """The untrained network with a hand-set head: its features are ~0, so the head outputs its biases.

    Every anchor gets the deltas ``DELTAS`` and anchor a of a cell the logit ``a - 7``, so proposals
    move away from their anchors in a known way and the objectness is not flat.
    """
    model = copy.deepcopy(untrained.model)
    a = len(model.rpn.anchor_generator.aspect_ratios[0]) * len(model.rpn.anchor_generator.sizes[0])
    with torch.no_grad():
        model.rpn.head.bbox_pred.bias.copy_(torch.tensor(DELTAS).repeat(a))
        model.rpn.head.cls_logits.bias.copy_(torch.arange(a, dtype=torch.float32) - 7)
    info = WeightsInfo("custom", "hand-set head (test)")
    return LoadedModel(untrained.spec, model, info, untrained.device, untrained.num_classes)


@pytest.fixture(scope="module")
def handset_trace(handset):
    return rpn_viz.trace(handset, ASSETS / "coffee.jpg")


# --------------------------------------------------------------------------------------------------
# 1. tiling: the paper's example, AnchorGenerator, the reference code
# --------------------------------------------------------------------------------------------------


def _py_faster_rcnn_anchors(base_size=16, ratios=(0.5, 1, 2), scales=(8, 16, 32)) -> np.ndarray:
    """py-faster-rcnn's ``generate_anchors`` (the paper's released code), inclusive pixel corners."""

    def whctrs(a):
        w, h = a[2] - a[0] + 1, a[3] - a[1] + 1
        return w, h, a[0] + 0.5 * (w - 1), a[1] + 0.5 * (h - 1)

    def mkanchors(ws, hs, x, y):
        ws, hs = np.asarray(ws)[:, None], np.asarray(hs)[:, None]
        return np.hstack((x - 0.5 * (ws - 1), y - 0.5 * (hs - 1), x + 0.5 * (ws - 1), y + 0.5 * (hs - 1)))

    base = np.array([1, 1, base_size, base_size]) - 1
    w, h, x, y = whctrs(base)
    ws = np.round(np.sqrt(w * h / np.asarray(ratios)))
    hs = np.round(ws * np.asarray(ratios))
    out = []
    for anchor in mkanchors(ws, hs, x, y):
        w, h, x, y = whctrs(anchor)
        out.append(mkanchors(w * np.asarray(scales), h * np.asarray(scales), x, y))
    return np.vstack(out)


def _py_faster_rcnn_inside(width: int, height: int, stride: int = 16) -> tuple[int, int]:
    cols, rows = math.ceil(width / stride), math.ceil(height / stride)
    sx, sy = np.meshgrid(np.arange(cols) * stride, np.arange(rows) * stride)
    shifts = np.stack([sx.ravel(), sy.ravel(), sx.ravel(), sy.ravel()], 1)
    a = (shifts[:, None, :] + _py_faster_rcnn_anchors()[None]).reshape(-1, 4)
    inside = (a[:, 0] >= 0) & (a[:, 1] >= 0) & (a[:, 2] < width) & (a[:, 3] < height)
    return len(a), int(inside.sum())


def test_paper_example_anchor_counts() -> None:
    tiling = tile_anchors((1000, 600), PAPER_ANCHORS)
    assert tiling.grid == (38, 63)  # "∼2,400" cells: 2,394
    assert tiling.k == 9
    assert tiling.num_anchors == 21546 == 63 * 38 * 9
    assert 19000 <= tiling.num_anchors <= 22000  # "roughly 20,000 (≈ 60 × 40 × 9)"
    assert tiling.num_inside == 8044
    assert tiling.num_cross_boundary == 21546 - 8044
    # The paper's "about 6,000" inside is not what 1000×600 gives, with torchvision's anchors or
    # with the paper's own code (8,151, checked here): it is what a typical PASCAL image (500×375,
    # rescaled to 800×600) gives.
    assert _py_faster_rcnn_inside(1000, 600) == (21546, 8151)
    assert abs(tiling.num_inside - 8151) / 8151 < 0.02
    pascal = tile_anchors((800, 600), PAPER_ANCHORS)
    assert (pascal.num_anchors, pascal.num_inside) == (17100, 5954)
    assert 5500 <= pascal.num_inside <= 6500
    assert _py_faster_rcnn_inside(800, 600) == (17100, 5944)
    # floor rounding (a network that drops the remainder): 37 × 62 cells
    floor = tile_anchors((1000, 600), PAPER_ANCHORS, rounding="floor")
    assert floor.grid == (37, 62) and floor.num_anchors == 20646
    # the biggest shapes hardly ever fit: the 724×362 and 362×724 anchors of the 512 scale
    per_shape = tiling.inside_per_shape()
    assert sum(per_shape) == 8044 and per_shape[8] == 0  # 362 wide × 724 tall never fits 600 px


def test_tiling_equals_anchor_generator_and_geometry() -> None:
    spec = AnchorSpec((50.0, 100.0), (0.5, 1.0, 2.0, 3.0), 20)
    tiling = tile_anchors((333, 211), spec)
    assert tiling.grid == (11, 17) and tiling.k == 8 and tiling.num_anchors == 11 * 17 * 8
    # torchvision on a real image-sized tensor and a real feature map
    generator = AnchorGenerator(((50, 100),), ((0.5, 1.0, 2.0, 3.0),))
    images = ImageList(torch.zeros(1, 3, 11 * 20, 17 * 20), [(211, 333)])
    expected = generator(images, [torch.zeros(1, 8, 11, 17)])[0]
    assert torch.equal(tiling.anchors, expected)
    # geometry by hand: cell (r, c) is centred on (20c, 20r); shape (ratio i, size j) is
    # w = size / √ratio, h = size · √ratio, half-sides rounded
    row, col = 4, 9
    for a, shape in enumerate(spec.shapes()):
        w, h = shape.size / math.sqrt(shape.ratio), shape.size * math.sqrt(shape.ratio)
        hw, hh = round(w / 2), round(h / 2)
        box = tiling.anchors[tiling.index(row, col, a)].tolist()
        assert box == [20 * col - hw, 20 * row - hh, 20 * col + hw, 20 * row + hh]
        assert (shape.width, shape.height) == (2 * hw, 2 * hh)
    assert torch.equal(tiling.cell_anchors(row, col), tiling.anchors[tiling.index(row, col, 0) :][:8])
    # inside = entirely within the image
    inside = tiling.anchors[tiling.inside]
    assert (inside[:, :2] >= 0).all() and (inside[:, 2] <= 333).all() and (inside[:, 3] <= 211).all()
    outside = tiling.anchors[~tiling.inside]
    assert ((outside[:, 0] < 0) | (outside[:, 1] < 0) | (outside[:, 2] > 333) | (outside[:, 3] > 211)).all()


def test_anchor_spec_validation() -> None:
    with pytest.raises(ValueError):
        AnchorSpec((), (1.0,), 16)
    with pytest.raises(ValueError):
        AnchorSpec((32.0,), (0.0,), 16)
    with pytest.raises(ValueError):
        AnchorSpec((32.0,), (1.0,), 0)


def test_model_anchor_set_reproduces_the_trace(untrained_trace) -> None:
    sizes, ratios = lab.model_anchor_set(untrained_trace)
    grids = [level.grid for level in untrained_trace.levels]
    anchors = anchors_for_grids(sizes, ratios, untrained_trace.preprocess.padded_size, grids)
    assert torch.equal(torch.cat(anchors), untrained_trace.anchors)


# --------------------------------------------------------------------------------------------------
# labels and the mini-batch
# --------------------------------------------------------------------------------------------------


def test_labels_on_hand_made_boxes() -> None:
    anchors = torch.tensor(
        [
            [0, 0, 100, 100],  # equal to gt 0 → positive
            [0, 0, 100, 60],  # IoU 0.6 with gt 0 → ignored
            [500, 500, 600, 600],  # far from everything → negative
            [0, 0, 100, 25],  # IoU 0.25 → negative
            [300, 300, 400, 450],  # IoU 2/3 with gt 1: below 0.7 but gt 1's best anchor → positive
            [300, 300, 400, 350],  # IoU 0.5 with gt 1 → ignored
        ],
        dtype=torch.float32,
    )
    gt = torch.tensor([[0, 0, 100, 100], [300, 300, 400, 400]], dtype=torch.float32)
    labels = assign_labels(anchors, gt)
    assert labels.labels.tolist() == [1, -1, 0, 0, 1, -1]
    assert labels.best_anchor_rule.tolist() == [False, False, False, False, True, False]
    assert labels.matched_gt.tolist() == [0, 0, 0, 0, 1, 1]
    assert labels.best_iou.tolist() == pytest.approx([1.0, 0.6, 0.0, 0.25, 2 / 3, 0.5])
    assert labels.gt_best_iou.tolist() == pytest.approx([1.0, 2 / 3])
    assert labels.gt_num_positive.tolist() == [1, 1]
    counts = labels.counts()
    assert counts["positive"] == 2 and counts["negative"] == 2 and counts["ignored"] == 2
    assert counts["  of which best anchor of a box"] == 1 and counts["  of which cross the border"] == 0
    # no gt box: everything negative
    assert assign_labels(anchors, torch.zeros(0, 4)).labels.tolist() == [0] * 6


def test_cross_boundary_anchors_are_ignored_when_asked() -> None:
    anchors = torch.tensor([[-10, -10, 90, 90], [40, 40, 140, 140], [500, 500, 600, 600]], dtype=torch.float32)
    gt = torch.tensor([[-10, -10, 90, 90]], dtype=torch.float32)
    plain = assign_labels(anchors, gt)
    assert plain.labels.tolist() == [1, 0, 0]  # IoU(anchor 1, gt) = 2500 / 17500 < 0.3
    paper = assign_labels(anchors, gt, image_size=(640, 640), ignore_cross_boundary=True)
    # the crossing anchor is ignored; the best *inside* anchor becomes the box's positive
    assert paper.labels.tolist() == [-1, 1, 0]
    assert paper.cross_boundary.tolist() == [True, False, False]
    assert paper.best_anchor_rule.tolist() == [False, True, False]
    with pytest.raises(ValueError):
        assign_labels(anchors, gt, ignore_cross_boundary=True)


def test_labels_equal_torchvision_rpn_assignment(untrained) -> None:
    tiling = tile_anchors((1000, 600))
    gt = torch.tensor([[100, 80, 400, 500], [600, 50, 980, 300], [450, 400, 520, 470]], dtype=torch.float32)
    ours = assign_labels(tiling.anchors, gt)
    theirs, _ = untrained.model.rpn.assign_targets_to_anchors([tiling.anchors], [{"boxes": gt}])
    assert untrained.model.rpn.proposal_matcher.high_threshold == 0.7
    assert torch.equal(ours.labels.float(), theirs[0])
    counts = ours.counts()
    assert counts["positive"] + counts["negative"] + counts["ignored"] == tiling.num_anchors
    assert (ours.gt_num_positive >= 1).all()  # the best-anchor rule leaves no box without a positive


def test_minibatch_is_balanced_and_seeded() -> None:
    tiling = tile_anchors((1000, 600))
    many = tiling.anchors[tiling.inside][::150]  # 54 gt boxes, each equal to an anchor
    labels = assign_labels(tiling.anchors, many, (1000, 600), ignore_cross_boundary=True)
    assert (labels.gt_best_iou == 1).all()
    assert int((labels.labels == 1).sum()) > 128
    state = torch.random.get_rng_state()
    batch = sample_minibatch(labels, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())  # global RNG untouched
    assert batch.size == 256 and batch.positive.numel() == 128 and batch.negative.numel() == 128
    assert (labels.labels[batch.positive] == 1).all() and (labels.labels[batch.negative] == 0).all()
    assert not labels.cross_boundary[torch.cat([batch.positive, batch.negative])].any()
    again = sample_minibatch(labels, seed=3)
    assert torch.equal(batch.positive, again.positive) and torch.equal(batch.negative, again.negative)
    assert not torch.equal(batch.negative, sample_minibatch(labels, seed=4).negative)
    # few positives: all of them, negatives fill the batch
    small = assign_labels(tiling.anchors, torch.tensor([[450.0, 400, 520, 470]]))
    batch = sample_minibatch(small)
    npos = int((small.labels == 1).sum())
    assert 1 <= npos < 128 and batch.positive.numel() == npos and batch.size == 256
    # oracle: torchvision's own sampler after torch.manual_seed(seed) picks exactly the same anchors
    for which, seed in ((labels, 3), (labels, 4), (small, 0)):
        ours = sample_minibatch(which, seed=seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            pos, neg = BalancedPositiveNegativeSampler(256, 0.5)([which.labels.to(torch.float32)])
        assert torch.equal(ours.positive, torch.where(pos[0].bool())[0])
        assert torch.equal(ours.negative, torch.where(neg[0].bool())[0])


# --------------------------------------------------------------------------------------------------
# 2. custom anchors vs the trained head
# --------------------------------------------------------------------------------------------------


def test_own_anchor_set_gives_the_models_proposals(handset_trace) -> None:
    sizes, ratios = lab.model_anchor_set(handset_trace)
    out = lab.decode_with_custom_anchors(handset_trace, sizes, ratios)
    assert out.compatible
    assert torch.equal(out.custom_anchors, handset_trace.anchors)
    assert torch.equal(out.decoded, handset_trace.proposals)
    assert torch.equal(out.proposals, handset_trace.result.boxes)
    assert out.metrics["same anchor IoU (mean)"] == pytest.approx(1.0)
    assert out.metrics["proposals changed"] == 0
    assert "model's own anchor set" in custom_decode_text(out)


def test_custom_anchors_decode_by_the_box_coder_formula(handset_trace) -> None:
    sizes, ratios = lab.model_anchor_set(handset_trace)
    doubled = [tuple(2 * s for s in level) for level in sizes]
    gt = handset_trace.result.boxes[:3]
    out = lab.decode_with_custom_anchors(handset_trace, doubled, ratios, gt_boxes=gt)
    assert out.compatible and out.custom_k == out.model_k == [15, 15, 15]
    assert torch.allclose(handset_trace.deltas, torch.tensor(DELTAS).expand_as(handset_trace.deltas), atol=1e-5)
    for flat in (0, 777, out.custom_anchors.shape[0] - 1):
        by_hand = explain_decode(out.custom_anchors[flat], handset_trace.deltas[flat])
        x1, y1 = by_hand.x - by_hand.w / 2, by_hand.y - by_hand.h / 2
        assert out.decoded[flat].tolist() == pytest.approx([x1, y1, x1 + by_hand.w, y1 + by_hand.h], abs=1e-3)
        # the same cell: custom and model anchors share a centre
        assert (out.custom_anchors[flat].view(2, 2).mean(0) == handset_trace.anchors[flat].view(2, 2).mean(0)).all()
    # doubling every anchor (up to AnchorGenerator's rounding) quadruples every decoded box's area
    assert out.metrics["area ratio (median)"] == pytest.approx(4.0, rel=0.03)
    assert 0.15 < out.metrics["same anchor IoU (mean)"] < 0.3
    assert out.metrics["mean best IoU with gt (model anchors)"] == pytest.approx(1.0)
    assert out.metrics["mean best IoU with gt (custom anchors)"] < 0.9
    assert out.metrics["recall@0.7 (model anchors)"] == 1.0


def test_custom_anchors_follow_the_sidebar_settings(handset_trace) -> None:
    sizes, ratios = lab.model_anchor_set(handset_trace)
    fewer = handset_trace.refilter(post_nms_top_n=25, nms_iou=0.5)
    out = lab.decode_with_custom_anchors(handset_trace, sizes, ratios, own=fewer)
    assert out.result.settings == fewer.settings
    assert torch.equal(out.proposals, fewer.boxes) and out.metrics["anchors compared"] == 25


def test_working_to_input_inverts_to_working(handset_trace) -> None:
    boxes = torch.tensor([[10.0, 20.0, 300.0, 200.0], [0.0, 0.0, 600.0, 400.0]])
    on_input = lab.working_to_input(handset_trace, boxes)
    assert on_input[1].tolist() == [0.0, 0.0, *handset_trace.preprocess.input_size]
    assert torch.allclose(handset_trace.to_working(on_input), boxes)


def test_mismatched_anchor_count_is_explained(untrained_trace) -> None:
    out = lab.decode_with_custom_anchors(untrained_trace, (128, 256, 512), (0.5, 1.0, 2.0))
    assert not out.compatible and out.decoded is None and out.proposals is None
    assert out.model_k == [15, 15, 15] and out.custom_k == [9, 9, 9]
    assert out.mismatch == 0 and out.level_names[0] == untrained_trace.levels[0].name
    text = custom_decode_text(out)
    assert "15 anchors per cell" in text and "9 anchors per cell" in text
    with pytest.raises(ValueError):
        lab.decode_with_custom_anchors(untrained_trace, [(32.0,)] * 2, [(1.0,)] * 2)


def test_untrained_head_decodes_to_the_anchors(untrained_trace) -> None:
    sizes, ratios = lab.model_anchor_set(untrained_trace)
    out = lab.decode_with_custom_anchors(untrained_trace, [tuple(s * 1.5 for s in lv) for lv in sizes], ratios)
    assert torch.allclose(out.decoded, out.custom_anchors, atol=1e-3)
    assert not out.trained and "untrained" in custom_decode_text(out)


# --------------------------------------------------------------------------------------------------
# 3. recall
# --------------------------------------------------------------------------------------------------


def test_recall_known_boxes() -> None:
    proposals = torch.tensor([[20, 20, 30, 30], [0, 0, 10, 5], [0, 0, 10, 10]], dtype=torch.float32)
    gt = torch.tensor([[0, 0, 10, 10], [100, 100, 110, 110]], dtype=torch.float32)
    assert recall.recall_at(proposals, gt[:1], 0.5) == 1.0  # a box equal to a proposal
    assert recall.recall_at(proposals, gt[1:], 0.5) == 0.0  # a box no proposal touches
    assert recall.recall_at(proposals, gt[:1], 0.5, top_n=1) == 0.0
    curves = recall.recall_curves(proposals, gt, counts=[1, 2, 3])
    assert curves.recall_vs_count[0.5] == [0.0, 0.5, 0.5]  # IoU(gt 0, proposal 1) = 0.5 exactly
    assert curves.recall_vs_count[0.7] == [0.0, 0.0, 0.5]
    assert list(curves.recall_vs_iou) == [3]
    assert curves.recall_vs_iou[3] == [0.5] * 10  # gt 0 is hit exactly, gt 1 never
    assert curves.best_iou.tolist() == [1.0, 0.0] and curves.best_rank.tolist()[0] == 2
    assert curves.first_rank_at == {0.5: [2, -1], 0.7: [3, -1]}
    assert curves.uncovered(0.5) == [1]
    assert curves.average_recall == pytest.approx(0.5)
    with pytest.raises(ValueError):
        recall.recall_curves(proposals, torch.zeros(0, 4))
    empty = recall.recall_curves(torch.zeros(0, 4), gt)
    assert empty.uncovered() == [0, 1] and empty.counts == []


def test_recall_curves_are_monotone(handset_trace) -> None:
    boxes = handset_trace.result.boxes
    gt = torch.tensor([[40, 40, 200, 200], [250, 100, 470, 310], [10, 200, 90, 310]], dtype=torch.float32)
    curves = recall.recall_curves(boxes, gt)
    assert curves.counts[0] == 1 and curves.counts[-1] == boxes.shape[0]
    for values in curves.recall_vs_count.values():
        assert all(a <= b for a, b in zip(values, values[1:]))
    for values in curves.recall_vs_iou.values():
        assert all(a >= b for a, b in zip(values, values[1:]))
    assert curves.recall_vs_count[0.5][-1] == recall.recall_at(boxes, gt, 0.5)
    assert recall.log_spaced_counts(1000)[:4] == [1, 2, 3, 4] and recall.log_spaced_counts(1000)[-1] == 1000


# --------------------------------------------------------------------------------------------------
# 4. before the RPN
# --------------------------------------------------------------------------------------------------


def test_sliding_windows_count() -> None:
    spec = AnchorSpec((64.0, 128.0), (0.5, 1.0, 2.0), 32)
    windows = baselines.sliding_windows((640, 480), spec)
    assert windows.count == (640 // 32) * (480 // 32) * 6 == 1800
    assert (windows.boxes[:, :2] >= 0).all() and (windows.boxes[:, 2] <= 640).all() and (windows.boxes[:, 3] <= 480).all()
    raw = baselines.sliding_windows((640, 480), spec, clip=False)
    assert torch.equal(raw.boxes, tile_anchors((640, 480), spec).anchors)


def _assert_inside(boxes: torch.Tensor, width: int, height: int) -> None:
    assert boxes.shape[1] == 4 and boxes.shape[0] > 0
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()


def test_selective_search_on_a_real_photo() -> None:
    photo = PIL.Image.open(ASSETS / "coffee.jpg").convert("RGB")
    found = baselines.selective_search(photo, max_side=300)
    _assert_inside(found.boxes, *photo.size)
    assert found.count > 50 and found.seconds > 0 and not found.ranked
    # boxes reach the far edges of the full-size photo, so they were mapped back from the small copy
    assert found.boxes[:, 2].max() == pytest.approx(600, abs=2.5) and found.boxes[:, 3].max() == pytest.approx(400, abs=2.5)


def test_before_the_rpn_table(handset_trace) -> None:
    w, h = handset_trace.preprocess.input_size
    gt = torch.tensor([[50, 60, 250, 300], [300, 20, 470, 200]], dtype=torch.float32)
    spec = AnchorSpec((64.0, 128.0, 256.0), (0.5, 1.0, 2.0), 16)
    table = baselines.before_the_rpn(handset_trace, gt, spec, max_side=200)
    names = [row["method"] for row in table.rows]
    assert names == ["sliding windows", "Selective Search", "RPN"]
    windows, search, rpn = table.sets
    assert windows.count == math.ceil(w / 16) * math.ceil(h / 16) * 9
    _assert_inside(search.boxes, w, h)
    assert rpn.count == handset_trace.result.boxes.shape[0] and table.rows[2]["boxes"] == rpn.count
    for row, s in zip(table.rows, table.sets):
        assert row["recall@0.5"] == recall.recall_at(s.boxes, gt, 0.5)
        assert 0.0 <= row["recall@0.7"] <= row["recall@0.5"] <= 1.0


# --------------------------------------------------------------------------------------------------
# 5. trained vs untrained
# --------------------------------------------------------------------------------------------------


def test_side_by_side(handset_trace, untrained_trace, untrained) -> None:
    pair = baselines.side_by_side(handset_trace, untrained_trace, top_n=10)
    left, right = pair.left, pair.right
    assert left.trained and not right.trained
    for trace, view in ((handset_trace, left), (untrained_trace, right)):
        assert [tuple(m.prob.shape) for m in view.heatmaps] == [level.grid for level in trace.levels]
        assert view.boxes.shape == (10, 4)
        for m, level in zip(view.heatmaps, trace.levels):
            assert torch.equal(m.prob, torch.sigmoid(level.objectness).max(dim=0).values)
    # untrained: flat 0.5, proposals are their anchors; hand-set head: anchor 14 (logit 7) wins everywhere
    assert torch.allclose(torch.cat([m.prob.flatten() for m in right.heatmaps]), torch.tensor(0.5))
    assert right.stats[f"IoU of top-10 proposals with their anchors"] == pytest.approx(1.0)
    assert all((m.best_anchor == 14).all() for m in left.heatmaps)
    assert left.stats["max objectness"] == pytest.approx(torch.sigmoid(torch.tensor(7.0)).item(), abs=1e-4)
    assert pair.same_input and pair.untrained == [baselines.untrained_output(untrained_trace)]
    flat = pair.untrained[0]  # untrained: every objectness 0.5, no box moved
    assert flat.spread < 1e-3 and flat.mean == pytest.approx(0.5, abs=1e-3) and flat.largest_shift < 0.5
    assert "untrained" in flat.label
    # the same post-processing for both, when asked
    fewer = baselines.side_by_side(handset_trace, untrained_trace, top_n=50,
                                   settings=handset_trace.default_settings.with_changes(post_nms_top_n=7))
    assert fewer.left.boxes.shape == (7, 4) and fewer.right.boxes.shape == (7, 4)
    assert torch.equal(fewer.left.boxes, handset_trace.refilter(post_nms_top_n=7).boxes)
    other = rpn_viz.trace(untrained, ASSETS / "astronaut.jpg")
    with pytest.raises(ValueError):
        baselines.side_by_side(handset_trace, other)


# --------------------------------------------------------------------------------------------------
# 6. receptive field
# --------------------------------------------------------------------------------------------------


def _positive_convs(*layers: nn.Conv2d) -> nn.Sequential:
    net = nn.Sequential(*layers)
    with torch.no_grad():
        for layer in layers:
            layer.weight.uniform_(0.5, 1.0)  # positive weights: no cancellation, gradient > 0 on the support
            layer.bias.zero_()
    return net


def test_receptive_field_of_two_3x3_convs_is_5x5() -> None:
    net = _positive_convs(nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(4, 3, 3, padding=1))
    image = torch.rand(1, 2, 21, 23)
    with torch.inference_mode():  # the caller's mode must not matter
        erf = receptive.effective_receptive_field(net, image, row=10, col=7)
    nonzero = torch.nonzero(erf.weights > 0)
    assert nonzero[:, 0].min() == 8 and nonzero[:, 0].max() == 12 and nonzero[:, 1].min() == 5 and nonzero[:, 1].max() == 9
    assert (erf.weights[8:13, 5:10] > 0).all() and erf.weights.sum() == pytest.approx(1.0)
    assert erf.support_box == (5.0, 8.0, 10.0, 13.0)
    assert erf.peak == (7, 10)  # the centre pixel reaches the cell along the most paths
    assert erf.mass_in_box >= 0.95
    x1, y1, x2, y2 = erf.mass_box
    assert 5 <= x1 <= 7 < x2 <= 10 and 8 <= y1 <= 10 < y2 <= 13


def test_receptive_field_with_a_stride() -> None:
    # a stride-2 3×3 conv then a 3×3 conv: the field is 3 + 2·2 = 7 pixels, centred on input (2r, 2c)
    net = _positive_convs(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.Conv2d(2, 2, 3, padding=1))
    erf = receptive.effective_receptive_field(net, torch.rand(1, 1, 32, 32), row=5, col=8)
    assert erf.support_box == (16 - 3, 10 - 3, 16 + 4, 10 + 4)
    corner = receptive.effective_receptive_field(net, torch.rand(1, 1, 32, 32), row=0, col=0)
    assert corner.support_box == (0.0, 0.0, 4.0, 4.0)  # cut by the image border (zero padding)
    with pytest.raises(ValueError):
        receptive.effective_receptive_field(net, torch.rand(1, 1, 32, 32), row=16, col=0)


def test_mass_box_on_known_weights() -> None:
    weights = torch.zeros(20, 30)
    weights[5:10, 10:20] = 1.0
    weights /= weights.sum()
    box, held = receptive.mass_box(weights, 0.95)
    assert box == (10.0, 5.0, 20.0, 10.0) and held == pytest.approx(1.0)  # trimming a column loses 10 %
    weights = torch.zeros(1, 101)
    weights[0, 0], weights[0, 50], weights[0, 100] = 0.01, 0.98, 0.01
    box, held = receptive.mass_box(weights, 0.95)
    assert box == (50.0, 0.0, 51.0, 1.0) and held == pytest.approx(0.98)


@pytest.mark.slow
def test_receptive_field_on_the_model(untrained_trace) -> None:
    images = torchvision_input(untrained_trace.model, untrained_trace.image)
    assert torch.equal(receptive.model_input(untrained_trace)[0], images.tensors[0])  # torchvision's, same device
    level, row, col = 0, 5, 7
    with torch.inference_mode():
        erf = receptive.receptive_field(untrained_trace, level, row, col)
    w, h = untrained_trace.preprocess.padded_size
    assert erf.weights.shape == (h, w) and erf.weights.sum() == pytest.approx(1.0, abs=1e-4)
    assert erf.cell_centre == (7 * 32.0, 5 * 32.0)
    assert torch.equal(erf.cell_anchors, untrained_trace.levels[0].anchors[5, 7])
    x1, y1, x2, y2 = erf.mass_box
    assert x1 <= erf.cell_centre[0] <= x2 and y1 <= erf.cell_centre[1] <= y2
    assert erf.mass_in_box >= 0.95
    # the head's 3×3 conv sees one more cell each way: the objectness field is at least as wide
    wider = receptive.receptive_field(untrained_trace, level, row, col, target="objectness")
    assert wider.mass_box[2] - wider.mass_box[0] >= (x2 - x1) - 1
