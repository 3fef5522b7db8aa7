"""AppTest: one followed anchor through every pipeline step — a kept proposal, a box NMS suppressed and a
box the score threshold dropped. Each step names the same anchor and the fate rpn_viz.lab.follow reads from
the trace; the URL keeps it. Plus the comparison and presenter mode."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

import rpn_viz
from rpn_viz.model.device import resolve_device
from rpn_viz.testing import on_device
from rpn_viz.lab.follow import follow
from ui.follow import stage_items, verdict
from ui.steps import STEPS

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PHOTO = Path(__file__).resolve().parent.parent / "assets" / "wine.jpg"  # the first sample, as the app opens
PIPELINE = [step.key for step in STEPS if step.group == "The pipeline"]


@pytest.fixture
def custom_app(monkeypatch, scrambled_checkpoint):
    monkeypatch.setenv("RPN_VIZ_CHECKPOINT", str(scrambled_checkpoint))


@pytest.fixture(scope="module")
def trace(scrambled):
    """The app's trace, made directly, on the device the app runs on."""
    return rpn_viz.trace(on_device(scrambled, resolve_device()), PHOTO)


def walk(index: int, **state):
    """Run every pipeline step in one session following ``index``; yield (step, AppTest) after each."""
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["follow"] = index
    for key, value in state.items():
        at.session_state[key] = value
    for step in PIPELINE:
        at.session_state["step"] = step
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
        assert at.query_params["follow"] == [str(index)] or at.query_params["follow"] == str(index)
        texts = [m.value for m in at.markdown]
        assert any(t.startswith(f"**Life of anchor #{index}**") for t in texts), step
        yield step, at


def infos(at: AppTest) -> str:
    return "\n".join(i.value for i in at.info)


def test_follow_a_kept_proposal_through_every_step(custom_app, trace):
    r = trace.result
    h = follow(trace, r, int(r.anchor_index[r.final_pos[3]]))
    assert h.stage == "proposal" and h.final_rank == 3
    for step, at in walk(h.flat_index):
        life = next(m.value for m in at.markdown if m.value.startswith("**Life of anchor"))
        assert life.endswith("it became **proposal #3**.")
        text = infos(at)
        if step == "features":
            assert f"row {h.row}, column {h.col}" in text and at.radio(key="feat_level").value == h.level_name
        elif step == "anchors":
            assert h.shape.label in text
            assert (at.number_input(key="anchor_row").value, at.number_input(key="anchor_col").value) == (h.row, h.col)
        elif step == "head":
            assert f"logit **{h.logit:+.3f}**" in text and f"**{h.prob:.3f}**" in text
            assert at.selectbox(key="head_anchor").value == h.shape.label
        elif step == "regression":
            assert "filled in for it" in text
            assert any(m.value.startswith(f"Anchor **#{h.flat_index}**") for m in at.markdown)
        elif step == "before_nms":
            assert f"**#{h.nms_rank}** of the {h.nms_inputs:,} boxes" in text
        elif step == "nms":
            assert f"kept at step {h.nms_step + 1}**" in text and at.slider(key="nms_at").value == h.nms_step + 1
            removed = next(d.value for d in at.dataframe if "IoU with kept box" in d.value.columns)  # removed then
            assert len(removed) == len(h.removed)
            assert sorted(removed["IoU with kept box"]) == pytest.approx(sorted(round(m.iou, 3) for m in h.removed))
        elif step == "proposals":
            assert any(m.value.startswith(f"Proposal **#3** of {r.final_pos.numel()}") for m in at.markdown)


def test_follow_a_suppressed_box(custom_app, trace):
    r = trace.result
    pos = next(p for p, fate in enumerate(r.fates()) if fate == "suppressed")
    h = follow(trace, r, int(r.anchor_index[pos]))
    assert h.suppressor_flat == int(r.anchor_index[r.suppressed_by[pos]])
    for step, at in walk(h.flat_index):
        life = next(m.value for m in at.markdown if m.value.startswith("**Life of anchor"))
        assert f"anchor #{h.suppressor_flat}, kept at step {h.suppressor_step + 1}" in life
        assert f"IoU {h.suppress_iou:.2f}" in life
        if step == "nms":
            assert at.slider(key="nms_at").value == h.suppressor_step + 1  # the step that removed it
            assert f"removed at step {h.suppressor_step + 1}** by anchor #{h.suppressor_flat}" in infos(at)
        elif step == "proposals":
            assert "Not a proposal" in infos(at)


