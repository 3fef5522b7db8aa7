"""The app's first screen with and without a network (issue 12, part A), with Streamlit's AppTest.

Online is a file server on 127.0.0.1 serving a checkpoint the tests make
(``rpn_viz.testing``'s random checkpoint), with the COCO model's URL and sha256 patched to it; offline is a closed port
(or, for the real URL, conftest's ``no_internet`` guard). The torch hub cache is empty and private.

Until the offline model of part B is in the picker, :func:`offline_model` adds a stand-in "shipped"
entry for the fallback test (the paper's RPN with its untrained head, labelled as the stand-in it
is); once a real "shipped" entry exists, the test uses that.
"""

from __future__ import annotations

import hashlib
import socket
from dataclasses import replace
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import rpn_viz
from loopback import FileServer
from rpn_viz.model.device import resolve_device
from rpn_viz.model.models import DEFAULT_MODEL, MODELS, load_model
from rpn_viz.model.paper import MOBILENET_V2_IMAGENET, NMS_IOU, PAPER_NMS_IOU, load_paper_model
from rpn_viz.model.weights import WEIGHTS_DIR_ENV, OfficialFile, candidate_paths
from ui.apptest import app_test, check, pictures

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
SPEC = MODELS[DEFAULT_MODEL]
COCO_KEY = f"official:{DEFAULT_MODEL}"
PATH = f"/models/{SPEC.official.filename}"
# where this machine has the ImageNet MobileNetV2 file (../shared/weights, $RPN_VIZ_WEIGHTS_DIR or the hub cache)
IMAGENET_FILE = next((p for p in candidate_paths(MOBILENET_V2_IMAGENET) if p.is_file()), None)


def text_of(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{PATH}"


@pytest.fixture()
def empty_hub(no_weights_folder) -> Path:
    """No weights folder and an empty torch hub cache: neither the COCO file nor the ImageNet one."""
    yield no_weights_folder
    st.cache_resource.clear()  # the models loaded here are not the ones other tests expect under these keys


@pytest.fixture()
def coco_from(monkeypatch):
    """``coco_from(url, data)``: the COCO model's official file is ``data`` at ``url``."""

    def patch(url: str, data: bytes) -> None:
        monkeypatch.setitem(MODELS, DEFAULT_MODEL, replace(SPEC, official=OfficialFile(url, hashlib.sha256(data).hexdigest())))

    return patch


@pytest.fixture()
def server():
    with FileServer() as running:
        yield running


@pytest.fixture()
def offline_model(monkeypatch, empty_hub, tmp_path):
    """The ImageNet MobileNetV2 file (only it) in a weights folder, and a "shipped" picker entry."""
    if IMAGENET_FILE is None:
        pytest.skip(f"needs {MOBILENET_V2_IMAGENET.filename} (ImageNet MobileNetV2) in ${WEIGHTS_DIR_ENV}")
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / MOBILENET_V2_IMAGENET.filename).symlink_to(IMAGENET_FILE.resolve())
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(folder))

    import ui.download
    import ui.resources
    from ui.resources import ModelChoice, SharedModel

    stand_in = ModelChoice("shipped:test_stand_in", "Stand-in offline model (test): the paper's RPN, untrained head")
    real_choices, real_get = ui.resources.model_choices, ui.resources.get_model
    model = {}

    def choices():
        listed = real_choices()
        return listed if any(c.kind == "shipped" for c in listed) else [*listed, stand_in]

    def get_model(choice):
        if choice.key != stand_in.key:
            return real_get(choice)
        if not model:
            model["loaded"] = SharedModel(load_paper_model(device="cpu", allow_download=False))
        return model["loaded"]

    monkeypatch.setattr(ui.resources, "model_choices", choices)
    monkeypatch.setattr(ui.resources, "get_model", get_model)
    monkeypatch.setattr(ui.download, "get_model", get_model)
    return folder


