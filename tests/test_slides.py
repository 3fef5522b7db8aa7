"""The slide deck (issue 26): pages, their size, their text and pictures, the command line and the app's button.

A real photo (the first sample, as the app opens) through the calibrated random checkpoint, one proposal
followed. The deck's text is read back with pypdf; its numbers are the trace's. The proposals page's
picture is compared with the app's main picture of that step, drawn at the deck's size.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

import rpn_viz
from rpn_viz.commands.cli import console
from rpn_viz.lab.follow import follow
from rpn_viz.io.paths import samples
import ui.steps.lab_anchors
from rpn_viz.lab import anchor_fit as af
from rpn_viz.io import box_files
from rpn_viz.lab import recall
from rpn_viz.pipeline.anchors import PAPER_ANCHORS, tile_anchors
from ui import lab_pictures
from ui.lab_slides import LabInputs, plan
from ui.picture_frame import jpeg, zoomed
from ui.scene import Scene
from ui.slides import ZOOM, Source, app_url, make_deck, slide_picture
from ui.step_pictures import STEP_KEYS, main_picture
from ui.steps import STEPS

pypdf = pytest.importorskip("pypdf", reason="pypdf is a test dependency (pip install -e .[test])")

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
SAMPLE = samples()[0]  # the first sample, as the app opens
PHOTO = ROOT / "assets" / SAMPLE["file"]
TITLES = {step.key: step.title for step in STEPS}
MAX_BYTES = 12 * 1024 * 1024


@pytest.fixture(scope="module")
def scene(scrambled) -> Scene:
    return Scene.of(rpn_viz.trace(scrambled, PHOTO))


@pytest.fixture(scope="module")
def found(scene):
    r = scene.result
    return follow(scene.trace, r, int(r.anchor_index[r.final_pos[3]]))  # proposal #3


@pytest.fixture(scope="module")
def source() -> Source:
    return Source(PHOTO.name, SAMPLE["credit"], SAMPLE["licence"], "custom:mobilenet_v3_large_fpn",
                  "http://localhost:8501/", SAMPLE["title"])


@pytest.fixture(scope="module")
def deck(scene, found, source) -> bytes:
    seen = []
    data = make_deck(scene, source, found, progress=lambda done, total, what: seen.append((done, total)))
    assert seen[0] == (0, 9) and seen[-1] == (9, 9) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    return data


@pytest.fixture(scope="module")
def pdf(deck):
    return pypdf.PdfReader(io.BytesIO(deck))


LAB_SAMPLE = next(e for e in samples() if e["file"] == "coffee.jpg")  # landscape: every lab page fits in 12 MB


@pytest.fixture(scope="module")
def lab_scene(scrambled) -> Scene:
    return Scene.of(rpn_viz.trace(scrambled, ROOT / "assets" / LAB_SAMPLE["file"]))


@pytest.fixture(scope="module")
def gt(lab_scene):
    """The sample's own boxes (assets/samples.json), in network-input pixels."""
    size = lab_scene.trace.preprocess.original_size
    boxes = box_files.parse_entry(LAB_SAMPLE, "samples.json", size=size).scaled(size)
    return lab_scene.trace.to_input(torch.tensor(boxes, dtype=torch.float32))


@pytest.fixture(scope="module")
def lab_deck(lab_scene, gt) -> bytes:
    source = Source(LAB_SAMPLE["file"], LAB_SAMPLE["credit"], LAB_SAMPLE["licence"], "custom:mobilenet_v3_large_fpn",
                    "http://localhost:8501/", LAB_SAMPLE["title"])
    return make_deck(lab_scene, source, lab=LabInputs(gt=gt))


def embedded_jpeg(page) -> bytes:
    """The one picture of a page, as the JPEG bytes the PDF holds."""
    objects = page["/Resources"]["/XObject"]
    (name,) = list(objects)
    stream = objects[name].get_object()
    assert stream["/Filter"] == "/DCTDecode"  # the JPEG bytes as they are (pypdf's page.images re-encodes them)
    return stream.get_data()


def texts(pdf) -> list[str]:
    return [" ".join(page.extract_text().split()) for page in pdf.pages]


def test_a_title_page_and_one_16_by_9_page_per_step_within_12_mb(deck, pdf):
    assert deck.startswith(b"%PDF-") and len(deck) <= MAX_BYTES
    assert len(pdf.pages) == 1 + len(STEP_KEYS) == 9
    for page in pdf.pages:
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        assert width / height == pytest.approx(16 / 9, rel=1e-3), (width, height)


