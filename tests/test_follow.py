"""One anchor's history (rpn_viz.lab.follow) against the trace's own stages, torchvision's batched_nms
and the step-by-step NMS replay, on a real photo with the calibrated random checkpoint (varied scores)."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import batched_nms

import rpn_viz
from rpn_viz.lab.follow import box_at, follow, kept_steps
from rpn_viz.pipeline.nms import greedy_nms_steps

from conftest import ASSETS


@pytest.fixture(scope="module")
def trace(scrambled):
    return rpn_viz.trace(scrambled, ASSETS / "coffee.jpg")


@pytest.fixture(scope="module")
def replay(trace):
    """Greedy NMS step by step over the boxes that reached NMS, and those boxes' candidate positions."""
    r = trace.result
    pos = r.nms_input_pos
    return greedy_nms_steps(r.box[pos], r.prob[pos], r.settings.nms_iou, levels=r.level[pos]), pos


def test_every_proposal_has_its_rank_and_the_step_that_kept_it(trace, replay):
    r = trace.result
    steps, pos = replay
    assert r.final_pos.numel() > 100
    for rank, p in enumerate(r.final_pos.tolist()):
        h = follow(trace, r, int(r.anchor_index[p]))
        assert (h.stage, h.final_rank, h.candidate_pos) == ("proposal", rank, p)
        assert int(pos[steps[h.nms_step].kept]) == p  # the replay keeps it at that step
        assert torch.allclose(torch.tensor(h.clipped_box), r.boxes[rank])
        assert h.prob == pytest.approx(float(r.scores[rank]))
        level, row, col, a = trace.locate(h.flat_index)
        assert (h.level, h.row, h.col, h.anchor) == (level.index, row, col, a)
        assert torch.equal(level.anchors[row, col, a], torch.tensor(h.anchor_box))
        assert torch.equal(level.decoded[row, col, a], torch.tensor(h.decoded_box))
    # the boxes a proposal removed are the ones the replay removed at its step, with the same IoUs
    busiest = max(range(r.final_pos.numel()), key=lambda i: len(follow(trace, r, int(r.anchor_index[r.final_pos[i]])).removed))
    h = follow(trace, r, int(r.anchor_index[r.final_pos[busiest]]))
    step = steps[h.nms_step]
    assert len(h.removed) >= 2
    assert sorted(m.candidate_pos for m in h.removed) == sorted(int(pos[v]) for v in step.suppressed)
    by_pos = {int(pos[v]): iou for v, iou in zip(step.suppressed, step.ious)}
    for m in h.removed:
        assert m.iou == pytest.approx(by_pos[m.candidate_pos], abs=1e-5) and m.iou > r.settings.nms_iou
        assert m.flat_index == int(r.anchor_index[m.candidate_pos])


def test_kept_boxes_are_torchvisions_batched_nms_in_greedy_order(trace, replay):
    r = trace.result
    steps, pos = replay
    keep = batched_nms(r.box[pos], r.prob[pos], r.level[pos], r.settings.nms_iou)
    assert set(pos[keep].tolist()) == set(r.nms_kept_pos.tolist())
    order = kept_steps(r)
    assert [int(pos[s.kept]) for s in steps] == sorted(order, key=order.get)