def test_offline_without_any_file_says_which_file_goes_where(empty_hub, no_internet) -> None:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    no_exception(at)
    # the default is the COCO model, and it tried to download it; then the offline model's backbone
    assert no_internet == [SPEC.official.url, MOBILENET_V2_IMAGENET.url]
    assert at.title[0].value == "No trained model available"
    offline = [w.value for w in at.warning]
    assert len(offline) == 1 and "\n" not in offline[0]
    assert "offline or unreachable" in offline[0] and SPEC.official.filename in offline[0]
    assert f"put it in {empty_hub}/" in offline[0]
    text = text_of(at)
    assert f"`{SPEC.official.filename}`, from {SPEC.official.url} — **missing**" in text
    assert f"`{MOBILENET_V2_IMAGENET.filename}`, from {MOBILENET_V2_IMAGENET.url} — **missing**" in text
    assert f"`{empty_hub}/`" in text
    assert not any("untrained" in str(o).lower() for o in at.sidebar.selectbox(key="model").options)
    assert at.button(key="download_retry").label == "Retry the download"

    # the only place that offers the untrained network, labelled as such
    at.button(key="download_untrained").click().run()
    no_exception(at)
    assert at.sidebar.selectbox(key="model").value == f"untrained:{DEFAULT_MODEL}"
    assert any(o.startswith("Untrained") and "for comparison" in o for o in at.sidebar.selectbox(key="model").options)
    assert "untrained (random weights" in at.markdown[1].value
    assert pictures(at) >= 1


def test_a_fresh_clone_beside_shared_weights_opens_on_the_trained_offline_model(
    empty_hub, monkeypatch, tmp_path, no_internet
) -> None:
    """No setting at all, offline, and the ImageNet file only in ``../shared/weights`` beside the
    checkout: the first screen is the paper's RPN with its shipped trained head, never the untrained one."""
    if IMAGENET_FILE is None:
        pytest.skip(f"needs {MOBILENET_V2_IMAGENET.filename} (ImageNet MobileNetV2) in ../shared/weights")
    shared = tmp_path / "shared" / "weights"
    shared.mkdir(parents=True)
    (shared / MOBILENET_V2_IMAGENET.filename).symlink_to(IMAGENET_FILE.resolve())
    monkeypatch.setattr("rpn_viz.model.weights.shared_weights_dir", lambda: shared)
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["step"] = "proposals"
    at.run()
    no_exception(at)
    assert at.sidebar.selectbox(key="model").value.startswith("shipped:")
    header = at.markdown[1].value
    assert "head trained on" in header and "untrained" not in header.lower()
    assert no_internet == [SPEC.official.url]  # it tried the COCO file, then found the backbone on disk
    assert pictures(at) >= 1
    assert at.sidebar.slider(key="nms_iou").value == pytest.approx(NMS_IOU)  # the offline model's own default
    at.session_state["step"] = "nms"
    at.run()
    no_exception(at)
    said = f"The Faster R-CNN paper uses IoU {PAPER_NMS_IOU:g}; this model's default is {NMS_IOU:g}."
    assert any(caption.value.startswith(said) for caption in at.caption)  # and why, on the NMS step


def test_online_the_first_screen_downloads_the_coco_model(empty_hub, server, coco_from, scrambled_checkpoint) -> None:
    data = scrambled_checkpoint.read_bytes()
    server.files[PATH] = data
    coco_from(server.url(PATH), data)
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["step"] = "nms"
    at.run()
    no_exception(at)
    assert at.sidebar.selectbox(key="model").value == COCO_KEY  # the default
    bar = at.get("progress")
    assert len(bar) == 1 and bar[0].value == 100
    assert bar[0].proto.text == f"Downloaded {SPEC.official.filename} ({len(data) / 1e6:.1f} MB), sha256 checked, loaded."
    assert server.gets(PATH) == 1
    assert sorted(p.name for p in empty_hub.iterdir()) == [SPEC.official.filename]
    assert f"**Model:** {SPEC.title}" in at.markdown[1].value and "official COCO weights" in at.markdown[1].value

    # what the page shows is the downloaded network's own computation
    trace = rpn_viz.trace(load_model(checkpoint=scrambled_checkpoint, device=resolve_device()),  # the app's device
                          ROOT / "assets" / "wine.jpg")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Kept"] == f"{trace.result.nms_kept_pos.numel():,}"
    assert pictures(at) >= 1

    again = AppTest.from_file(APP, default_timeout=300)  # a new session: the file is here now
    again.run()
    no_exception(again)
    assert not again.get("progress") and server.gets(PATH) == 1
    assert SPEC.title in again.sidebar.selectbox(key="model").options  # no longer "downloads on first use"


