"""The slide deck in a real browser (Chromium via Playwright): click "Download slides (PDF)", watch the
progress, save the deck and read it back. A screenshot of the sidebar lands in ``$RPN_VIZ_SCREENSHOTS``."""

from __future__ import annotations

import pytest

from browsing import assert_healthy, browser, new_page, screenshot, server, settle  # noqa: F401 (fixtures)

pypdf = pytest.importorskip("pypdf", reason="pypdf is a test dependency (pip install -e .[test])")
pytestmark = pytest.mark.browser


def test_the_button_gives_a_valid_pdf(browser, server, tmp_path):
    page = new_page(browser)
    try:
        page.goto(f"{server}/?step=proposals")
        settle(page)
        page.wait_for_function("() => !document.querySelector('[data-testid=stSpinner]')", timeout=300_000)
        assert_healthy(page, "the proposals page")
        sidebar = page.locator("[data-testid=stSidebar]")
        sidebar.get_by_text("Present and compare").click()
        sidebar.get_by_role("button", name="Download slides (PDF)").click()
        save = sidebar.get_by_role("button", name="Save the slides")
        save.wait_for(timeout=240_000)  # progress shows meanwhile; the page stays usable
        screenshot(page, "slides-ready", full=False)
        with page.expect_download() as download:
            save.click()
        path = tmp_path / "deck.pdf"
        download.value.save_as(path)
        assert download.value.suggested_filename.endswith("-slides.pdf")
        data = path.read_bytes()
        assert data.startswith(b"%PDF-")
        reader = pypdf.PdfReader(path)
        assert len(reader.pages) == 9
        assert "8 · Proposals" in reader.pages[8].extract_text()
    finally:
        page.close()
