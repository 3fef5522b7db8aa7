"""Unmatched boxes, best possible recall and k-means anchors (rpn_viz.lab.anchor_fit).

Oracles: hand-computed IoUs on hand-made geometry (one 32-px anchor every 16 px, so every anchor's
corners are known), torchvision itself (the model's transform and AnchorGenerator inside a real
trace), and a synthetic set with two known shape clusters for k-means.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

import rpn_viz
from rpn_viz.lab import anchor_fit as af
from rpn_viz.lab import shape_kmeans
from rpn_viz.pipeline.anchors import AnchorSpec, tile_anchors
from rpn_viz.io.box_files import ImageBoxes

ASSETS = Path(__file__).resolve().parents[1] / "assets"
FAST_MODEL = "mobilenet_v3_large_320_fpn"

# one square 32-px anchor at every cell of a stride-16 grid over a 128×128 image: the anchor of
# cell (r, c) is [16c − 16, 16r − 16, 16c + 16, 16r + 16]
SPEC = AnchorSpec((32.0,), (1.0,), 16)
IMAGE = (128, 128)


def match(*boxes: list[float]) -> af.BoxMatch:
    anchors = tile_anchors(IMAGE, SPEC).anchors
    return af.match_boxes(anchors, torch.tensor(boxes, dtype=torch.float32))


def test_a_box_on_an_anchor_is_matched_with_iou_one() -> None:
    m = match([32, 32, 64, 64])  # exactly the anchor of cell (3, 3)
    assert m.best_iou.tolist() == [1.0]
    assert m.anchors[m.best_anchor[0]].tolist() == [32, 32, 64, 64]
    assert m.categories == [af.MATCHED] and m.num_matched.tolist() == [1] and m.num_best_match.tolist() == [0]


def test_a_box_between_two_strides_is_positive_only_as_best_match() -> None:
    # 32×32 box centred at x = 56, halfway between the centres 48 and 64: 24×32 overlap with both
    m = match([40, 32, 72, 64])
    assert m.best_iou.item() == pytest.approx(24 * 32 / (1024 + 1024 - 24 * 32))  # 0.6
    assert m.categories == [af.BEST_MATCH_ONLY]
    assert m.num_best_match.tolist() == [2] and m.num_matched.tolist() == [0]  # both tied anchors


def test_a_box_smaller_than_the_smallest_anchor() -> None:
    m = match([44, 44, 52, 52])  # 8×8 inside the anchor centred at (48, 48)
    assert m.best_iou.item() == pytest.approx(64 / 1024)
    assert m.anchors[m.best_anchor[0]].tolist() == [32, 32, 64, 64]
    assert m.categories == [af.BEST_MATCH_ONLY] and m.num_best_match.tolist() == [1]


def test_an_extreme_aspect_ratio_ties_seven_anchors() -> None:
    # 128×8 strip centred on row y = 48: every anchor of that row fully spanned in x overlaps 32×8
    m = match([0, 44, 128, 52])
    assert m.best_iou.item() == pytest.approx(256 / (1024 + 1024 - 256))  # 1/7
    assert m.num_best_match.tolist() == [7]  # cells x = 16, 32, …, 112 tie; x = 0 overlaps only 16 px
    assert m.categories == [af.BEST_MATCH_ONLY]


def test_a_box_whose_best_anchor_belongs_to_another_box_gets_no_positive() -> None:
    m = match([32, 32, 64, 64], [44, 44, 52, 52])  # the small box's best anchor is the big box's IoU-1 anchor
    assert m.categories == [af.MATCHED, af.UNMATCHED]
    assert m.counts() == {af.MATCHED: 1, af.BEST_MATCH_ONLY: 0, af.UNMATCHED: 1}
    assert m.best_iou[1].item() == pytest.approx(64 / 1024)  # it still has a best anchor, and we show it
    assert m.best_anchor_boxes[1].tolist() == [32, 32, 64, 64]


def test_ignoring_cross_boundary_anchors_changes_the_best_anchor() -> None:
    anchors = tile_anchors(IMAGE, SPEC).anchors
    box = torch.tensor([[0.0, 0.0, 32.0, 32.0]])  # best: cell (1, 1) anchor [0, 0, 32, 32], inside the image
    free = af.match_boxes(anchors, torch.tensor([[0.0, 0.0, 16.0, 16.0]]))
    inside = af.match_boxes(anchors, torch.tensor([[0.0, 0.0, 16.0, 16.0]]), IMAGE, ignore_cross_boundary=True)
    assert free.best_iou.item() == pytest.approx(256 / 1024)  # the anchor at (0, 0) crosses the border
    assert inside.best_iou.item() == pytest.approx(256 / 1024)  # [0, 0, 32, 32] is inside and as good
    assert af.match_boxes(anchors, box, IMAGE, ignore_cross_boundary=True).best_iou.item() == 1.0
    assert inside.anchors[inside.best_anchor[0]].tolist() == [0, 0, 32, 32]


def test_set_statistics_best_possible_recall_and_labels() -> None:
    images = [ImageBoxes("a.jpg", 128, 128, ((32, 32, 64, 64), (40, 32, 72, 64)), ("cat", "dog")),
              ImageBoxes("b.jpg", 128, 128, ((44, 44, 52, 52),), ("cat",)),
              ImageBoxes("no-size.jpg", None, None, ((0, 0, 10, 10),), ("cat",))]
    resize = af.Resize(128, 128, 1)  # the network sees these photos as they are
    stats = af.set_stats(af.GridAnchors(SPEC), images, resize)
    assert stats.num_images == 2 and stats.num_boxes == 3
    assert stats.best_iou.tolist() == pytest.approx([1.0, 0.6, 64 / 1024])
    assert stats.best_possible_recall(0.5) == pytest.approx(2 / 3)
    assert stats.best_possible_recall(0.7) == pytest.approx(1 / 3)
    assert stats.mean_best_iou == pytest.approx((1 + 0.6 + 0.0625) / 3)
    assert stats.counts() == {af.MATCHED: 1, af.BEST_MATCH_ONLY: 2, af.UNMATCHED: 0}
    assert stats.counts_by_label()["cat"] == {af.MATCHED: 1, af.BEST_MATCH_ONLY: 1, af.UNMATCHED: 0}


def test_resize_frame_matches_torchvisions_transform(untrained_fast) -> None:
    transform = untrained_fast.model.transform
    resize = af.Resize(int(transform.min_size[-1]), int(transform.max_size), int(transform.size_divisible))
    for w, h in [(640, 427), (427, 640), (1000, 333), (451, 300), (4000, 100)]:
        images, _ = transform([torch.zeros(3, h, w)])
        frame = resize.frame((w, h))
        assert frame.input_size == tuple(reversed(images.image_sizes[0])), (w, h)
        assert frame.padded_size == (images.tensors.shape[-1], images.tensors.shape[-2]), (w, h)


def test_model_anchors_reproduce_the_traced_anchors(untrained_fast) -> None:
    for size in [(640, 427), (300, 451), (1000, 333)]:
        trace = rpn_viz.trace(untrained_fast, PIL.Image.new("RGB", size))
        model = af.ModelAnchors.of(trace)
        assert torch.equal(model.anchors(af.trace_frame(trace)), trace.anchors), size
        # and from the photo size alone, as the whole-set statistics tile other photos
        frame = af.Resize.of(trace).frame(size)
        assert frame.padded_size == trace.preprocess.padded_size
        assert torch.equal(model.anchors(frame), trace.anchors), size


def test_model_anchors_of_the_papers_stride_16_rpn() -> None:
    from rpn_viz.model.paper import MOBILENET_V2_IMAGENET, load_paper_model
    from rpn_viz.model.weights import is_available

    if not is_available(MOBILENET_V2_IMAGENET):
        pytest.skip(f"{MOBILENET_V2_IMAGENET.filename} not on this machine (put it in ../shared/weights or set RPN_VIZ_WEIGHTS_DIR)")
    loaded = load_paper_model(device="cpu")
    for size in [(640, 427), (451, 300)]:
        trace = rpn_viz.trace(loaded, PIL.Image.new("RGB", size))
        model = af.ModelAnchors.of(trace)
        assert model.strides == (16,)
        assert torch.equal(model.anchors(af.Resize.of(trace).frame(size)), trace.anchors), size


def test_shape_anchors_are_the_fitted_shapes_at_every_cell() -> None:
    source = af.ShapeAnchors((32.0, 64.0), (1.0, 0.25), 16)
    anchors = source.anchors(af.Frame(IMAGE, IMAGE, (1.0, 1.0)))
    assert anchors.shape == (2 * 8 * 8, 4)
    sizes = {(round(float(b[2] - b[0])), round(float(b[3] - b[1]))) for b in anchors}
    assert sizes == {(32, 32), (128, 32)}  # 64 px at h/w = 1/4: 128 wide, 32 tall (torchvision's rounding)


# --------------------------------------------------------------------------------------------------
# k-means
# --------------------------------------------------------------------------------------------------


def two_clusters(seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    wide = np.stack([rng.normal(200, 8, 60), rng.normal(50, 3, 60)], axis=1)  # 200×50
    tall = np.stack([rng.normal(40, 2, 40), rng.normal(120, 5, 40)], axis=1)  # 40×120
    return np.concatenate([wide, tall])


def test_kmeans_recovers_two_known_shape_clusters() -> None:
    shapes = two_clusters()
    fit = shape_kmeans.kmeans_shapes(shapes, 2, seed=0)
    assert fit.cluster_sizes() == [40, 60]  # sorted by area: tall 40×120 first
    assert fit.widths == pytest.approx([40, 200], rel=0.03) and fit.heights == pytest.approx([120, 50], rel=0.03)
    assert fit.ratios == pytest.approx([3.0, 0.25], rel=0.05)
    assert fit.sizes == pytest.approx([np.sqrt(40 * 120), 100], rel=0.03)
    assert fit.assignment[:60].tolist() == [1] * 60 and fit.assignment[60:].tolist() == [0] * 40
    assert fit.mean_iou > 0.85


def test_kmeans_is_reproducible_and_leaves_global_random_state_alone() -> None:
    shapes = np.abs(np.random.default_rng(5).normal(100, 40, (200, 2))) + 5
    np.random.seed(123)
    torch.manual_seed(123)
    before = (np.random.random(), torch.rand(1).item())
    np.random.seed(123)
    torch.manual_seed(123)
    a = shape_kmeans.kmeans_shapes(shapes, 5, seed=7)
    b = shape_kmeans.kmeans_shapes(shapes, 5, seed=7)
    assert (np.random.random(), torch.rand(1).item()) == before
    assert np.array_equal(a.widths, b.widths) and np.array_equal(a.assignment, b.assignment)
    c = shape_kmeans.kmeans_shapes(shapes, 5, seed=8)
    assert c.mean_iou == pytest.approx(a.mean_iou, abs=0.05)  # another seed, another (as good) local optimum


def test_kmeans_needs_as_many_shapes_as_clusters() -> None:
    with pytest.raises(ValueError, match="k = 3 needs at least 3 different box shapes; these boxes have 2"):
        shape_kmeans.kmeans_shapes([[10, 20], [10, 20], [30, 5]], 3)


def test_fitted_anchors_raise_best_possible_recall() -> None:
    # boxes far from any square 32-px anchor: 24×96 tall and 96×24 wide, centred on anchor centres
    boxes = [(c - 12, 48 - 48, c + 12, 48 + 48) for c in (32, 64, 96)] + [(64 - 48, r - 12, 64 + 48, r + 12) for r in (16, 112)]
    image = ImageBoxes("x.jpg", 128, 128, tuple(boxes), ("a",) * 5)
    resize = af.Resize(128, 128, 1)
    before = af.set_stats(af.GridAnchors(SPEC), [image], resize)
    fit = shape_kmeans.kmeans_shapes(shape_kmeans.box_shapes([image], resize), 2, seed=0)
    after = af.set_stats(fit.anchors(16), [image], resize)
    assert before.best_possible_recall(0.7) == 0 and after.best_possible_recall(0.7) == 1
    assert after.mean_best_iou == pytest.approx(1.0)
    grid = shape_kmeans.as_grid(fit, 16)
    assert grid.sizes == (48.0,) and grid.ratios == (0.25, 4.0)  # √(24·96) = 48; as AnchorGenerator's sets


@pytest.fixture(scope="module")
def untrained_fast():
    return rpn_viz.load_model(FAST_MODEL, untrained=True)