def test_the_title_page_names_photo_credit_licence_model_followed_proposal_and_links_back(pdf, scene, found, source):
    text = texts(pdf)[0]
    assert PHOTO.name in text and SAMPLE["credit"] in text and SAMPLE["licence"] in text
    assert scene.trace.model.weights.label in text and str(scene.trace.model.device) in text
    assert f"Anchor #{found.flat_index}" in text and "proposal #3" in text
    url = app_url(source, scene, "input", found)
    assert "step=input" in url and f"follow={found.flat_index}" in url and "nms_iou=" in url and "score=" in url
    assert url in text.replace(" ", "")
    links = [a.get_object()["/A"]["/URI"] for a in pdf.pages[0]["/Annots"]]
    assert url in links


def test_each_step_page_has_its_title_the_traces_numbers_the_settings_and_the_followed_anchor(pdf, scene, found):
    trace, r, s = scene.trace, scene.result, scene.settings
    counts = list(r.counts().values())
    (ow, oh), (iw, ih) = trace.preprocess.original_size, trace.preprocess.input_size
    level = trace.levels[found.level]
    expected = {
        "input": [f"{ow}×{oh}", f"{iw}×{ih}"],
        "features": [f"{level.grid[0]}×{level.grid[1]}", f"{level.stride[1]} px"],
        "anchors": [f"{len(level.anchor_shapes)}", f"{trace.anchors.shape[0]:,}", f"({found.row}, {found.col})"],
        "head": [f"{trace.anchors.shape[0]:,}", f"{float(trace.logits.sigmoid().max()):.3f}"],
        "regression": [f"#{found.flat_index}", f"{found.prob:.3f}"],
        "before_nms": [f"{counts[0]:,}", f"{counts[1]:,}", f"{counts[2]:,}"],
        "nms": [f"{counts[2]:,}", f"{counts[3]:,}", f"{counts[2] - counts[3]:,}"],
        "proposals": [f"{counts[4]:,}", f"{float(r.scores[0]):.3f}"],
    }
    for key, text in zip(STEP_KEYS, texts(pdf)[1:]):
        assert TITLES[key] in text, key
        for number in expected[key]:
            assert number in text, (key, number)
        assert f"NMS IoU {s.nms_iou:g}" in text and f"post-NMS top-N {s.post_nms_top_n:,}" in text, key
        assert trace.model.weights.label in text, key
        assert f"Followed anchor #{found.flat_index}" in text, key
        assert f"step={key}" in text.replace(" ", ""), key


def test_page_8s_picture_is_the_apps_proposals_picture_pixel_for_pixel(pdf, scene, found):
    embedded = embedded_jpeg(pdf.pages[8])
    shown = Image.open(io.BytesIO(embedded))
    assert shown.format == "JPEG" and shown.width >= 1920
    key, draw = main_picture("proposals", scene, found)
    drawn = slide_picture(draw)  # the app's drawing, at the deck's size (this tall photo: wider than ZOOM gives)
    assert key == ("main-proposals", 20, found.flat_index)
    assert shown.size == drawn.size
    app_jpeg = jpeg(drawn)  # the bytes ui.figures shows in the app for this picture
    assert np.array_equal(np.asarray(shown.convert("RGB")), np.asarray(Image.open(io.BytesIO(app_jpeg)).convert("RGB")))
    assert embedded == app_jpeg
    assert np.abs(np.asarray(shown.convert("RGB"), dtype=np.int16) - np.asarray(drawn, dtype=np.int16)).mean() < 2.0


def test_the_zoom_draws_the_same_picture_larger_and_leaves_the_screens_size_alone(scene, found):
    _, draw = main_picture("proposals", scene, found)
    small = draw()
    with zoomed(ZOOM):
        large = draw()
    assert draw().size == small.size  # the zoom ended with its block
    assert large.width == pytest.approx(small.width * ZOOM, rel=0.03)
    assert large.height == pytest.approx(small.height * ZOOM, rel=0.03)


# --- the lab pages ------------------------------------------------------------------------------------

def test_lab_pages_follow_the_steps_16_by_9_within_12_mb_and_the_title_page_says_what_is_left_out(lab_deck, lab_scene,
                                                                                                   gt):
    keys, why = plan(lab_scene, LabInputs(gt=gt))
    assert keys == ["lab_anchors", "lab_custom", "lab_recall", "lab_before", "lab_fit"]  # L5 and L6 left out
    reader = pypdf.PdfReader(io.BytesIO(lab_deck))
    assert len(lab_deck) <= 12_000_000 and len(reader.pages) == 9 + len(keys)
    for page in reader.pages:
        assert float(page.mediabox.width) / float(page.mediabox.height) == pytest.approx(16 / 9, rel=1e-3)
    pages = texts(reader)
    assert "5 lab pages: " + " · ".join(TITLES[k] for k in keys) in pages[0]
    assert f"{TITLES['lab_untrained']} (needs a second network's run)" in pages[0] and TITLES["lab_receptive"] in pages[0]
    assert all(f"{i} / 14" in text for i, text in enumerate(pages, 1))


