"""What a student waits for in a real browser: step switch → pictures shown, slider release → new picture.

    python bench/browser_steps.py               # 3 rounds over the pipeline steps, table on stdout
    python bench/browser_steps.py --rounds 5 --json browser.json

Starts ``streamlit run app.py`` on loopback (the same server as ``bench/load_test.py``, with its
random-normal checkpoint), opens one Chromium page (Debian's ``/usr/bin/chromium`` via Playwright) on
the first sample photo, then, ``--rounds`` times:

* clicks every pipeline step in the sidebar and times the click → the step's title shown, the run
  finished and every picture on the page loaded (``img.complete`` with a size);
* (also) uploads a 12-megapixel JPEG ``--uploads`` times and times it to the pictures shown;
* on the steps with a slider of their own, and with the sidebar's NMS IoU slider, presses an arrow
  key on the slider (a release at the next notch) and times → a picture of the page replaced and
  loaded.

The first round includes drawing every picture once (first visits); later rounds are warm. Printed:
median and maximum per row over all rounds, and the median of the warm rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load_test import MODEL_KEY, Server, make_checkpoint  # noqa: E402
from rpn_viz.testing import CHROMIUM, STREAMLIT_IDLE  # noqa: E402
from rpn_viz.testing import CHROMIUM_FLAGS as FLAGS  # noqa: E402

GOAL_S = 0.5
STEPS = ["1 · Input", "2 · Feature maps", "3 · Anchors", "4 · RPN head", "5 · Regression", "6 · Before NMS",
         "7 · NMS", "8 · Proposals"]
# step title -> widget key of a slider on that page (moved by one notch with the keyboard)
SLIDERS = {"5 · Regression": "reg_many", "6 · Before NMS": "before_drawn", "7 · NMS": "nms_at",
           "8 · Proposals": "prop_drawn"}

PICTURES_LOADED = """() => {
  if (document.querySelector('[data-testid=stStatusWidget]')) return false;
  if (document.querySelectorAll('[data-stale=true]').length) return false;
  const imgs = [...document.querySelectorAll('[data-testid=stMain] img, [data-testid=stMain] iframe')];
  return imgs.length > 0 && imgs.every(i => i.tagName === 'IFRAME' || (i.complete && i.naturalWidth > 0));
}"""
# Counts the app's finished runs (its script state going back to "notRunning"): a slider move is
# answered when the count grows and the pictures are loaded (clickable pictures are component frames
# whose source never changes, so a changed <img> cannot be what is waited for).
COUNT_RUNS = """() => {
  const app = document.querySelector('[data-testid=stApp]');
  window.__runs = 0;
  window.__state = app.dataset.testScriptState;
  new MutationObserver(() => {
    const state = app.dataset.testScriptState;
    if (state === 'notRunning' && window.__state !== 'notRunning') window.__runs += 1;
    window.__state = state;
  }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""


def big_photo(folder: Path, megapixels: float = 12.0) -> Path:
    """A 4000×3000 JPEG (a sample photo enlarged): what a phone camera sends."""
    from PIL import Image

    path = folder / "phone_12mp.jpg"
    with Image.open(ROOT / "assets" / "coffee.jpg") as image:
        image.convert("RGB").resize((4000, 3000), Image.BICUBIC).save(path, quality=92)
    return path


def upload_times(url: str, photo: Path, runs: int, timeout_ms: float) -> list[float]:
    """Upload → the Proposals step's pictures shown, in a fresh page each time (no cache of that photo
    in the browser; the server forgets the trace between runs only if told to, so each run re-encodes
    the photo slightly differently: a new sha256, a new trace)."""
    from PIL import Image
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        for i in range(runs):
            variant = photo.with_name(f"phone_12mp_{i}.jpg")
            with Image.open(photo) as image:
                image.save(variant, quality=90 + i % 5)  # different bytes: a photo the server has not seen
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(timeout_ms)
            page.goto(f"{url}/?step=proposals&source=Upload&model={MODEL_KEY}")
            upload = page.locator("[data-testid=stSidebar] input[type=file]").first
            upload.wait_for(state="attached")
            page.wait_for_function(f"() => {STREAMLIT_IDLE}", polling=50)  # the first run is over
            start = time.perf_counter()
            upload.set_input_files(str(variant))
            page.get_by_role("button", name="Proposals as JSON").wait_for()
            page.wait_for_function(PICTURES_LOADED, polling=50)
            times.append(time.perf_counter() - start)
            page.close()
        browser.close()
    return times


def measure(url: str, rounds: int, timeout_ms: float) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(timeout_ms)
        page.goto(f"{url}/?step=lab_anchors&model={MODEL_KEY}")  # not one of STEPS: every click is a switch
        page.wait_for_function(PICTURES_LOADED, polling=50)
        page.evaluate(COUNT_RUNS)
        sidebar = page.locator("[data-testid=stSidebar]")
        for r in range(rounds):
            for title in STEPS:
                start = time.perf_counter()
                sidebar.get_by_text(title, exact=True).click()
                page.locator("[data-testid=stMain] h1").filter(has_text=title.split("·", 1)[1].strip()).wait_for()
                page.wait_for_function(f"() => {STREAMLIT_IDLE}", polling=50)  # the new step's run is over
                page.wait_for_function(PICTURES_LOADED, polling=50)
                times.setdefault(f"step switch → pictures ({'first visit' if r == 0 else 'warm'})", []).append(
                    time.perf_counter() - start)
                moves = [("sidebar NMS IoU", "[data-testid=stSidebar] .st-key-nms_iou input[type=range]",
                          "ArrowLeft" if r % 2 == 0 else "ArrowRight")] if title == "8 · Proposals" else []
                if title in SLIDERS:
                    moves.append((title, f".st-key-{SLIDERS[title]} input[type=range]", "ArrowRight"))
                for name, selector, key in moves:
                    runs = page.evaluate("window.__runs")
                    slider = page.locator(selector)
                    slider.focus()
                    start = time.perf_counter()
                    slider.press(key)
                    page.wait_for_function(f"() => window.__runs > {runs}", polling=20)
                    page.wait_for_function(PICTURES_LOADED, polling=50)
                    times.setdefault(f"slider release → new picture: {name}", []).append(time.perf_counter() - start)
        browser.close()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="walks over the steps (default 3; the first is cold)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds any one wait may take")
    parser.add_argument("--uploads", type=int, default=3, help="12-megapixel uploads timed (default 3)")
    parser.add_argument("--json", type=Path, metavar="OUT.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rpn_viz_browser_") as tmp:
        folder = Path(tmp)
        server = Server(make_checkpoint(folder), folder / "streamlit.log")
        try:
            server.wait_healthy()
            times = measure(server.url, args.rounds, args.timeout * 1000)
            times["12-MP upload → first pictures (Proposals step)"] = upload_times(
                server.url, big_photo(folder), args.uploads, args.timeout * 1000)
        finally:
            server.stop()
    print(f"Browser latencies (Chromium, one page, {args.rounds} rounds; goal: median ≤ {GOAL_S} s, "
          "a 12-MP upload ≤ 3 s)")
    print("| what | runs | median | max | goal |")
    print("|---|---|---|---|---|")
    for what, values in times.items():
        goal = 3.0 if "upload" in what else GOAL_S
        median = statistics.median(values)
        met = "" if "first visit" in what else ("✔" if median <= goal else "✘")
        print(f"| {what} | {len(values)} | {median:.2f} s | {max(values):.2f} s | {met} |")
    if args.json:
        args.json.write_text(json.dumps(times, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
