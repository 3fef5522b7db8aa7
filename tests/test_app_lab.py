"""AppTest checks of the "Anchor lab & comparisons" pages: each renders without an exception and shows
the real numbers from rpn_viz (checked against the library here, not against copied constants).

The app runs on the untrained MobileNetV3 FPN (opened as the "no trained model" screen offers it:
no weights file needed) or on a custom checkpoint the tests make; ground-truth boxes are put in
``st.session_state["gt_boxes"]`` the way ``ui.boxes`` stores them.
"""

from __future__ import annotations

import pytest

from rpn_viz.anchors import PAPER_ANCHORS, AnchorSpec, tile_anchors
from ui.apptest import check, downloadable_pictures, run_step, text_of

GT = [[60.0, 300.0, 330.0, 900.0], [380.0, 120.0, 640.0, 520.0]]  # photo pixels of the first sample


def test_anchor_lab_counts_and_labels() -> None:
    at = run_step("lab_anchors", untrained=True, gt=GT)
    text = text_of(at)
    paper = tile_anchors((1000, 600), PAPER_ANCHORS)
    assert f"**{paper.num_anchors:,}**" in text and f"**{paper.num_inside:,}**" in text
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["anchors per position k"] == "9"
    assert "positive" in text and "mini-batch of 256" in text
    assert downloadable_pictures(at) >= 3  # tiling, inside/crossing bars, mini-batch
    # the paper's example, with other sliders: k follows the choices
    at.radio(key="lab_image").set_value("paper")
    at.multiselect(key="lab_ratios").set_value([1.0])
    at.run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["anchors per position k"] == "3"
    assert metrics["anchors"] == f"{tile_anchors((1000, 600), AnchorSpec((128, 256, 512), (1.0,), 16)).num_anchors:,}"


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
    assert downloadable_pictures(at) >= 3  # two curves and the coverage picture
    assert len(at.dataframe) >= 1


@pytest.mark.slow
def test_before_the_rpn_page() -> None:
    at = run_step("lab_before", untrained=True, gt=GT, lab_before_side=200, lab_before_mode="single")
    assert any("Press the button" in i.value for i in at.info)
    check(at.button(key="lab_before_run").click().run())
    text = text_of(at)
    assert "Selective Search boxes" in text and "Recall at IoU 0.5" in text
    rows = at.dataframe[0].value
    assert list(rows["method"]) == ["sliding windows", "Selective Search", "RPN"]
    assert downloadable_pictures(at) >= 2


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