def test_each_lab_page_has_its_title_and_this_photos_numbers(lab_deck, lab_scene, gt):
    scene = lab_scene
    trace, result = scene.trace, scene.result
    tiling = tile_anchors(scene.input_size, PAPER_ANCHORS)
    curves = recall.recall_curves(result.boxes, gt)
    stats, match = af.photo_stats(af.ModelAnchors.of(trace), af.trace_frame(trace), gt)
    counts = match.counts()
    expected = {
        "lab_anchors": [f"{tiling.num_positions:,}", f"{tiling.num_anchors:,}", f"{tiling.num_inside:,}"],
        "lab_custom": ["IoU with the model's box (mean)", "the model's own anchors"],
        "lab_recall": [f"{curves.num_gt - len(curves.uncovered(0.5))} / {curves.num_gt}",
                       f"{curves.average_recall:.2f}"],
        "lab_before": [f"{tiling.num_anchors:,}", f"{int(result.final_pos.numel()):,}"],  # windows = the paper's tiling
        "lab_fit": [f"{counts[af.MATCHED]} of the {len(gt)} boxes", f"{stats.mean_best_iou:.2f}"],
    }
    pages = texts(pypdf.PdfReader(io.BytesIO(lab_deck)))[9:]
    for key, text in zip(expected, pages):
        assert TITLES[key] in text, key
        for number in expected[key]:
            assert number in text, (key, number)
        assert trace.model.weights.label in text and f"NMS IoU {scene.settings.nms_iou:g}" in text, key
        assert f"step={key}" in text.replace(" ", ""), key


def test_the_anchor_lab_page_is_the_apps_tiling_picture_pixel_for_pixel(lab_deck, lab_scene):
    scene = lab_scene
    assert ui.steps.lab_anchors.tiling_picture is lab_pictures.tiling_picture  # the page draws with it
    embedded = embedded_jpeg(pypdf.PdfReader(io.BytesIO(lab_deck)).pages[9])
    tiling = tile_anchors(scene.input_size, PAPER_ANCHORS)  # the page's default: the paper's anchors on this photo
    drawn = slide_picture(lambda: lab_pictures.tiling_picture(scene, tiling, True))
    shown = Image.open(io.BytesIO(embedded))
    assert shown.width >= 1920 and shown.size == drawn.size
    assert embedded == jpeg(drawn)


def test_without_boxes_the_pages_that_need_them_are_left_out(scene):
    keys, why = plan(scene, LabInputs())
    assert keys == ["lab_anchors", "lab_custom", "lab_before"]
    assert why["lab_recall"] == why["lab_fit"] == "needs ground-truth boxes"


def test_a_lab_page_that_would_take_the_deck_past_its_size_is_left_out_and_named(monkeypatch, scene, source):
    monkeypatch.setattr("ui.slides.MAX_BYTES", 1)  # no lab page fits
    seen = []
    data = make_deck(scene, source, lab=LabInputs(), progress=lambda done, total, what: seen.append((done, total)))
    pages = texts(pypdf.PdfReader(io.BytesIO(data)))
    assert len(pages) == 9 and seen[1] == (1, 12) and seen[-1] == (9, 9)  # planned L1, L2, L4; made none
    for key in ("lab_anchors", "lab_custom", "lab_before"):
        assert f"{TITLES[key]} (its picture would take the deck past 1e-06 MB)" in pages[0]
    assert "lab pages:" not in pages[0] and pages[-1].endswith("9 / 9")


# --- the command line ---------------------------------------------------------------------------------

