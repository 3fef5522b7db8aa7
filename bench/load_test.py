"""A classroom at once: N browser sessions upload their own photo, move a slider, change step, train.

    python bench/load_test.py                      # 30 sessions, 20 of them train; table on stdout
    python bench/load_test.py --sessions 5 --json load.json

Starts ``streamlit run app.py`` on a free loopback port (127.0.0.1 only) with a custom checkpoint
made here (weights re-drawn from a seeded normal, so every photo gets its own scores), opens N
sessions in Debian's Chromium (``/usr/bin/chromium``, driven by Playwright; never a downloaded
browser), and in every session, all at the same moment:

1. uploads that session's own photo (N different photos made from the samples) on the Proposals step;
2. waits for the result and downloads "Proposals as JSON";
3. moves the NMS IoU slider one notch (0.70 → 0.65) with the keyboard and downloads the JSON again;
4. switches to step 7 (NMS) in the sidebar and waits for its picture;
5. the first ``--train`` sessions (default 20) open the learning page, type a box on their photo and
   press Train at the same moment (30 steps each): trainings queue (``rpn_viz.training.fairqueue``), every
   waiting page must show its place in line, and every training must finish.

Checks: no exception or error box on any page and no traceback in the server log; each session's
JSON is *its own* photo's (size) and equals what ``rpn_viz.trace`` / ``refilter`` compute here for
that photo and those settings; the server's peak memory (``VmHWM``) stays under the limit (2 GB).
Reports the time from upload to first result, from slider move to new result, for the step switch
and for each training (click to finished), and the server's CPU-seconds per session.

Bounded: N ≤ 40 sessions, every wait has a timeout, and the whole run is cut at ``--max-seconds``.

One script of ~600 lines on purpose: it reads top to bottom in the order a run happens (inputs, the
server and its memory, one browser session, checking against rpn_viz, the table); the pieces it
shares with the tests (server, Chromium, the random checkpoint, the idle test) are ``rpn_viz.testing``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rpn_viz.testing import CHROMIUM, RUN_START_MS, STREAMLIT_IDLE, AppServer, save_random_checkpoint  # noqa: E402
from rpn_viz.testing import CHROMIUM_FLAGS as FLAGS  # noqa: E402

MODEL_KEY = "custom:mobilenet_v3_large_fpn"
PICTURE_URL = re.compile(r".*/media/[^/?]+\.(png|jpe?g|webp|gif)(\?.*)?$")
SHOW_PICTURES = False  # --show-pictures


def snapshot() -> tuple[float, float, float, float]:  # set in main(): server, machine, time, browsers
    return (0.0, 0.0, time.perf_counter(), 0.0)
MAX_SESSIONS = 40
TRAIN_STEPS = 30
MARKS: dict[str, tuple] = {}  # snapshots when the last session finished a phase (the last writer wins)


@dataclass
class Session:
    index: int
    photo: str
    size: list[int]
    ok: bool = False
    first_result_s: float | None = None
    slider_result_s: float | None = None
    slider_presses: int = 0  # key presses the slider lost (pressed again)
    nms_iou_after: float | None = None
    proposals_first: int | None = None
    proposals_after: int | None = None
    step_switch_s: float | None = None
    train_s: float | None = None  # Train clicked → training finished (queue wait included)
    queue_places: list[int] = field(default_factory=list)  # places in line this page showed while waiting
    errors: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# inputs: a checkpoint and N different photos
# --------------------------------------------------------------------------------------------------


def make_checkpoint(folder: Path) -> Path:
    return save_random_checkpoint(folder / "classroom_random.pth", seed=0)


def make_photos(folder: Path, n: int) -> list[Path]:
    """N different JPEGs from the sample photos: flipped, cropped, rotated, rescaled."""
    from PIL import Image, ImageOps

    samples = sorted((ROOT / "assets").glob("*.jpg"))
    photos = []
    for i in range(n):
        with Image.open(samples[i % len(samples)]) as source:
            image = ImageOps.exif_transpose(source).convert("RGB")
        variant = i // len(samples)
        if variant % 4 == 1:
            image = ImageOps.mirror(image)
        elif variant % 4 == 2:
            w, h = image.size
            image = image.crop((w // 10, h // 10, w - w // 10, h - h // 8))
        elif variant % 4 == 3:
            image = image.transpose(Image.Transpose.ROTATE_90)
        if variant >= 4:
            image = image.resize((image.width * 3 // 4, image.height * 3 // 4))
        path = folder / f"student_{i:02d}.jpg"
        image.save(path, quality=90)
        photos.append(path)
    return photos


# --------------------------------------------------------------------------------------------------
# the server and its memory
# --------------------------------------------------------------------------------------------------


def machine_busy_seconds() -> float:
    """CPU seconds all cores of this machine have spent busy (not idle or waiting for I/O)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def descendants_cpu_seconds(root: int, exclude: int) -> float:
    """CPU seconds used so far by the live descendants of ``root`` (here: the Playwright driver and
    its Chromium processes), leaving out the subtree of ``exclude`` (the server)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    total = 0.0
    for pid, seconds in times.items():
        ancestor = pid
        while ancestor in parents and ancestor not in (root, exclude, 0, 1):
            ancestor = parents[ancestor]
        if ancestor == root and pid != root:
            total += seconds
    return total


class Server(AppServer):
    """``rpn-viz app`` on loopback (``rpn_viz.testing.AppServer``), with its memory sampled from /proc."""

    def __init__(self, checkpoint: Path, log_path: Path, extra_env: dict[str, str] | None = None,
                 app_root: Path | None = None) -> None:
        super().__init__(log_path, env={"RPN_VIZ_CHECKPOINT": str(checkpoint), **(extra_env or {})},
                         app_root=None if app_root in (None, ROOT) else app_root)
        self.samples: list[tuple[float, float]] = []  # (seconds since start, RSS MB)
        self._stop = threading.Event()
        self._start = time.perf_counter()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def status_mb(self, field_name: str) -> float | None:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) / 1024.0
        except OSError:
            return None
        return None

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            rss = self.status_mb("VmRSS")
            if rss is not None:
                self.samples.append((time.perf_counter() - self._start, rss))

    def wait_healthy(self, timeout_s: float = 120) -> None:
        try:
            super().wait_healthy(timeout_s)
        except RuntimeError as exc:
            raise SystemExit(f"load test: {exc}") from None

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> dict[str, float | None]:
        """Peak memory figures, then terminate."""
        peak = {"vmhwm_mb": self.status_mb("VmHWM"), "sampled_peak_mb": max((m for _, m in self.samples), default=None),
                "rss_at_end_mb": self.status_mb("VmRSS")}
        self._stop.set()
        super().stop()
        return peak


# --------------------------------------------------------------------------------------------------
# one browser session
# --------------------------------------------------------------------------------------------------

async def settle(page, timeout_ms: float) -> None:
    """Wait until Streamlit has finished the run the last action started (as ``tests/browsing.settle``).

    Polled 4× a second, not every animation frame: thirty pages polling at 60 Hz cost real CPU.
    """
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    try:  # the action's rerun may not have begun yet: give it a moment to start
        await page.wait_for_function(f"() => !({STREAMLIT_IDLE})", timeout=RUN_START_MS, polling=100)
    except PlaywrightTimeout:
        pass  # the run was over before we looked, or the action started none
    await page.wait_for_function(f"() => {STREAMLIT_IDLE}", timeout=timeout_ms, polling=250)


async def download_json(page, timeout_ms: float, attempts: int = 8) -> dict:
    """Click "Proposals as JSON" and read the file. A click that lands while the page reruns asks
    for the previous run's file, which Streamlit has already dropped (the download is canceled):
    settle and click again."""
    for attempt in range(attempts):
        button = page.get_by_role("button", name="Proposals as JSON")
        await button.wait_for(timeout=timeout_ms)
        try:
            async with page.expect_download(timeout=timeout_ms) as info:
                await button.click()
            download = await info.value
            return json.loads(Path(await download.path()).read_text())
        except Exception:  # noqa: BLE001 - canceled download: retried, then reported
            if attempt == attempts - 1:
                raise
            await settle(page, timeout_ms)
    raise AssertionError("unreachable")


async def page_errors(page) -> list[str]:
    errors = []
    if await page.locator("[data-testid=stException]").count():
        errors.append("exception shown: " + (await page.locator("[data-testid=stException]").first.inner_text())[:200])
    for alert in await page.locator("[data-testid=stAlert]").all():
        text = await alert.inner_text()
        if "error" in (await alert.get_attribute("class") or "").lower() or "Could not" in text:
            errors.append("error box: " + text[:200])
    return errors


async def switch_step(page, session: Session, title: str, timeout_ms: float) -> None:
    """Choose a step in the sidebar and wait until its page has run and shows a picture."""
    start = time.perf_counter()
    await page.locator("[data-testid=stSidebar]").get_by_text(title, exact=True).click()
    await page.locator("[data-testid=stMain] h1").filter(has_text=title.split("·", 1)[1].strip()).wait_for(
        timeout=timeout_ms)
    await settle(page, timeout_ms)
    # a picture: an image, or a clickable picture (a component's frame, as the NMS step's)
    await page.locator("[data-testid=stMain] [data-testid=stImage] img, [data-testid=stMain] iframe").first.wait_for(
        state="attached", timeout=timeout_ms)
    session.step_switch_s = time.perf_counter() - start


async def train(page, session: Session, barrier: asyncio.Barrier, timeout_ms: float, results: dict) -> None:
    """Type a box on this session's photo, press Train with the others, watch the queue, wait for the end."""
    w, h = session.size
    await page.locator("[data-testid=stSidebar]").get_by_text("T1 · Watch an RPN learn", exact=True).click()
    boxes = page.get_by_label("Boxes (x1, y1, x2, y2 per line, photo pixels)")
    await boxes.wait_for(timeout=timeout_ms)
    await settle(page, timeout_ms)
    await boxes.fill(f"{w * 0.2:.0f}, {h * 0.2:.0f}, {w * 0.7:.0f}, {h * 0.8:.0f}")
    await boxes.press("Control+Enter")
    await page.get_by_role("button", name="Use typed boxes").click()
    await settle(page, timeout_ms)
    steps = page.locator(".st-key-learn_steps input[type=range]")
    await steps.focus()
    await steps.press("Home")  # 10 steps
    for _ in range((TRAIN_STEPS - 10) // 10):
        await steps.press("ArrowRight")
    await settle(page, timeout_ms)
    if await barrier.wait() == 0:
        MARKS["train_start"] = snapshot()  # noqa: F821 - set in main()
    start = time.perf_counter()
    await page.get_by_role("button", name="Train", exact=True).click()
    done = page.get_by_text("It is now your RPN", exact=False).first
    queued = page.get_by_text("Queued: number", exact=False).first
    deadline = start + timeout_ms / 1000
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    while time.perf_counter() < deadline:
        if await done.count():
            break
        if await queued.count():
            try:  # the note goes away when this session's turn comes: it may be gone by now
                text = await queued.inner_text(timeout=1000)
            except PlaywrightTimeout:
                continue
            found = re.search(r"number (\d+) in line", text)
            if found and (not session.queue_places or session.queue_places[-1] != int(found.group(1))):
                session.queue_places.append(int(found.group(1)))
        try:  # returns as soon as training is over; else look at the queue again
            await done.wait_for(timeout=500)
        except PlaywrightTimeout:
            pass
    await done.wait_for(timeout=1000)
    session.train_s = time.perf_counter() - start
    await settle(page, timeout_ms)


async def run_session(browser, url: str, session: Session, photo: Path, barrier: asyncio.Barrier,
                      timeout_ms: float, results: dict, trains: asyncio.Barrier | None = None) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    if not SHOW_PICTURES:
        # The server still draws every picture; the browsers just do not fetch and decode them. On a
        # 2-core machine twenty Chromium pages would otherwise take most of the CPU from the server.
        await context.route(PICTURE_URL, lambda route: route.abort())
    page = await context.new_page()
    console: list[str] = []
    page.on("pageerror", lambda exc: console.append(f"page error: {exc}"))
    stage = "opening the app"
    from playwright.async_api import TimeoutError as PlaywrightTimeout
    try:
        await page.goto(f"{url}/?step=proposals&source=Upload&model={MODEL_KEY}", timeout=timeout_ms)
        upload = page.locator("[data-testid=stSidebar] input[type=file]").first
        await upload.wait_for(state="attached", timeout=timeout_ms)
        await settle(page, timeout_ms)
        stage = "waiting for the others"
        if await barrier.wait() == 0:  # the whole class uploads at the same moment
            results["uploads_start"] = snapshot()  # noqa: F821 - set in main()

        stage = "upload → first result"
        start = time.perf_counter()
        await upload.set_input_files(str(photo))
        await page.get_by_role("button", name="Proposals as JSON").wait_for(timeout=timeout_ms)
        session.first_result_s = time.perf_counter() - start
        await settle(page, timeout_ms)
        first = await download_json(page, timeout_ms)
        results["first"] = first
        session.proposals_first = len(first["proposals"])

        stage = "slider → new result"
        slider = page.locator("[data-testid=stSidebar] .st-key-nms_iou input[type=range]")
        start = time.perf_counter()
        moved = "() => document.querySelector('[data-testid=stSidebar] .st-key-nms_iou input[type=range]')?.value === '0.65'"
        for _ in range(3):  # a key press that lands while the page re-renders the slider is lost: press again
            await slider.focus()
            await slider.press("ArrowLeft")
            try:  # the slider shows its new value within moments, however busy the server
                await page.wait_for_function(moved, timeout=15_000, polling=100)
                break
            except PlaywrightTimeout:
                session.slider_presses += 1
                await settle(page, timeout_ms)
        deadline = start + timeout_ms / 1000
        while True:  # the rerun may not have started yet: poll until the JSON shows the new setting
            await settle(page, timeout_ms)
            after = await download_json(page, timeout_ms)
            if abs(after["settings"]["nms_iou"] - 0.65) < 1e-6 or time.perf_counter() > deadline:
                break
        session.slider_result_s = time.perf_counter() - start
        results["after"] = after
        session.proposals_after = len(after["proposals"])
        session.nms_iou_after = after["settings"]["nms_iou"]
        session.errors += await page_errors(page)

        stage = "step switch"
        await switch_step(page, session, "7 · NMS", timeout_ms)
        session.errors += await page_errors(page)
        MARKS["class_end"] = snapshot()  # noqa: F821 - set in main()
        if trains is not None:
            stage = "training"
            await train(page, session, trains, timeout_ms, results)
            session.errors += await page_errors(page)
            MARKS["train_end"] = snapshot()  # noqa: F821
    except Exception as exc:  # noqa: BLE001 - every failure is reported per session
        session.errors.append(f"{stage}: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
        if trains is not None and stage != "training":
            await trains.abort()  # the others must not wait for this one at the Train barrier
    finally:
        session.errors += console
        results["context"] = context  # closed by run_classroom, after the CPU figures are read


async def run_classroom(url: str, photos: list[Path], sessions: list[Session], timeout_s: float,
                        trainers: int = 0) -> list[dict]:
    from playwright.async_api import async_playwright

    results: list[dict] = [{} for _ in sessions]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            barrier = asyncio.Barrier(len(sessions))
            trains = asyncio.Barrier(trainers) if trainers else None
            tasks = [run_session(browser, url, s, photos[s.index], barrier, timeout_s * 1000, results[s.index],
                                 trains if s.index < trainers else None)
                     for s in sessions]
            await asyncio.gather(*tasks)
            if any("uploads_start" in r for r in results):
                results[0]["uploads_end"] = snapshot()
        finally:
            for r in results:
                if "context" in r:
                    await r.pop("context").close()
            await browser.close()
    return results


async def warm_up(url: str, timeout_s: float) -> float:
    """One teacher opens the app first: the model loads once for the server. Returns seconds."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = await browser.new_page()
        start = time.perf_counter()
        await page.goto(f"{url}/?step=proposals&model={MODEL_KEY}", timeout=timeout_s * 1000)
        await page.get_by_role("button", name="Proposals as JSON").wait_for(timeout=timeout_s * 1000)
        seconds = time.perf_counter() - start
        await browser.close()
    return seconds


# --------------------------------------------------------------------------------------------------
# checking against rpn_viz
# --------------------------------------------------------------------------------------------------


def check(sessions: list[Session], results: list[dict], photos: list[Path], checkpoint: Path) -> None:
    """Each session's JSON must be its own photo's, equal to rpn_viz's for the settings it shows."""
    import torch

    import rpn_viz
    from rpn_viz.pipeline.export import trace_json
    from rpn_viz.pipeline.filtering import FilterSettings
    from rpn_viz.io.images import load_image

    from ui.serving import limit_torch_threads

    limit_torch_threads()  # the server's thread count: a conv's float sums depend on how it splits them
    loaded = rpn_viz.load_model(checkpoint=checkpoint, device="cpu")
    for session, result in zip(sessions, results):
        if session.errors or "after" not in result:
            continue
        photo = photos[session.index]
        t = rpn_viz.trace(loaded, load_image(photo.read_bytes(), name=photo.name))
        for stage in ("first", "after"):
            got = result[stage]
            if got["image_size"] != session.size:
                session.errors.append(f"{stage}: image_size {got['image_size']} is not this session's {session.size}")
                continue
            expected = trace_json(t, t.refilter(FilterSettings(**got["settings"])))
            if len(got["proposals"]) != len(expected["proposals"]):
                session.errors.append(f"{stage}: {len(got['proposals'])} proposals, expected {len(expected['proposals'])}")
                continue
            boxes = torch.tensor([p["box"] for p in got["proposals"]])
            want = torch.tensor([p["box"] for p in expected["proposals"]])
            scores = torch.tensor([p["score"] for p in got["proposals"]])
            want_scores = torch.tensor([p["score"] for p in expected["proposals"]])
            if not (torch.allclose(boxes, want, atol=1e-2, rtol=0) and torch.allclose(scores, want_scores, atol=1e-5, rtol=0)):
                bad = int((~torch.isclose(boxes, want, atol=1e-2, rtol=0).all(dim=1)).sum())
                session.errors.append(f"{stage}: {bad} of {len(boxes)} proposals differ from rpn_viz's")
        if session.nms_iou_after is not None and abs(session.nms_iou_after - 0.65) > 1e-6:
            session.errors.append(f"slider: nms_iou {session.nms_iou_after}, expected 0.65")
        session.ok = not session.errors


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------


def summary_rows(sessions: list[Session], peak: dict, limit_mb: float, warm_s: float) -> list[tuple[str, str, str]]:
    firsts = [s.first_result_s for s in sessions if s.first_result_s is not None]
    sliders = [s.slider_result_s for s in sessions if s.slider_result_s is not None]

    def spread(values: list[float]) -> str:
        if not values:
            return "-"
        return f"median {statistics.median(values):.1f} s, min {min(values):.1f} s, max {max(values):.1f} s"

    ok = sum(s.ok for s in sessions)
    hwm = peak.get("vmhwm_mb") or 0.0
    switches = [s.step_switch_s for s in sessions if s.step_switch_s is not None]
    trained = [s for s in sessions if s.train_s is not None]
    queued = [s for s in trained if s.queue_places]
    return [
        ("sessions without error, with their own correct proposals", f"{ok} / {len(sessions)}",
         "yes" if ok == len(sessions) else "NO"),
        ("first page with the model loading (one session, before the class)", f"{warm_s:.1f} s", ""),
        ("upload → first result, all sessions at once", spread(firsts), ""),
        ("slider move → new result, all sessions at once", spread(sliders), ""),
        ("slider key presses lost by a busy page (then pressed again)", str(sum(s.slider_presses for s in sessions)), ""),
        ("step switch (to 7 · NMS) → picture, all sessions at once", spread(switches), ""),
        ("trainings finished / pages that showed their place in line while waiting",
         f"{len(trained)} finished; {len(queued)} showed a place (first places seen: "
         f"{sorted(s.queue_places[0] for s in queued)[:20]})", ""),
        ("Train clicked → training finished (queue wait included)", spread([s.train_s for s in trained]), ""),
        ("server peak memory (VmHWM)", f"{hwm:.0f} MB (limit {limit_mb:.0f} MB)", "yes" if 0 < hwm < limit_mb else "NO"),
        ("server memory at the end (VmRSS)", f"{peak.get('rss_at_end_mb') or 0:.0f} MB", ""),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="N simultaneous browser sessions against the app.")
    parser.add_argument("--sessions", type=int, default=30, help=f"simultaneous sessions (default 30, at most {MAX_SESSIONS})")
    parser.add_argument("--train", type=int, default=20,
                        help=f"how many of them then press Train at once ({TRAIN_STEPS} steps each; default 20, 0: none)")
    parser.add_argument("--timeout", type=float, default=480, help="seconds any one wait may take (default 480)")
    parser.add_argument("--max-seconds", type=float, default=900, help="the whole run is cut after this (default 900)")
    parser.add_argument("--memory-limit-mb", type=float, default=2048, help="server peak memory goal (default 2048)")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the server, e.g. MALLOC_ARENA_MAX=2 (repeatable)")
    parser.add_argument("--show-pictures", action="store_true",
                        help="let the browsers fetch and decode the pictures (costs the machine's CPU)")
    parser.add_argument("--source", choices=["worktree", "head"], default="worktree",
                        help="serve the working tree (default) or a clean copy of the last commit (git archive "
                        "HEAD), which edits in progress cannot break mid-run")
    parser.add_argument("--json", type=Path, metavar="OUT.json", help="write every figure as JSON")
    args = parser.parse_args(argv)
    global SHOW_PICTURES
    SHOW_PICTURES = args.show_pictures
    if not 1 <= args.sessions <= MAX_SESSIONS:
        parser.error(f"--sessions must be between 1 and {MAX_SESSIONS}")
    if not Path(CHROMIUM).exists():
        print(f"load test: {CHROMIUM} is missing (apt-get install chromium); nothing was run", file=sys.stderr)
        return 2
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        print("load test: playwright is not installed (pip install playwright); nothing was run", file=sys.stderr)
        return 2
    from rpn_viz.model.paper import MOBILENET_V2_IMAGENET
    from rpn_viz.model.weights import WEIGHTS_DIR_ENV, configured_weights_dir, is_available

    if args.train and not is_available(MOBILENET_V2_IMAGENET):
        print(f"load test: --train needs {MOBILENET_V2_IMAGENET.filename} (the learning page's backbone) in "
              f"../shared/weights, ${WEIGHTS_DIR_ENV} or torch's cache; nothing was run", file=sys.stderr)
        return 2
    weights_dir = configured_weights_dir()
    if args.source == "head" and weights_dir is not None:  # the copy has no ../shared beside it
        args.server_env.insert(0, f"{WEIGHTS_DIR_ENV}={weights_dir}")

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rpn_viz_load_") as tmp:
        folder = Path(tmp)
        checkpoint = make_checkpoint(folder)
        photos = make_photos(folder, args.sessions)
        from PIL import Image

        sessions = []
        for i, photo in enumerate(photos):
            with Image.open(photo) as image:
                sessions.append(Session(i, photo.name, list(image.size)))
        extra_env = dict(item.split("=", 1) for item in args.server_env)
        app_root = ROOT
        if args.source == "head":
            app_root = folder / "app"
            app_root.mkdir()
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(app_root)], input=archive, check=True)
        server = Server(checkpoint, folder / "streamlit.log", extra_env, app_root)
        results: list[dict] = []
        peak: dict = {}
        cpu: dict[str, float] = {}
        warm_s = float("nan")
        try:
            server.wait_healthy()
            warm_s = asyncio.run(asyncio.wait_for(warm_up(server.url, args.timeout), args.timeout))
            global snapshot
            me, server_pid = os.getpid(), server.process.pid
            snapshot = lambda: (server.cpu_seconds(), machine_busy_seconds(), time.perf_counter(),  # noqa: E731
                                descendants_cpu_seconds(me, server_pid))
            try:
                results = asyncio.run(asyncio.wait_for(
                    run_classroom(server.url, photos, sessions, args.timeout, min(args.train, args.sessions)),
                    args.max_seconds))
            finally:
                starts = [r["uploads_start"] for r in results if "uploads_start" in r] if results else []
                if starts and "class_end" in MARKS:  # from the uploads to the last session's step switch
                    cpu0, busy0, wall0, browsers0 = starts[0]
                    cpu1, busy1, wall1, browsers1 = MARKS["class_end"]
                    cpu["class_wall_s"] = wall1 - wall0
                    cpu["server_cpu_s"] = cpu1 - cpu0
                    cpu["browsers_cpu_s"] = browsers1 - browsers0
                    cpu["machine_busy_cpu_s"] = busy1 - busy0
                if "train_start" in MARKS and "train_end" in MARKS:
                    cpu["train_wall_s"] = MARKS["train_end"][2] - MARKS["train_start"][2]
                    cpu["train_server_cpu_s"] = MARKS["train_end"][0] - MARKS["train_start"][0]
        except (asyncio.TimeoutError, TimeoutError):
            for s in sessions:
                if s.slider_result_s is None:
                    s.errors.append(f"run cut at --max-seconds {args.max_seconds:.0f}")
        finally:
            log = server.log_tail(200_000)
            peak = server.stop()
        if "Traceback" in log:
            first = log[log.index("Traceback"):][:3000]
            print("server log, first traceback:\n" + first, file=sys.stderr)
            for s in sessions:
                s.errors.append("server log has a traceback (printed above)")
        if results:
            check(sessions, results, photos, checkpoint)

    rows = summary_rows(sessions, peak, args.memory_limit_mb, warm_s)
    if cpu:
        cores = os.cpu_count() or 1
        rows.append(("CPU from the uploads on: server / browsers / whole machine",
                     f"{cpu['server_cpu_s']:.0f} s / {cpu['browsers_cpu_s']:.0f} s / {cpu['machine_busy_cpu_s']:.0f} s of "
                     f"{cpu['class_wall_s'] * cores:.0f} core-seconds ({cpu['class_wall_s']:.0f} s × {cores} cores)", ""))
        per = cpu["server_cpu_s"] / len(sessions)
        rows.append(("server CPU per session (upload, 2 downloads, slider, step switch)", f"{per:.2f} s (goal ≤ 2 s)",
                     "yes" if per <= 2 else "NO"))
        if "train_wall_s" in cpu:
            rows.append(("simultaneous trainings: wall from Train to the last finished / server CPU",
                         f"{cpu['train_wall_s']:.0f} s / {cpu['train_server_cpu_s']:.0f} s", ""))
    elapsed = time.perf_counter() - started
    print(f"rpn_viz load test — {args.sessions} simultaneous Chromium sessions on 127.0.0.1, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; total {elapsed:.0f} s"
          + (f"; server environment {' '.join(args.server_env)}" if args.server_env else ""))
    print("each session: upload its own photo on the Proposals step, download the JSON, move NMS IoU 0.70 → 0.65, "
          "download again (checked against rpn_viz.trace/refilter), switch to step 7; "
          f"then {min(args.train, args.sessions)} of them press Train together ({TRAIN_STEPS} steps)\n")
    width = max(len(r[0]) for r in rows)
    for what, value, met in rows:
        print(f"{what.ljust(width)}  {value}  {met}")
    failed = [s for s in sessions if not s.ok]
    for s in failed:
        print(f"session {s.index} ({s.photo}): " + "; ".join(s.errors), file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({
            "sessions": [asdict(s) for s in sessions], "server_memory": peak, "warm_up_s": warm_s, "cpu": cpu,
            "memory_samples_mb": server.samples[::4], "elapsed_s": elapsed, "cpu_count": os.cpu_count(),
        }, indent=1))
        print(f"\nwrote {args.json}")
    ok = not failed and 0 < (peak.get("vmhwm_mb") or 0) < args.memory_limit_mb
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