def test_offline_opens_the_offline_model_with_a_note_then_retry_downloads(
    offline_model, server, coco_from, scrambled_checkpoint, no_internet
) -> None:
    data = scrambled_checkpoint.read_bytes()
    coco_from(closed_port_url(), data)
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    no_exception(at)
    picker = at.sidebar.selectbox(key="model")
    assert picker.value.startswith("shipped:")  # the picker names what is shown
    offline = [w.value for w in at.warning if "could not be downloaded" in w.value]
    assert len(offline) == 1 and "offline or unreachable" in offline[0] and SPEC.official.filename in offline[0]
    note = " ".join(i.value for i in at.info)
    assert "You are looking at the offline model, not the COCO model" in note
    assert any(label in note for label in picker.options if label != picker.options[0])
    header = at.markdown[1].value
    assert "COCO" not in header  # never labelled as the COCO model
    assert pictures(at) >= 1

    at.run()  # a rerun keeps the note while the offline model is shown
    assert any("not the COCO model" in i.value for i in at.info)

    server.files[PATH] = data  # the network is back
    coco_from(server.url(PATH), data)
    at.button(key="download_retry").click().run()
    no_exception(at)
    assert at.sidebar.selectbox(key="model").value == COCO_KEY
    assert server.gets(PATH) == 1
    assert "official COCO weights" in at.markdown[1].value
    assert not any("not the COCO model" in i.value for i in at.info)
    assert no_internet == []  # nothing left the loopback


def offline_notes(block) -> list[str]:
    """The full offline note's warnings in ``block`` (the main area or the sidebar)."""
    return [w.value for w in block.warning if "could not be downloaded" in w.value]


def offline_infos(block) -> list[str]:
    return [i.value for i in block.info if "not the COCO model" in i.value]


def keys(buttons) -> list[str]:
    return [b.key for b in buttons]


def test_offline_the_note_is_in_full_on_the_first_page_only_then_one_line_in_the_sidebar(offline_model, coco_from) -> None:
    coco_from(closed_port_url(), b"a COCO file nobody serves")
    at = app_test("nms")
    at.run()
    check(at)
    assert at.sidebar.selectbox(key="model").value.startswith("shipped:")
    note = offline_notes(at.main)
    assert len(note) == 1 and SPEC.official.filename in note[0] and f"put it in {offline_model}/" in note[0]
    assert len(offline_infos(at.main)) == 1
    assert "download_retry" in keys(at.main.button) and "download_retry" not in keys(at.sidebar.button)
    assert not [c for c in at.sidebar.caption if "Offline" in c.value]
    at.run()  # the same page again (a slider, a click): still in full
    assert len(offline_notes(at.main)) == 1

    for step in ("proposals", "nms"):  # a later page, and back to the first: one line in the sidebar, with Retry
        at.sidebar.radio(key="step").set_value(step).run()
        check(at)
        assert not offline_notes(at) and not offline_infos(at)
        line = [c for c in at.sidebar.caption if "Offline" in c.value]
        assert len(line) == 1 and "\n" not in line[0].value and "offline model" in line[0].value
        assert line[0].help == note[0]  # which file, from where, which folder: the whole note as its tooltip
        assert "download_retry" in keys(at.sidebar.button) and "download_retry" not in keys(at.main.button)
        assert pictures(at) >= 1

    at.sidebar.button(key="download_retry").click().run()  # still offline: the retry fails, and says so in full
    check(at)
    assert at.sidebar.selectbox(key="model").value.startswith("shipped:")
    assert len(offline_notes(at.main)) == 1 and not [c for c in at.sidebar.caption if "Offline" in c.value]


def test_offline_presenter_mode_shows_only_a_badge(offline_model, coco_from) -> None:
    coco_from(closed_port_url(), b"a COCO file nobody serves")
    at = app_test("nms", present=True)  # ?present=1&step=nms, the default sample, as a class sees it
    at.run()
    check(at)
    assert at.sidebar.selectbox(key="model").value.startswith("shipped:")
    assert not offline_notes(at) and not offline_infos(at) and "download_retry" not in keys(at.button)
    badge = [m for m in at.main.markdown if "-badge[" in m.value]
    assert len(badge) == 1 and "offline model" in badge[0].value
    assert SPEC.official.filename in badge[0].help and f"put it in {offline_model}/" in badge[0].help
    assert "Retry the download" in badge[0].help
    assert pictures(at) >= 1 and "paper's RPN" in text_of(at)  # the picture, and the model line naming the model

    at.button(key="present_exit").click().run()  # out of presenter mode on the first page: the note in full
    check(at)
    assert len(offline_notes(at.main)) == 1 and not [m for m in at.main.markdown if "-badge[" in m.value]
