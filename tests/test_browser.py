"""The app in a real browser, as a user uses it: Debian's Chromium driven by Playwright.

Starts the app with ``rpn-viz app`` on a free loopback port (``rpn_viz.testing.AppServer``, shared
with ``bench/load_test.py``), then: walks every step from the sidebar,
checks that pictures render and no exception appears, uploads a photo, moves a slider, and uploads a
broken file (a clear one-line error, and the app keeps working). A second server (``tests/serve_app.py``)
has its COCO file on a loopback server the test controls: offline first, then the user picks the COCO
model and watches it download. Screenshots land in ``$RPN_VIZ_SCREENSHOTS`` when that is set.
"""

from __future__ import annotations

import hashlib
import sys

import pytest

from browsing import ROOT, assert_healthy, browser, new_page, screenshot, server, settle, sidebar_step  # noqa: F401
from rpn_viz.testing import AppServer, free_port

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page(browser, server):
    page = new_page(browser)
    yield page
    page.close()


def test_walk_every_step_of_the_pipeline(page, server):
    from ui.steps import STEPS

    page.goto(server)
    page.get_by_text("RPN explorer").first.wait_for()
    settle(page)
    for step in STEPS:
        sidebar_step(page, step.title)
        heading = step.title.split("·", 1)[1].strip()
        page.get_by_role("heading", name=heading).first.wait_for()
        if step.group == "The pipeline":
            assert_healthy(page, step.title)
        else:  # lab pages may wait for a button before drawing (e.g. the receptive field)
            assert page.locator("[data-testid=stException]").count() == 0, f"exception shown on {step.title}"
        screenshot(page, f"step-{step.key}")
        assert f"step={step.key}" in page.url or step.key == STEPS[0].key  # the URL names the step


def open_upload(page, server) -> None:
    """The Input step with the sidebar's photo source switched to Upload."""
    page.goto(f"{server}/?step=input")
    settle(page)
    page.locator("[data-testid=stSidebar]").get_by_text("Upload", exact=True).first.click()
    settle(page)


def test_upload_a_photo_and_move_a_slider(page, server, tmp_path):
    open_upload(page, server)
    photo = tmp_path / "my photo.png"
    from PIL import Image

    Image.open(ROOT / "assets" / "cat.jpg").save(photo)
    page.locator("[data-testid=stSidebar] input[type=file]").first.set_input_files(str(photo))
    settle(page)
    page.get_by_text("451×300").first.wait_for()  # the uploaded photo's size in the Input step
    assert_healthy(page, "uploaded photo")
    sidebar_step(page, "6 · Before NMS")
    before = page.locator("[data-testid=stMetricValue]").all_inner_texts()
    thumb = page.locator("[data-testid=stSidebar]").get_by_role("slider").last  # score threshold
    thumb.scroll_into_view_if_needed()
    box = thumb.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + 160, box["y"] + box["height"] / 2, steps=12)  # drag right, as a user would
    page.mouse.up()
    settle(page)
    after = page.locator("[data-testid=stMetricValue]").all_inner_texts()
    assert before != after, "the score-threshold slider changed nothing"
    assert "score=" in page.url, "slider settings live in the URL"
    # a high threshold may leave no box (the page then says so instead of drawing): no exception either way
    assert page.locator("[data-testid=stException]").count() == 0
    screenshot(page, "slider-moved")


def broken_file_alert(page, file_input, broken) -> str:
    """Give ``broken`` (a path) to ``file_input``: the text of the alert naming it, checked to be one line."""
    file_input.set_input_files(str(broken))
    settle(page)
    alert = page.locator("[data-testid=stAlert]").filter(has_text=broken.name)
    alert.first.wait_for()
    text = alert.first.inner_text().strip()
    assert "\n" not in text and "Traceback" not in page.content()
    return text


def test_a_broken_upload_gives_a_clear_error_and_the_app_keeps_working(page, server, tmp_path):
    open_upload(page, server)
    broken = tmp_path / "holiday.jpg"
    broken.write_text("<html><body>not a photo</body></html>")
    text = broken_file_alert(page, page.locator("[data-testid=stSidebar] input[type=file]").first, broken)
    assert "not an image" in text
    screenshot(page, "broken-upload")
    page.locator("[data-testid=stSidebar]").get_by_text("Sample", exact=True).first.click()
    settle(page)
    assert_healthy(page, "sample after a broken upload")


def test_type_a_box_train_and_view_the_stepper_on_your_rpn(page, server):
    from rpn_viz.model.paper import MOBILENET_V2_IMAGENET
    from rpn_viz.model.weights import is_available

    if not is_available(MOBILENET_V2_IMAGENET):
        pytest.skip(f"ImageNet backbone {MOBILENET_V2_IMAGENET.filename} not on this machine "
                    "(put it in ../shared/weights or set RPN_VIZ_WEIGHTS_DIR); the paper RPN cannot be trained without it")
    page.goto(f"{server}/?step=learn")
    settle(page)
    page.get_by_text("Ground-truth boxes (7 on this photo", exact=False).first.click()  # the sample's own boxes
    boxes = page.get_by_label("Boxes (x1, y1, x2, y2 per line, photo pixels)")
    boxes.fill("20, 495, 430, 765")  # the drum in wine.jpg, the first sample
    boxes.press("Control+Enter")
    page.get_by_role("button", name="Use typed boxes").click()
    settle(page)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("It is now your RPN", exact=False).first.wait_for(timeout=300_000)
    settle(page)
    assert_healthy(page, "after training")
    assert page.locator("[data-testid=stMain] [data-testid=stImage] img").count() >= 3  # heatmap, batch, other photo
    assert page.locator("[data-testid=stMain] [data-testid=stVegaLiteChart]").count() >= 1  # the loss curves
    screenshot(page, "learn-trained")
    page.locator("[data-testid=stSidebar] [data-testid=stSelectbox]").filter(has_text="Model").click()
    page.get_by_role("option", name="Your RPN", exact=False).first.click()
    settle(page)
    sidebar_step(page, "8 · Proposals")
    page.get_by_text("your RPN", exact=False).first.wait_for()
    assert_healthy(page, "proposals of your RPN")
    screenshot(page, "your-rpn-proposals")


