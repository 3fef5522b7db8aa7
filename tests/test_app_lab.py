"""AppTest checks of the "Anchor lab & comparisons" pages: each renders without an exception and shows
the real numbers from rpn_viz (checked against the library here, not against copied constants).

The app runs on the untrained MobileNetV3 FPN (opened as the "no trained model" screen offers it:
no weights file needed) or on a custom checkpoint the tests make; ground-truth boxes are put in
``st.session_state["gt_boxes"]`` the way ``ui.boxes`` stores them.
"""

from __future__ import annotations

import pytest

from rpn_viz.pipeline.anchors import PAPER_ANCHORS, AnchorSpec, tile_anchors
from ui.apptest import charts, check, downloadable_pictures, run_step, text_of

GT = [[60.0, 300.0, 330.0, 900.0], [380.0, 120.0, 640.0, 520.0]]  # photo pixels of the first sample


def test_anchor_lab_counts_and_labels() -> None:
    at = run_step("lab_anchors", untrained=True, gt=GT)
    text = text_of(at)
    paper = tile_anchors((1000, 600), PAPER_ANCHORS)
    assert f"**{paper.num_anchors:,}**" in text and f"**{paper.num_inside:,}**" in text
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["anchors per position k"] == "9"
    assert "positive" in text and "mini-batch of 256" in text
    assert downloadable_pictures(at) >= 2  # tiling, mini-batch
    assert len(charts(at)) == 1  # inside / crossing bars
    # the paper's example, with other sliders: k follows the choices
    at.radio(key="lab_image").set_value("paper")
    at.multiselect(key="lab_ratios").set_value([1.0])
    at.run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["anchors per position k"] == "3"
    one_ratio = tile_anchors((1000, 600), AnchorSpec((128, 256, 512), (1.0,), 16))
    assert metrics["anchors"] == f"{one_ratio.num_anchors:,}"
    ((_, rows),) = charts(at)  # per shape, anchors inside the image and crossing its border: known geometry
    inside = [r["value"] for r in rows if r["part"] == "inside the image"]
    crossing = [r["value"] for r in rows if r["part"] == "crossing the border"]
    assert inside == one_ratio.inside_per_shape()
    assert [a + b for a, b in zip(inside, crossing)] == [one_ratio.num_positions] * 3


def test_custom_anchors_page() -> None:
    at = run_step("lab_custom", untrained=True, gt=GT, lab_custom_scale=2.0)
    text = text_of(at)
    assert "Anchor position a of every cell now gets your a-th anchor" in text
    assert "untrained" in text
    assert downloadable_pictures(at) >= 2
    at.text_input(key="lab_custom_ratios").set_value("0.5, 1, 2, 3")
    at.run()
    assert not at.exception
    assert any("20 anchors per cell" in w.value for w in at.warning)  # 5 sizes × 4 ratios, head has 15


def test_recall_page() -> None:
    at = run_step("lab_recall", untrained=True, gt=[])  # the user cleared the sample's own boxes
    assert any("at least one ground-truth box" in i.value for i in at.info)
    at = run_step("lab_recall", untrained=True)  # a sample starts with its hand-drawn boxes
    assert "of your 7 boxes" in text_of(at)
    at = run_step("lab_recall", untrained=True, gt=GT)
    assert "of your 2 boxes" in text_of(at)
    assert downloadable_pictures(at) >= 1  # the coverage picture
    assert len(at.dataframe) >= 1
    (by_count, count_rows), (by_iou, iou_rows) = charts(at)  # the two recall curves, native charts
    assert by_count["title"] == "Recall vs number of proposals" and by_iou["title"].startswith("Recall vs IoU")
    for rows, rising in ((count_rows, True), (iou_rows, False)):
        assert rows and all(0.0 <= r["y"] <= 1.0 for r in rows)
        for name in {r["series"] for r in rows}:  # recall grows with more proposals, falls with a stricter IoU
            ys = [r["y"] for r in sorted((r for r in rows if r["series"] == name), key=lambda r: r["x"])]
            assert ys == sorted(ys, reverse=not rising), name
    at05 = max((r for r in count_rows if r["series"] == "IoU ≥ 0.5"), key=lambda r: r["x"])["y"]
    assert f"**{at05:.0%}** at IoU 0.5" in text_of(at)  # the curve ends where the text says


@pytest.mark.slow
def test_before_the_rpn_page() -> None:
    at = run_step("lab_before", untrained=True, gt=GT, lab_before_side=200, lab_before_mode="single")
    assert any("Press the button" in i.value for i in at.info)
    check(at.button(key="lab_before_run").click().run())
    text = text_of(at)
    assert "Selective Search boxes" in text and "Recall at IoU 0.5" in text
    rows = at.dataframe[0].value
    assert list(rows["method"]) == ["sliding windows", "Selective Search", "RPN"]
    assert downloadable_pictures(at) >= 1  # the three methods' boxes over the photo
    (count, count_rows), (_, seconds_rows) = charts(at)  # bars: how many boxes, how long
    assert count["title"] == "How many boxes"
    assert [(r["name"], r["value"]) for r in count_rows] == list(zip(rows["method"], rows["boxes"]))
    assert [r["name"] for r in seconds_rows] == list(rows["method"])


@pytest.fixture
def custom_app(monkeypatch, scrambled_checkpoint):
    """The app offers (and picks first) a custom checkpoint the tests make: varied scores and deltas."""
    monkeypatch.setenv("RPN_VIZ_CHECKPOINT", str(scrambled_checkpoint))


def test_trained_vs_untrained_with_a_custom_checkpoint(custom_app) -> None:
    at = run_step("lab_untrained")
    assert not at.info  # both sides are there
    assert any("every objectness is 0.500" in w.value for w in at.warning)
    table = at.dataframe[0].value
    assert list(table.columns) == ["measure", "custom weights", "untrained"]
    spread = dict(zip(table["measure"], table["custom weights"]))["spread of objectness (std)"]
    assert spread > 0.01  # the checkpoint's scores vary; the untrained ones do not
    assert downloadable_pictures(at) >= 2


def test_custom_anchors_move_a_real_heads_boxes(custom_app) -> None:
    at = run_step("lab_custom", gt=GT, lab_custom_scale=2.0)
    table = at.dataframe[0].value
    values = dict(zip(table["measure"], table["value"]))
    assert values["area ratio (median)"] == pytest.approx(4.0, rel=0.05)
    assert values["same anchor IoU (mean)"] < 0.5
    assert "untrained" not in text_of(at)


def test_trained_vs_untrained_page() -> None:
    at = run_step("lab_untrained", untrained=True)
    # no trained weights here: the page says so and shows the untrained side, measured
    assert any("not on this machine" in i.value for i in at.info)
    assert any("every objectness is 0.500" in w.value for w in at.warning)
    assert downloadable_pictures(at) >= 2


def test_receptive_field_page() -> None:
    at = run_step("lab_receptive", untrained=True, lab_receptive_level="pool")
    assert any("press the button" in i.value for i in at.info)
    check(at.button(key="lab_receptive_run").click().run())
    text = text_of(at)
    assert "of the gradient" in text and "anchors are" in text
    assert downloadable_pictures(at) >= 1