def test_cli_makes_the_same_deck(tmp_path, scrambled_checkpoint, found, capsys):
    out = tmp_path / "deck.pdf"
    status = console(["slides", str(PHOTO), "--checkpoint", str(scrambled_checkpoint), "--device", "cpu",
                      "--follow", str(found.flat_index), "--no-download", "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert captured.out.strip() == f"{out}: 9 pages, {out.stat().st_size / 1e6:.1f} MB"
    reader = pypdf.PdfReader(out)
    assert len(reader.pages) == 9
    first = " ".join(reader.pages[0].extract_text().split())
    assert SAMPLE["credit"] in first and f"Anchor #{found.flat_index}" in first
    assert "model=custom%3Amobilenet_v3_large_fpn" in first.replace(" ", "")


def test_cli_settings_reach_every_page(tmp_path, scrambled_checkpoint, capsys):
    out = tmp_path / "deck.pdf"
    status = console(["slides", str(PHOTO), "--checkpoint", str(scrambled_checkpoint), "--device", "cpu",
                      "--nms-iou", "0.5", "--post-nms-top-n", "50", "--no-download", "--out", str(out)])
    assert status == 0, capsys.readouterr().err
    pages = [" ".join(p.extract_text().split()) for p in pypdf.PdfReader(out).pages]
    assert all("NMS IoU 0.5" in text and "post-NMS top-N 50" in text for text in pages)
    assert "Followed" not in " ".join(pages)


def test_cli_lab_adds_the_lab_pages_with_the_given_boxes(tmp_path, scrambled_checkpoint, capsys):
    out = tmp_path / "deck.pdf"
    photo = ROOT / "assets" / LAB_SAMPLE["file"]
    status = console(["slides", str(photo), "--checkpoint", str(scrambled_checkpoint), "--device", "cpu", "--lab",
                      "--box", "10,20,200,300", "--box", "150,40,400,260", "--no-download", "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert captured.out.strip() == f"{out}: 14 pages, {out.stat().st_size / 1e6:.1f} MB"
    pages = [" ".join(p.extract_text().split()) for p in pypdf.PdfReader(out).pages]
    assert len(pages) == 14 and TITLES["lab_recall"] in pages[11] and "of the 2 ground-truth boxes" in pages[11]


@pytest.mark.parametrize("where, says", [("missing/deck.pdf", "does not exist"), (".", "it is a folder")])
def test_cli_an_output_that_cannot_be_written_is_one_line(tmp_path, where, says, capsys):
    status = console(["slides", str(PHOTO), "--out", str(tmp_path / where)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and err.startswith("rpn-viz slides: error: cannot write") and says in err


def test_cli_a_photo_that_fails_is_one_line(tmp_path, capsys):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    status = console(["slides", str(bad), "--out", str(tmp_path / "deck.pdf")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and err.startswith("rpn-viz slides: error:") and "notes.jpg" in err
    assert not (tmp_path / "deck.pdf").exists()


# --- the app's button ---------------------------------------------------------------------------------

def test_the_apps_button_makes_the_deck_once_and_offers_it(monkeypatch, scrambled_checkpoint):
    monkeypatch.setenv("RPN_VIZ_CHECKPOINT", str(scrambled_checkpoint))
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["step"] = "proposals"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.button(key="slides_make").click().run()
    assert not at.exception, [e.value for e in at.exception]
    store = at.session_state["_slides"]
    (job,) = list(store.values())
    assert job.finished.wait(240), "the deck was not made within 240 s"  # in its own thread
    assert job.error is None and len(pypdf.PdfReader(io.BytesIO(job.data)).pages) == 9
    at.run()
    assert not at.exception and not at.error, ([e.value for e in at.exception], [e.value for e in at.error])
    (save,) = [b for b in at.get("download_button") if "slides_save" in b.proto.id]
    assert save.proto.label == f"Save the slides (9 pages, {len(job.data) / 1e6:.1f} MB)"
    at.run()  # a rerun offers the same deck, made once
    assert at.session_state["_slides"] is store and list(store.values()) == [job]
    at.checkbox(key="slides_lab").check().run()  # another deck: a sample starts with its boxes: L1–L4 and L7 planned
    at.button(key="slides_make").click().run()
    assert not at.exception, [e.value for e in at.exception]
    lab_job = store.find(next(k for k in store if store[k] is not job))
    assert lab_job.finished.wait(240) and lab_job.error is None
    pages = len(pypdf.PdfReader(io.BytesIO(lab_job.data)).pages)
    assert lab_job.total == pages and 9 < pages <= 9 + 5 and len(lab_job.data) <= 12_000_000  # tall photo: ≤ 12 MB
    at.run()
    (save,) = [b for b in at.get("download_button") if "slides_save" in b.proto.id]
    assert save.proto.label.startswith(f"Save the slides ({pages} pages")


def test_decks_of_all_sessions_take_turns(monkeypatch):
    """A deck waits for a turn in the server's queue (telling its place), then is made; a failure is one line."""
    import threading
    import time

    from rpn_viz.training.fairqueue import FairQueue
    from ui import present, slides

    monkeypatch.setattr(slides, "make_deck", lambda *args: b"%PDF deck")
    queue = FairQueue(slots=1, poll_s=0.01)
    job = present.DeckJob(total=9)
    with queue.turn():  # another session's deck holds the only turn
        worker = threading.Thread(target=present._make, args=(job, None, None, None, None, None, None, queue))
        worker.start()
        deadline = time.monotonic() + 10
        while not job.what.startswith("queued") and time.monotonic() < deadline:
            job.finished.wait(0.01)
        assert job.what == "queued, number 1 in line behind other sessions' decks" and job.running
    assert job.finished.wait(10) and job.data == b"%PDF deck" and job.error is None
    worker.join(10)
    assert queue.served == 2 and queue.running == 0

    def broken(*args):
        raise MemoryError

    monkeypatch.setattr(slides, "make_deck", broken)
    failed = present.DeckJob(total=9)
    present._make(failed, None, None, None, None, None, None, queue)
    assert failed.error == "out of memory" and queue.running == 0  # the turn is handed on