def test_follow_a_box_the_score_threshold_dropped(custom_app, trace):
    strict = trace.refilter(score_thresh=0.6)
    pos = next(p for p, fate in enumerate(strict.fates()) if fate == "low score")
    h = follow(trace, strict, int(strict.anchor_index[pos]))
    assert h.stage == "low score" and h.prob < 0.6
    for step, at in walk(h.flat_index, score=0.6):
        life = next(m.value for m in at.markdown if m.value.startswith("**Life of anchor"))
        assert f"objectness {h.prob:.3f} is below the score threshold 0.6" in life
        if step == "before_nms":
            assert f"objectness {h.prob:.3f} below the threshold 0.6" in infos(at)
        elif step == "nms":
            assert "never reached NMS (low score)" in infos(at)


def test_strip_items_say_where_each_fate_stops(trace):
    ctx = SimpleNamespace(settings=trace.result.settings)
    r = trace.result
    kept = stage_items(follow(trace, r, int(r.anchor_index[r.final_pos[0]])), ctx)
    assert list(kept) == PIPELINE[1:]  # cell → anchor → score → deltas → box → NMS → rank, one per step
    assert kept["proposals"] == "Proposal #0" and kept["nms"].startswith("NMS: kept at step 1")
    pos = next(p for p, fate in enumerate(r.fates()) if fate == "suppressed")
    lost = stage_items(follow(trace, r, int(r.anchor_index[pos])), ctx)
    assert lost["nms"].startswith("✗ NMS: removed at step") and lost["proposals"] == "Not a proposal"


def test_compare_shows_both_models_labelled_by_their_weights(custom_app):
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["step"] = "proposals"
    at.session_state["compare"] = True
    at.run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert at.query_params["compare"] in (["untrained:mobilenet_v3_large_fpn"], "untrained:mobilenet_v3_large_fpn")
    labels = [m.value for m in at.markdown if "weights:" in m.value and m.value.startswith("**")]
    assert any("custom checkpoint" in t for t in labels) and any("untrained" in t for t in labels)
    assert sum(type(e).__name__ == "Image" for e in at.main) >= 2


@pytest.mark.parametrize("followed", [False, True])
def test_presenter_mode_counts_steps_and_next_moves_on(custom_app, trace, followed):
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params["present"] = "1"
    at.session_state["step"] = "head"
    if followed:  # the main picture then draws the followed anchor
        at.session_state["follow"] = int(trace.result.anchor_index[trace.result.final_pos[0]])
    at.run()
    assert not at.exception and not at.error
    assert any(m.value == f"Step 4 / {len(STEPS)}" for m in at.markdown)
    at.button(key="present_next").click().run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert at.session_state["step"] == "regression"
    assert any(m.value == f"Step 5 / {len(STEPS)}" for m in at.markdown)
    assert sum(type(e).__name__ == "Image" for e in at.main) >= 1  # the main picture
    at.button(key="present_back").click().run()
    assert not at.exception and not at.error
    assert at.session_state["step"] == "head"


def test_follow_any_anchor_from_the_regression_page(custom_app, trace):
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["step"] = "regression"
    at.run()
    assert not any(m.value.startswith("**Life of anchor") for m in at.markdown)  # nothing followed yet
    best = int(trace.logits.argmax())  # rank 0, the page's default anchor
    at.button(key="reg_follow").click().run()
    assert not at.exception and not at.error
    h = follow(trace, trace.result, best)
    life = next(m.value for m in at.markdown if m.value.startswith(f"**Life of anchor #{best}**"))
    assert life.endswith(verdict(h, SimpleNamespace(settings=trace.result.settings)))  # the page's fate = the trace's
    assert at.query_params["follow"] in ([str(best)], str(best))
