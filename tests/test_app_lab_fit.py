"""AppTest of L7 · Fit anchors to your boxes, with a sample's boxes and with a bundled set the test makes.

The numbers on the page are checked against rpn_viz.lab.anchor_fit run here on the same photo and model
(the untrained default architecture: anchors depend on the architecture, not on the weights).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import rpn_viz
from rpn_viz.lab import anchor_fit as af
from rpn_viz.io import box_files
from rpn_viz.lab import custom_anchors as lab
from rpn_viz.pipeline.anchors import PAPER_ANCHORS
from rpn_viz.model.models import DEFAULT_MODEL

from rpn_viz.io.paths import app_root
from ui.apptest import charts, downloadable_pictures, run_step, sample_sha, text_of

ROOT = app_root()
FIRST_SAMPLE = json.loads((ROOT / "assets" / "samples.json").read_text())[0]["file"]
SHA = sample_sha()
GT = [[60.0, 300.0, 330.0, 900.0], [380.0, 120.0, 640.0, 520.0]]  # photo pixels of the first sample



@pytest.fixture(scope="module")
def expected():
    """This page's first table, computed directly: the sample's trace, its boxes in input pixels."""
    trace = rpn_viz.trace(rpn_viz.load_model(DEFAULT_MODEL, untrained=True), ROOT / "assets" / FIRST_SAMPLE)
    gt = lab.working_to_input(trace, GT)
    frame = af.trace_frame(trace)
    return {key: af.photo_stats(src, frame, gt)[1] for key, src in
            {"model": af.ModelAnchors.of(trace), "paper": af.GridAnchors(PAPER_ANCHORS)}.items()}


def test_fit_page_with_a_samples_boxes(expected) -> None:
    at = run_step("lab_fit", gt=GT, untrained=True, lab_fit_k=9)  # k = 9 left from a larger set: 2 boxes allow 2
    metrics = {m.label: int(m.value) for m in at.metric}
    assert metrics == expected["model"].counts()  # the model's anchors are the picture's default
    boxes = at.dataframe[0].value
    assert list(boxes["best anchor IoU"]) == pytest.approx(expected["model"].best_iou.tolist(), abs=1e-3)
    table = at.dataframe[1].value
    assert list(table["anchors"]) == ["the model's anchors", "the paper's k = 9", "custom anchors (L1)",
                                      "fitted k = 2", "fitted, as sizes × ratios"]
    paper_bpr = float((expected["paper"].best_iou >= 0.7).float().mean())
    assert table["best possible recall @ 0.7"][1] == f"{paper_bpr:.0%}"
    assert table["best possible recall @ 0.7"][3] == "100%"  # two boxes, two fitted shapes: each fits its box
    assert downloadable_pictures(at) >= 1  # the unmatched-box picture
    ((shapes, rows),) = charts(at)  # box shapes (one point per box) and anchor shapes, log–log
    assert shapes["title"].startswith("Box shapes of")
    clusters = [r for r in rows if r["group"].startswith("your boxes, cluster")]
    assert len(clusters) == 2 and len({r["group"] for r in clusters}) == 2  # k = 2: one cluster per box
    fitted = sorted((r["x"], r["y"]) for r in rows if r["group"] == "fitted anchors, k = 2")
    # each fits its box: the same (width, height) points to 0.1 % (pytest.approx takes no list of tuples)
    np.testing.assert_allclose(fitted, sorted((r["x"], r["y"]) for r in clusters), rtol=1e-3, atol=0)
    assert "learned for **its own anchors**" in text_of(at)

    at.radio(key="lab_fit_source").set_value("paper")
    at.run()
    assert {m.label: int(m.value) for m in at.metric} == expected["paper"].counts()

    at.button(key="lab_fit_copy").click()
    at.run()
    assert not at.exception
    fitted = at.dataframe[2].value  # the fitted shapes
    table = at.dataframe[1].value
    assert table["anchors"][2] == "custom anchors (L1)" and table["best possible recall @ 0.7"][2] == "100%"
    assert any("custom anchors are now" in s.value for s in at.success)
    state = at.session_state["lab_anchor_set"]
    assert state["sizes"] == sorted({round(float(s)) for s in fitted["size √(w·h)"]})
    # L1 now tiles the fitted anchors
    at.session_state["step"] = "lab_anchors"
    at.run()
    assert not at.exception and not at.warning
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["anchors per position k"] == str(len(state["sizes"]) * len(state["ratios"]))


def test_fit_page_on_a_bundled_set(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(box_files, "BUNDLED_PATH", tmp_path / "missing" / "boxes.json")
    at = run_step("lab_fit", untrained=True, lab_fit_scope="bundled")
    assert any("no bundled set yet" in i.value for i in at.info)

    doc = {"format": box_files.BUNDLED_FORMAT, "images": [
        {"file": "a.jpg", "split": "train", "width": 640, "height": 427,
         "boxes": [[12, 30, 200, 400], [300, 100, 620, 200], [50, 50, 90, 80]], "labels": ["bicycle", "car", "car"]},
        {"file": "b.jpg", "split": "val", "width": 427, "height": 640,
         "boxes": [[10, 10, 400, 600], [100, 300, 150, 420]], "labels": ["person", "bicycle"]}]}
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps(doc))
    monkeypatch.setattr(box_files, "BUNDLED_PATH", path)
    at = run_step("lab_fit", untrained=True, gt=[], lab_fit_scope="bundled", lab_fit_k=3)
    table = at.dataframe[0].value  # no box on this photo: the first table is the whole set's
    assert list(table["anchors"])[3] == "fitted k = 3"
    assert "5 boxes on 2 photo(s)" in text_of(at)
    per_category = at.dataframe[1].value
    assert sorted(per_category["category"]) == ["bicycle", "car", "person"]
    assert len(charts(at)) == 1  # the whole set's box shapes (no box on this photo)
    assert sum(r["group"].startswith("your boxes") for r in charts(at)[0][1]) == 5


def test_a_samples_own_boxes_are_offered_and_used(monkeypatch) -> None:
    from ui.steps import lab_fit

    entries = json.loads((ROOT / "assets" / "samples.json").read_text())
    entries[0] = {**entries[0], "boxes": GT, "labels": ["drum", "speaker"]}
    monkeypatch.setattr(lab_fit, "samples", lambda: entries)
    at = run_step("lab_fit", untrained=True, gt=[])  # the user cleared the sample's boxes
    assert not at.metric  # no box yet
    assert "**2 boxes** for" in text_of(at)
    at.button(key="lab_fit_sample_use").click()
    at.run()
    assert not at.exception and not at.error
    assert at.session_state["gt_boxes"][SHA] == GT
    assert sum(int(m.value) for m in at.metric) == 2  # every box is in one category


def test_fifteen_clusters_each_keep_a_look_of_their_own() -> None:
    """k = 15 (the most the slider offers) on sixteen boxes of different shapes: every cluster has its
    own (colour, marker) pair, and no cluster takes the colour of an anchor set (black, purple, yellow)."""
    from ui import theme

    sizes = [(w, h) for w in (20, 60, 180, 500) for h in (25, 70, 200, 540)]
    boxes = [[10.0, 10.0, 10.0 + w, 10.0 + h] for w, h in sizes]
    at = run_step("lab_fit", gt=boxes, untrained=True, lab_fit_k=15)
    ((spec, rows),) = charts(at)
    encoding = spec["layer"][0]["encoding"]  # every layer shares the scales: one legend
    colours = dict(zip(encoding["color"]["scale"]["domain"], encoding["color"]["scale"]["range"]))
    shapes = dict(zip(encoding["shape"]["scale"]["domain"], encoding["shape"]["scale"]["range"]))
    looks = {name: (colours[name], shapes[name]) for name in colours if name.startswith("your boxes, cluster")}
    assert len({r["group"] for r in rows if r["group"] in looks}) == 15  # every cluster has its points
    assert len(looks) == 15 and len(set(looks.values())) == 15
    reserved = {theme.OKABE_ITO[c] for c in ("black", "purple", "yellow")}
    assert not {colour for colour, _ in looks.values()} & reserved