def test_offline_first_then_pick_the_coco_model_and_watch_it_download(browser, tmp_path, scrambled_checkpoint):
    """Offline, the first screen says so; online again, picking the COCO model downloads it with a
    progress bar (the test holds the body half-way to see it), then the step shows its picture."""
    from loopback import FileServer, Hold
    from rpn_viz.model.models import DEFAULT_MODEL, MODELS

    spec = MODELS[DEFAULT_MODEL]
    data = scrambled_checkpoint.read_bytes()
    port = free_port()  # nothing listens there yet: the machine is "offline"
    path = f"/models/{spec.official.filename}"
    app = AppServer(
        tmp_path / "streamlit.log",
        env={"TORCH_HOME": str(tmp_path / "torch_home")},  # an empty cache: neither the COCO nor the ImageNet file
        unset=("RPN_VIZ_CHECKPOINT", "RPN_VIZ_WEIGHTS_DIR"),  # and serve_app.py hides ../shared/weights
        command=[sys.executable, str(ROOT / "tests" / "serve_app.py"), f"http://127.0.0.1:{port}{path}",
                 hashlib.sha256(data).hexdigest()],
    )
    try:
        app.wait_healthy()
    except RuntimeError as exc:
        app.stop()
        pytest.fail(f"streamlit did not start: {exc}")
    url = app.url
    page = new_page(browser)
    files = None
    try:
        page.goto(f"{url}/?step=input")
        page.get_by_role("button", name="Retry the download").wait_for()
        settle(page)
        offline = page.locator("[data-testid=stAlert]").filter(has_text="could not be downloaded").first.inner_text()
        assert "offline or unreachable" in offline and spec.official.filename in offline
        assert str(tmp_path / "torch_home" / "hub" / "checkpoints") in offline  # where to put the file
        screenshot(page, "download-offline")
        untrained = page.get_by_role("button", name="Explore the untrained network", exact=False)
        if untrained.count():  # no offline model here: the untrained network is offered, labelled
            untrained.click()
            settle(page)
        assert page.locator("[data-testid=stException]").count() == 0

        files = FileServer(port)  # the network is back (binding the port is what makes it reachable)
        files.files[path] = data
        hold = files.holds[path] = Hold(at=32 * 65536)
        files.start()
        page.locator("[data-testid=stSidebar] [data-testid=stSelectbox]").filter(has_text="Model").click()
        page.get_by_role("option", name=f"{spec.title} — downloads on first use").click()
        bar = page.locator("[data-testid=stProgress]").filter(has_text="MB/s")
        bar.first.wait_for()
        assert hold.reached.wait(60)
        page.wait_for_function(  # the bar shows the bytes held so far, of the whole file
            "t => [...document.querySelectorAll('[data-testid=stProgress]')].some(e => e.innerText.includes(t))",
            arg=f"2.1 / {len(data) / 1e6:.1f} MB")
        screenshot(page, "download-progress")
        hold.release.set()
        page.get_by_text("official COCO weights", exact=False).first.wait_for(timeout=300_000)
        settle(page)
        assert_healthy(page, "the COCO model after its download")
        assert files.gets(path) == 1
        assert (tmp_path / "torch_home" / "hub" / "checkpoints" / spec.official.filename).read_bytes() == data
        screenshot(page, "download-done")
    finally:
        if files is not None:
            files.stop()
        page.close()
        app.stop()


def test_anchor_fit_page_draws_unmatched_boxes_and_a_bad_box_file_keeps_them(page, server, tmp_path):
    page.goto(f"{server}/?step=lab_fit")
    settle(page)
    page.get_by_text("Ground-truth boxes (7 on this photo", exact=False).first.click()  # the sample's own boxes
    boxes = page.get_by_label("Boxes (x1, y1, x2, y2 per line, photo pixels)")
    boxes.fill("20, 495, 430, 765\n380, 120, 640, 520")  # the drum and the loudspeaker in wine.jpg
    boxes.press("Control+Enter")
    page.get_by_role("button", name="Use typed boxes").click()
    settle(page)
    caption = page.get_by_text("Thick: your boxes (network-input pixels)", exact=False).first
    caption.wait_for()
    picture = page.locator("[data-testid=stMain] [data-testid=stImage]").filter(has_text="Thick: your boxes").locator("img")
    picture.scroll_into_view_if_needed()
    page.wait_for_function("e => e.complete && e.naturalWidth > 300", arg=picture.element_handle(), timeout=60_000)
    assert page.locator("[data-testid=stException]").count() == 0
    screenshot(page, "lab-fit")
    page.get_by_text("Boxes from a file (COCO JSON or Pascal VOC XML)").first.click()
    broken = tmp_path / "wine.xml"
    broken.write_text("<annotation><filename>wine.jpg</filename><object>")
    text = broken_file_alert(page, page.locator("[data-testid=stMain] input[type=file]").first, broken)
    assert text.startswith("wine.xml: not valid XML")
    page.get_by_text("Ground-truth boxes (2 on this photo", exact=False).first.wait_for()  # nothing was lost
    screenshot(page, "lab-fit-bad-file")