def test_a_suppressed_box_names_the_kept_box_that_removed_it_and_when(trace, replay):
    r = trace.result
    steps, pos = replay
    fates = r.fates()
    suppressed = [p for p, fate in enumerate(fates) if fate == "suppressed"]
    assert len(suppressed) > 50
    for p in suppressed[:: max(1, len(suppressed) // 40)]:
        h = follow(trace, r, int(r.anchor_index[p]))
        assert h.stage == "suppressed" and h.final_rank is None and h.nms_step is None
        assert h.suppressor_pos == int(r.suppressed_by[p])
        assert h.suppressor_flat == int(r.anchor_index[h.suppressor_pos])
        step = steps[h.suppressor_step]
        assert int(pos[step.kept]) == h.suppressor_pos
        local = torch.where(pos == p)[0].item()
        assert local in step.suppressed  # removed at exactly that step
        assert h.suppress_iou == pytest.approx(step.ious[step.suppressed.index(local)], abs=1e-5)
        assert h.suppress_iou > r.settings.nms_iou
        assert follow(trace, r, h.suppressor_flat).level == h.level  # NMS works per level


def test_filtered_boxes_say_which_stage_dropped_them(trace):
    middle = float(trace.refilter(pre_nms_top_n=200).prob.median())  # half the candidates fall below it
    strict = trace.refilter(score_thresh=middle, min_size=30.0, pre_nms_top_n=200, post_nms_top_n=5)
    fates = strict.fates()
    expected = {"low score": "low score", "too small": "too small", "beyond top-N": "beyond post-NMS top-N"}
    for fate, stage in expected.items():
        p = fates.index(fate)
        h = follow(trace, strict, int(strict.anchor_index[p]))
        assert (h.stage, h.candidate_pos, h.final_rank) == (stage, p, None)
    low = follow(trace, strict, int(strict.anchor_index[fates.index("low score")]))
    assert low.prob < middle and low.nms_rank is None
    small = follow(trace, strict, int(strict.anchor_index[fates.index("too small")]))
    w, h = small.clipped_box[2] - small.clipped_box[0], small.clipped_box[3] - small.clipped_box[1]
    assert min(w, h) < 30.0
    beyond = follow(trace, strict, int(strict.anchor_index[fates.index("beyond top-N")]))
    assert beyond.kept_rank >= 5 and beyond.nms_step is not None
    # an anchor outside its level's top 200 logits never became a candidate
    chosen = set(strict.anchor_index.tolist())
    outside = next(i for i in torch.argsort(trace.logits).tolist() if i not in chosen)
    h = follow(trace, strict, outside)
    assert h.stage == "beyond pre-NMS top-N" and h.candidate_pos is None and h.level_rank >= 200
    assert h.level_rank < h.level_size


def test_clipping_is_reported(trace):
    r = trace.result
    changed = torch.where((r.box != r.box_unclipped).any(dim=1))[0]
    assert changed.numel() > 0
    assert follow(trace, r, int(r.anchor_index[changed[0]])).clipped
    same = torch.where((r.box == r.box_unclipped).all(dim=1))[0]
    assert not follow(trace, r, int(r.anchor_index[same[0]])).clipped


def test_out_of_range_index_is_refused(trace):
    with pytest.raises(IndexError):
        follow(trace, trace.result, trace.anchors.shape[0])


def test_the_smallest_box_under_a_click_wins():
    boxes = torch.tensor([[0.0, 0, 100, 100], [10, 10, 50, 50], [20, 20, 30, 30], [200, 200, 300, 300]])
    assert box_at(boxes, 25, 25) == 2
    assert box_at(boxes, 15, 15) == 1
    assert box_at(boxes, 80, 80) == 0
    assert box_at(boxes, 150, 150) is None
    assert box_at(torch.zeros((0, 4)), 1, 1) is None


def test_one_proposal_through_the_second_stage_matches_roi_heads(trace):
    import copy
    from collections import OrderedDict

    from rpn_viz.lab.detect import one_proposal

    box = trace.result.boxes[0]
    view = one_proposal(trace, box)
    heads = copy.copy(trace.model.model.roi_heads)  # every class kept, no threshold: one detection per class
    heads.score_thresh, heads.nms_thresh, heads.detections_per_img = 0.0, 1.0, 1000
    features = OrderedDict((level.name, level.features[None]) for level in trace.levels)
    w, h = trace.preprocess.input_size
    with torch.inference_mode():
        found = heads(features, [box[None]], [(h, w)])[0][0]
    mine = torch.where(found["labels"] == view.label)[0]
    assert mine.numel() == 1
    assert float(found["scores"][mine]) == pytest.approx(view.score, rel=1e-5)
    assert torch.allclose(found["boxes"][mine][0], torch.tensor(view.box), atol=1e-3)
    assert view.score == pytest.approx(float(found["scores"].max()), rel=1e-5)  # the best class
