"""Offline, as a classroom projector often is, in a real browser (Chromium via Playwright).

The app runs through ``tests/serve_app.py`` with the COCO file absent and its URL on a loopback port
where nothing listens (offline), and the ImageNet MobileNetV2 of the offline model in a weights
folder: the app opens on the offline model. Presenter mode (``?present=1&step=nms``) then shows
only a small badge, and the step's main picture fits the window, using most of it, at 1280×720 and
1920×1080, for a portrait and a landscape photo. The normal page shows the offline note in full on
the session's first page only, then one line in the sidebar with the Retry button. Screenshots land
in ``$RPN_VIZ_SCREENSHOTS`` when that is set.
"""

from __future__ import annotations

import json
import sys
from urllib.parse import quote_plus

import pytest
from PIL import Image

from browsing import ROOT, assert_healthy, browser, new_page, screenshot, serve, settle, sidebar_step  # noqa: F401
from rpn_viz.model.models import DEFAULT_MODEL, MODELS
from rpn_viz.model.paper import MOBILENET_V2_IMAGENET
from rpn_viz.testing import AppServer, free_port
from rpn_viz.model.weights import candidate_paths

pytestmark = pytest.mark.browser

SIZES = [(1280, 720), (1920, 1080)]
MAIN_PICTURE = ".st-key-present_main img"
OFFLINE_NOTE = "could not be downloaded"


@pytest.fixture(scope="module")
def offline_app(tmp_path_factory):
    """The app's URL: offline, no COCO file anywhere, the offline model's ImageNet file in a weights folder."""
    imagenet = next((p for p in candidate_paths(MOBILENET_V2_IMAGENET) if p.is_file()), None)
    if imagenet is None:
        pytest.skip(f"needs {MOBILENET_V2_IMAGENET.filename} (the offline model's backbone) in ../shared/weights")
    tmp = tmp_path_factory.mktemp("offline")
    (tmp / "weights").mkdir()
    (tmp / "weights" / MOBILENET_V2_IMAGENET.filename).symlink_to(imagenet.resolve())
    official = MODELS[DEFAULT_MODEL].official
    yield from serve(AppServer(
        tmp / "streamlit.log",
        env={"TORCH_HOME": str(tmp / "torch_home"), "RPN_VIZ_WEIGHTS_DIR": str(tmp / "weights")},
        unset=("RPN_VIZ_CHECKPOINT",),  # serve_app.py hides ../shared/weights; nothing listens on the port
        command=[sys.executable, str(ROOT / "tests" / "serve_app.py"),
                 f"http://127.0.0.1:{free_port()}/models/{official.filename}", official.sha256],
    ))


def picture_box(page, width: int, height: int) -> dict:
    """The presenter picture's box in a ``width``×``height`` window, once it is decoded and laid out."""
    page.set_viewport_size({"width": width, "height": height})
    page.wait_for_function("([w, h]) => window.innerWidth === w && window.innerHeight === h", arg=[width, height])
    picture = page.locator(MAIN_PICTURE).first
    page.wait_for_function("e => e.complete && e.naturalWidth > 0", arg=picture.element_handle(), timeout=180_000)
    return picture.bounding_box()


@pytest.mark.parametrize("sample, orientation", [("Wine corner", "portrait"), ("Coffee cup", "landscape")])
def test_presenter_mode_offline_shows_a_badge_and_the_picture_fills_the_window(browser, offline_app, sample, orientation):
    entry = next(e for e in json.loads((ROOT / "assets" / "samples.json").read_text()) if e["title"] == sample)
    photo_w, photo_h = Image.open(ROOT / "assets" / entry["file"]).size
    assert (photo_h > photo_w) == (orientation == "portrait")
    page = new_page(browser, *SIZES[0])
    try:
        page.goto(f"{offline_app}/?present=1&step=nms&sample={quote_plus(sample)}")
        page.locator(MAIN_PICTURE).first.wait_for(timeout=300_000)  # the offline model loads and runs first
        settle(page)
        badge = page.locator(".st-key-present_nav").get_by_text("offline model").filter(visible=True)
        assert badge.count() == 1  # (Streamlit keeps a hidden copy of an element with a tooltip)
        assert page.locator("[data-testid=stAlert]").filter(has_text=OFFLINE_NOTE).count() == 0
        assert page.get_by_role("button", name="Retry the download").count() == 0
        assert page.locator("[data-testid=stException]").count() == 0
        for width, height in SIZES:
            box = picture_box(page, width, height)
            where = f"{sample} at {width}×{height}: picture {box['width']:.0f}×{box['height']:.0f} at ({box['x']:.0f}, {box['y']:.0f})"
            assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1, where
            assert box["y"] >= 0 and box["y"] + box["height"] <= height + 1, where
            # it uses the window: as tall as the window allows below the header row, or as wide as the page
            assert box["height"] >= 0.75 * height or box["width"] >= 0.9 * width, where
            if orientation == "portrait":  # height-bound, and drawn upright
                assert box["height"] >= 0.75 * height and box["height"] > box["width"], where
            screenshot(page, f"present-offline-{orientation}-{width}x{height}", full=False)
    finally:
        page.close()


def test_the_offline_note_is_in_full_on_the_first_page_then_one_line_in_the_sidebar(browser, offline_app):
    page = new_page(browser)
    try:
        page.goto(f"{offline_app}/?step=nms")
        note = page.locator("[data-testid=stMain] [data-testid=stAlert]").filter(has_text=OFFLINE_NOTE)
        note.first.wait_for(timeout=300_000)
        settle(page)
        assert MODELS[DEFAULT_MODEL].official.filename in note.first.inner_text()
        assert page.locator("[data-testid=stMain]").get_by_role("button", name="Retry the download").is_visible()
        assert_healthy(page, "the first page offline")
        screenshot(page, "offline-first-page", full=False)

        sidebar_step(page, "8 · Proposals")
        page.get_by_role("heading", name="Proposals").first.wait_for()
        assert note.count() == 0
        sidebar = page.locator("[data-testid=stSidebar]")
        assert sidebar.get_by_text("the COCO model could not be downloaded").is_visible()
        assert sidebar.get_by_role("button", name="Retry the download").is_visible()
        assert_healthy(page, "a later page offline")
        screenshot(page, "offline-later-page", full=False)
    finally:
        page.close()
