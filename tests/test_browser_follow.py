"""Following a proposal, comparing two models and presenting, in a real browser (Chromium via Playwright).

Click a proposal on the Proposals page and walk Back through every step: the followed anchor stays in
the URL and each page names and draws it. Turn the comparison on: two pictures. Presenter mode: ← and
→ change the step, and the main picture of every pipeline step fits a 1280×720 and a 1920×1080 window.
Screenshots land in ``$RPN_VIZ_SCREENSHOTS`` when that is set.
"""

from __future__ import annotations


import pytest

from browsing import ROOT, assert_healthy, browser, new_page, screenshot, server  # noqa: F401 (fixtures)
from browsing import settle as settle_run

import rpn_viz
from rpn_viz.lab.follow import follow

pytestmark = pytest.mark.browser

PIPELINE_TITLES = ["1 · Input", "2 · Feature maps", "3 · Anchors", "4 · RPN head", "5 · Regression", "6 · Before NMS",
                   "7 · NMS", "8 · Proposals"]



@pytest.fixture(scope="module")
def trace(scrambled):
    return rpn_viz.trace(scrambled, ROOT / "assets" / "wine.jpg")  # the first sample, as the app opens


def settle(page) -> None:
    """Wait for the run to finish, including a first network run behind a spinner."""
    settle_run(page)
    page.wait_for_function("() => !document.querySelector('[data-testid=stSpinner]')", timeout=300_000)
    settle_run(page)



def test_click_a_proposal_then_walk_back_through_every_step(browser, server, trace):
    r = trace.result
    top = r.boxes[:20]
    area = (top[:, 2] - top[:, 0]) * (top[:, 3] - top[:, 1])
    rank = int(area.argmin())  # the smallest box: its centre picks it, whatever encloses it
    history = follow(trace, r, int(r.anchor_index[r.final_pos[rank]]))
    x1, y1, x2, y2 = trace.to_working(top[rank]).tolist()
    page = new_page(browser, 1440, 2600)  # tall: the whole photo is on screen, so any box can be clicked
    page.goto(f"{server}/?step=proposals")
    page.locator("[data-testid=stMain] h1").first.wait_for()
    settle(page)
    frame = page.frame_locator("[data-testid=stMain] iframe").first
    image = frame.locator("img")
    image.wait_for()
    settle(page)
    box = image.bounding_box()
    zoom = box["width"] / trace.image.width
    page.mouse.click(box["x"] + (x1 + x2) / 2 * zoom, box["y"] + (y1 + y2) / 2 * zoom)
    page.get_by_text(f"Life of anchor #{history.flat_index}").first.wait_for()
    settle(page)
    assert f"follow={history.flat_index}" in page.url
    page.get_by_text(f"it became proposal #{rank}.").first.wait_for()
    screenshot(page, "follow-8-proposals")
    expected = {  # what each page says about the followed anchor, from rpn_viz.lab.follow
        "7 · NMS": f"kept at step {history.nms_step + 1}",
        "6 · Before NMS": f"#{history.nms_rank} of the {history.nms_inputs:,} boxes that reach NMS",
        "5 · Regression": "the formulas below are filled in for it",
        "4 · RPN head": f"objectness logit {history.logit:+.3f}",
        "3 · Anchors": f"{history.shape.label}",
        "2 · Feature maps": f"row {history.row}, column {history.col}",
        "1 · Input": f"Life of anchor #{history.flat_index}",
    }
    for title, text in expected.items():
        page.get_by_role("button", name="← Back").click()
        heading = title.split("·", 1)[1].strip()
        page.get_by_role("heading", name=heading).first.wait_for()
        settle(page)
        assert f"follow={history.flat_index}" in page.url, f"the URL lost the followed anchor on {title}"
        page.get_by_text(f"Life of anchor #{history.flat_index}").first.wait_for()
        page.get_by_text(text, exact=False).first.wait_for()
        assert_healthy(page, title)
        screenshot(page, f"follow-{title.split(' ')[0]}-{heading.replace(' ', '_').lower()}")
    page.close()


def test_compare_two_models_shows_two_pictures(browser, server):
    page = new_page(browser)
    page.goto(f"{server}/?step=before_nms")
    settle(page)
    page.locator("[data-testid=stSidebar]").get_by_text("Present and compare").click()
    page.locator("[data-testid=stSidebar]").get_by_text("Compare with a second model").click()
    settle(page)
    for side in "ab":
        page.wait_for_function(
            f"() => [...document.querySelectorAll('.st-key-compare_{side} img')].some(i => i.complete && i.naturalWidth > 0)")
    assert "compare=untrained" in page.url
    assert page.locator(".st-key-compare_b").get_by_text("untrained", exact=False).count() >= 1
    assert page.locator("[data-testid=stException]").count() == 0
    screenshot(page, "compare-before_nms")
    page.close()


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_presenter_mode_keys_and_the_main_picture_fits(browser, server, trace, size):
    width, height = size
    page = new_page(browser, width, height)
    followed = int(trace.result.anchor_index[trace.result.final_pos[0]])  # with the life strip: the tightest layout
    page.goto(f"{server}/?step=input&present=1&follow={followed}")
    page.locator("[data-testid=stMain] h1").first.wait_for()
    settle(page)
    assert not page.locator("[data-testid=stSidebar]").is_visible()
    for number, title in enumerate(PIPELINE_TITLES, start=1):
        heading = title.split("·", 1)[1].strip()
        page.get_by_role("heading", name=heading).first.wait_for()
        page.get_by_text(f"Step {number} / ").first.wait_for()
        settle(page)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.st-key-present_main img')].some(i => i.complete && i.naturalWidth > 0)")
        picture = page.locator(".st-key-present_main img").first.bounding_box()
        assert picture["y"] >= 0 and picture["y"] + picture["height"] <= height + 1, \
            f"{title}: picture spans {picture['y']:.0f}…{picture['y'] + picture['height']:.0f} px of a {height} px window"
        assert picture["x"] >= 0 and picture["x"] + picture["width"] <= width + 1
        if width == 1280:
            screenshot(page, f"present-{width}x{height}-{number}", full=False)
        page.evaluate("() => document.activeElement && document.activeElement.blur()")  # keys go to the page
        page.keyboard.press("ArrowRight")
    page.get_by_role("heading", name="Anchor lab").first.wait_for()  # → from step 8 went on to L1
    page.get_by_text("Step 9 / ").first.wait_for()
    settle(page)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.keyboard.press("ArrowLeft")
    page.get_by_role("heading", name="Proposals").first.wait_for()
    page.get_by_text("Step 8 / ").first.wait_for()
    assert "present=1" in page.url and "step=proposals" in page.url
    screenshot(page, f"present-{width}x{height}-back-to-8", full=False)
    page.close()
