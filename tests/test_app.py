"""Fast checks of every step of the app with Streamlit's AppTest, on a real sample photo.

The official COCO weights are not on every machine (and tests never download them: see
tests/test_app_download.py for the download); the app is checked with a custom checkpoint the tests
make (varied scores), with the untrained model (opened as the "no trained model" screen offers it,
and labelled as such), and with the official weights when present.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import rpn_viz
from rpn_viz.testing import on_device
from ui.apptest import charts, pictures
from ui.apptest import run_step as run_app
from ui.steps import STEPS

PIPELINE = [step.key for step in STEPS if step.group == "The pipeline"]


@pytest.fixture
def custom_app(monkeypatch, scrambled_checkpoint):
    monkeypatch.setenv("RPN_VIZ_CHECKPOINT", str(scrambled_checkpoint))


@pytest.mark.parametrize("step", PIPELINE)
def test_every_pipeline_step_renders_with_a_custom_checkpoint(custom_app, step):
    at = run_app(step)
    assert at.title[0].value == next(s for s in STEPS if s.key == step).title.split("·")[1].strip()
    assert pictures(at) >= 1, "every step draws at least one picture"
    assert any("Custom checkpoint" in str(o) for o in at.sidebar.selectbox(key="model").options)
    assert "custom checkpoint" in at.markdown[1].value


def test_input_step_shows_the_real_sizes(custom_app):
    at = run_app("input")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Photo"] == "683×1024"  # wine.jpg, the first sample
    assert metrics["Network input"] == "800×1199"
    assert metrics["Padded tensor"] == "800×1216"


def test_anchor_step_lists_the_k_anchors_and_counts(custom_app):
    at = run_app("anchors")
    cell_table, level_table = at.dataframe[0].value, at.dataframe[1].value
    assert len(cell_table) == 15
    assert list(level_table["anchors per cell"]) == [15, 15, 15]
    assert "Anchors on this photo" in " ".join(m.value for m in at.markdown)


def test_nms_step_replay_matches_torchvision_and_proposals_match_the_trace(custom_app, scrambled, app_device):
    at = run_app("nms")
    assert any("same" in s.value and "batched_nms" in s.value and f"on {app_device}" in s.value for s in at.success)
    photo = Path(__file__).resolve().parent.parent / "assets" / "wine.jpg"
    trace = rpn_viz.trace(on_device(scrambled, app_device), photo)  # the app's device: its numbers
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Kept"] == f"{trace.result.nms_kept_pos.numel():,}"
    at.slider(key="nms_at").set_value(3).run()
    assert not at.exception
    assert at.markdown[-3].value.startswith("**Step 3:**") or any(m.value.startswith("**Step 3:**") for m in at.markdown)


def test_sliders_refilter_without_rerunning_the_network(custom_app, monkeypatch):
    at = run_app("before_nms")
    calls = []
    real = rpn_viz.trace
    monkeypatch.setattr(rpn_viz, "trace", lambda *a, **k: calls.append(a) or real(*a, **k))
    before = {m.label: m.value for m in at.metric}
    at.sidebar.slider(key="score").set_value(0.7).run()
    after = {m.label: m.value for m in at.metric}
    assert not at.exception
    assert calls == [], "a post-processing slider must not re-run the network"
    assert after["after score threshold"] != before["after score threshold"]
    ((_, rows),) = charts(at)  # the score histogram, with the threshold marked where the slider is
    assert [r["at"] for r in rows if "at" in r] == pytest.approx([0.7, 0.7])  # the line and its label
    counted = sum(r["count"] for r in rows if "count" in r)  # every candidate is in one bin
    assert f"{counted:,}" == after["candidates (pre-NMS top-N per level)"]


def test_untrained_model_is_labelled_everywhere_it_is_shown():
    at = run_app("head", untrained=True)
    assert "untrained" in at.markdown[1].value
    assert any("Untrained network" in w.value for w in at.warning)


def test_next_and_back_buttons_walk_the_steps(custom_app):
    at = run_app("input")
    button = lambda label: next(b for b in at.button if b.label == label)  # noqa: E731
    button("Next →").click().run()
    assert at.title[0].value == "Feature maps"
    button("← Back").click().run()
    assert at.title[0].value == "Input"


def test_reset_puts_the_model_defaults_back(custom_app):
    at = run_app("before_nms")
    at.sidebar.slider(key="nms_iou").set_value(0.3).run()
    next(b for b in at.button if b.label == "Reset to the model's defaults").click().run()
    assert not at.exception
    assert at.sidebar.slider(key="nms_iou").value == pytest.approx(0.7)


def test_proposals_step_offers_downloads(custom_app):
    at = run_app("proposals")
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Proposals as JSON" in labels and "Proposals as CSV" in labels
    assert sum(label == "Download PNG" for label in labels) >= 1


def test_official_model_steps(official):
    for step in PIPELINE:
        at = run_app(step, model=f"official:{official.name}")
        assert pictures(at) >= 1
