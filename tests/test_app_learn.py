"""AppTest check of "T1 · Watch an RPN learn": train the paper's head on a box, see the curves and the
numbers, then view the pipeline with "your RPN".

Needs the ImageNet MobileNetV2 file (in ../shared/weights, $RPN_VIZ_WEIGHTS_DIR or torch's cache);
skips, saying why, without it. Boxes go into ``st.session_state["gt_boxes"]`` as ``ui.boxes`` keeps them.
"""

from __future__ import annotations

import pytest

from rpn_viz.model.paper import MOBILENET_V2_IMAGENET
from rpn_viz.model.weights import is_available
from ui.apptest import app_test, check, text_of
from ui.resources import YOUR_RPN_KEY

CAT_BOX = [0.0, 0.0, 400.0, 300.0]  # the cat's face fills the photo up to the grey background

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not is_available(MOBILENET_V2_IMAGENET),
    reason=f"needs {MOBILENET_V2_IMAGENET.filename} (ImageNet MobileNetV2) in ../shared/weights, $RPN_VIZ_WEIGHTS_DIR or torch's cache",
)]


def test_train_then_view_the_pipeline_with_your_rpn() -> None:
    at = app_test("learn", untrained=True, sample="Chelsea the cat", gt=[CAT_BOX], learn_steps=20, learn_every=10)
    at.run()
    check(at)
    assert any("Press **Train**" in i.value for i in at.info)
    assert YOUR_RPN_KEY not in at.session_state
    # the page trains its own model: the sidebar's model is not run on the photo (no trace, no slides here)
    assert any(c.value == "Slides are made on the pipeline and lab steps." for c in at.sidebar.caption)
    # … and its post-processing sliders, kept for the other steps, say they do nothing here
    assert any("does not use these: they apply to the pipeline and lab steps" in c.value for c in at.sidebar.caption)

    at.button(key="learn_train").click().run()
    check(at)
    label = at.session_state[YOUR_RPN_KEY].weights.label
    assert at.session_state[YOUR_RPN_KEY].weights.kind == "trained here"
    assert "trained on 1 photo for 20 steps" in label
    assert any(label in s.value for s in at.success)
    text = text_of(at)
    assert "positive" in text and "256" in text and "sigmoid(o − b)" in text
    session = at.session_state["learn_run"].session
    summary = session.label_summary()
    assert f"**{summary.positive} positive**" in text  # the real numbers, from rpn_viz
    recall = at.dataframe[0].value
    assert list(recall["before training"]) == [round(v, 3) for v in session.recall_before]
    figures = len(at.get("image"))
    assert figures >= 3 and len(at.get("download_button")) >= figures  # every picture downloadable
    assert at.get("vega_lite_chart"), "the loss curves (a native chart: its menu saves a PNG)"
    assert label[:1].upper() + label[1:] in at.sidebar.selectbox(key="model").options  # "Your RPN: trained on …"

    at.button(key="learn_stop").click().run()  # Stop after the fact: says where it stands, keeps the model
    check(at)
    assert any("Stopped at step 20" in i.value for i in at.info)

    at.sidebar.selectbox(key="model").set_value("session")
    at.sidebar.radio(key="step").set_value("proposals")
    at.run()
    check(at)
    assert label in at.markdown[1].value  # the header names "your RPN" and its training
    assert not any("does not use these" in c.value for c in at.sidebar.caption)  # the sliders work here


def test_fine_tune_the_shipped_head_on_your_photo_and_the_bundled_ones() -> None:
    """Start from the head trained here, add the bundled photos: the label says so, the verdict is measured."""
    from rpn_viz.training.dataset import read_box_file, select
    from ui.resources import SHIPPED_KEY

    # the cat sample comes with its hand-drawn boxes
    at = app_test("learn", sample="Chelsea the cat", timeout=600, learn_start=SHIPPED_KEY, learn_bundled=True,
                  learn_steps=10, learn_every=10)
    at.run()
    check(at)
    at.button(key="learn_train").click().run()
    check(at)
    session = at.session_state["learn_run"].session
    photos = len(select(read_box_file(), "train"))
    assert session.photo_count == photos + 1 and len(session.examples) == 2 * photos + 1
    assert {r.example for r in session.history} != {0}, "the steps go through the bundled photos too"
    label = at.session_state[YOUR_RPN_KEY].weights.label
    assert label.startswith(f"your RPN: trained on {photos + 1} photos for 10 steps (from the paper's RPN")
    assert f"head trained on {photos} bundled photos" in label  # the shipped head saw the whole train split
    assert any("**Honestly:**" in m.value for m in at.markdown)  # measured on the other sample's own boxes
