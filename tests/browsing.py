"""What the real-browser tests share: the app server, Chromium, and waiting for Streamlit.

Imported by the browser test modules (``tests/`` is on pytest's path, as for ``loopback``); its
fixtures become theirs with ``from browsing import browser, server``. Skips the importing module
when Chromium or Playwright is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rpn_viz.testing import CHROMIUM, CHROMIUM_FLAGS, RUN_START_MS, STREAMLIT_IDLE, AppServer

ROOT = Path(__file__).resolve().parent.parent

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (the CI installs it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")


def serve(app: AppServer):
    """Yield the URL of ``app`` (an :class:`AppServer` just started) once it answers, then stop it; the
    test fails, with the log's end, if it does not start. For a fixture: ``yield from serve(AppServer(...))``."""
    try:
        app.wait_healthy()
    except RuntimeError as exc:
        app.stop()
        pytest.fail(f"streamlit did not start: {exc}")
    yield app.url
    app.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, scrambled_checkpoint):
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    yield from serve(AppServer(log, env={"RPN_VIZ_CHECKPOINT": str(scrambled_checkpoint)}))


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def new_page(browser, width: int = 1440, height: int = 1000):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(120_000)
    return page


IDLE = STREAMLIT_IDLE


def settle(page) -> None:
    """Wait until Streamlit has finished the run the last action started.

    The action's rerun may not have begun yet: wait (at most 0.5 s, returning as soon as it does)
    for the app to leave the idle state, then for it to be idle again with nothing stale on the page.
    """
    try:
        page.wait_for_function(f"() => !({IDLE})", timeout=RUN_START_MS)
    except sync_api.TimeoutError:
        pass  # the run was over before we looked, or the action started none
    page.wait_for_function(f"() => {IDLE}", timeout=180_000)


def assert_healthy(page, what: str) -> None:
    assert page.locator("[data-testid=stException]").count() == 0, f"exception shown on {what}"
    try:  # pictures may load lazily: wait (bounded) for at least one decoded image or component frame
        page.wait_for_function(
            """() => [...document.querySelectorAll('[data-testid=stMain] img, [data-testid=stMain] iframe')]
                     .filter(e => e.tagName === 'IFRAME' || (e.complete && e.naturalWidth > 0)).length >= 1""",
            timeout=60_000,
        )
    except sync_api.TimeoutError:
        pytest.fail(f"no picture rendered on {what}")


def screenshot(page, name: str, full: bool = True) -> None:
    """Save a screenshot to ``$RPN_VIZ_SCREENSHOTS`` (when set); ``full``: the whole page, not the window."""
    folder = os.environ.get("RPN_VIZ_SCREENSHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    if full:  # the app scrolls inside its own container: enlarge the window to see the whole page
        page.set_viewport_size({"width": size["width"], "height": 2600})
        page.wait_for_function("() => [...document.images].every(i => i.complete)")  # re-laid-out pictures
    page.screenshot(path=str(Path(folder) / f"{name}.png"))
    if full:
        page.set_viewport_size(size)


def sidebar_step(page, title: str) -> None:
    page.locator("[data-testid=stSidebar]").get_by_text(title, exact=True).click()
    settle(page)
