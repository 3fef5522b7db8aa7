"""A classroom at once: N browser sessions upload their own photo, move a slider, change step, train.

    python bench/load_test.py                      # 30 sessions, 20 of them train; table on stdout
    python bench/load_test.py --sessions 5 --json load.json
    python bench/load_test.py --waves 3            # a soak: 3 classes of 30 one after another, 10 train each
    python bench/load_test.py --processes 2        # a course: 2 app processes behind nginx (deploy/course.py)

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

With ``--waves W`` the class runs W times on the same server, each wave with photos of its own; all
its pages are closed after a wave, and once Streamlit has let their sessions go (its reconnect
window plus the app's sweeper, :func:`settle_seconds`) the server's resident memory is read: one
table row per wave, each "after" level within 10 % of the first wave's. With ``--processes P`` the
sessions go through nginx to P app processes (sticky by cookie, ``deploy/``): each session must be
answered by one process only, every process must serve some, and each one's peak memory is reported.

Bounded: N ≤ 40 sessions, every wait has a timeout, and each wave is cut at ``--max-seconds``.

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

from rpn_viz.testing import CHROMIUM, RUN_START_MS, STREAMLIT_IDLE, AppServer, free_port, save_random_checkpoint  # noqa: E402
from rpn_viz.testing import CHROMIUM_FLAGS as FLAGS  # noqa: E402
from deploy.course import PROCESS_HEADER, Nginx, shared_weights_env  # noqa: E402

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
    process: str | None = None  # behind nginx (--processes): the app process that answered its requests
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
        if variant >= 4:  # 3/4, then (more waves) 5/8, 7/8, 1/2 of the size
            numerator, denominator = [(3, 4), (5, 8), (7, 8), (1, 2)][min(variant // 4, 4) - 1]
            image = image.resize((image.width * numerator // denominator, image.height * numerator // denominator))
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


def descendants_cpu_seconds(root: int, exclude: set[int]) -> float:
    """CPU seconds used so far by the live descendants of ``root`` (here: the Playwright driver and
    its Chromium processes), leaving out the subtrees of ``exclude`` (the servers, nginx)."""
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
        while ancestor in parents and ancestor not in (root, 0, 1) and ancestor not in exclude:
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

    def peak_since(self, start: float) -> float:
        """Highest RSS sampled since ``start`` (a ``time.perf_counter()`` value), MB."""
        return max((mb for t, mb in self.samples if t >= start - self._start), default=0.0)

    def recent_mb(self, seconds: float) -> float:
        """Median RSS over the last ``seconds``, MB."""
        now = time.perf_counter() - self._start
        return statistics.median([mb for t, mb in self.samples if t >= now - seconds] or [self.status_mb("VmRSS") or 0])

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
    processes: set[str] = set()  # behind nginx (--processes): every answer names the app process that gave it
    page.on("response", lambda response: processes.add(response.headers.get(PROCESS_HEADER.lower(), "")))
    stage = "opening the app"
    from playwright.async_api import TimeoutError as PlaywrightTimeout
    try:
        await page.goto(f"{url}/?step=proposals&source=Upload&model={MODEL_KEY}", timeout=timeout_ms)
        upload = page.locator("[data-testid=stSidebar] input[type=file]").first
        await upload.wait_for(state="attached", timeout=timeout_ms)
        await settle(page, timeout_ms)
        stage = "waiting for the others"
        if await barrier.wait() == 0:  # the whole class uploads at the same moment
            MARKS["uploads_start"] = snapshot()  # noqa: F821 - set in main()

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
        served = {p for p in processes if p}
        if len(served) > 1:
            session.errors.append(f"not sticky: answered by {sorted(served)}")
        session.process = min(served) if served else None
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
            tasks = [run_session(browser, url, s, photos[s.index], barrier, timeout_s * 1000, results[i],
                                 trains if i < trainers else None)
                     for i, s in enumerate(sessions)]
            await asyncio.gather(*tasks)
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


def summary_rows(sessions: list[Session], peaks: list[dict], limit_mb: float, warm_s: float) -> list[tuple[str, str, str]]:
    firsts = [s.first_result_s for s in sessions if s.first_result_s is not None]
    sliders = [s.slider_result_s for s in sessions if s.slider_result_s is not None]

    def spread(values: list[float]) -> str:
        if not values:
            return "-"
        return f"median {statistics.median(values):.1f} s, min {min(values):.1f} s, max {max(values):.1f} s"

    ok = sum(s.ok for s in sessions)
    switches = [s.step_switch_s for s in sessions if s.step_switch_s is not None]
    trained = [s for s in sessions if s.train_s is not None]
    queued = [s for s in trained if s.queue_places]
    rows = [
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
    ]
    for number, peak in enumerate(peaks):
        name = "server" if len(peaks) == 1 else f"process {number + 1} ({peak.get('address')})"
        hwm = peak.get("vmhwm_mb") or 0.0
        if len(peaks) > 1:
            served = sum(s.process == peak.get("address") for s in sessions)
            rows.append((f"{name}: sessions it served", str(served), "yes" if served else "NO"))
        rows.append((f"{name} peak memory (VmHWM)", f"{hwm:.0f} MB (limit {limit_mb:.0f} MB)",
                     "yes" if 0 < hwm < limit_mb else "NO"))
        rows.append((f"{name} memory at the end (VmRSS)", f"{peak.get('rss_at_end_mb') or 0:.0f} MB", ""))
    return rows


def settle_seconds() -> float:
    """How long a wave's closed sessions take to leave the server: Streamlit keeps a closed tab's session
    for ``server.disconnectedSessionTTL`` (``.streamlit/config.toml``) in case it reconnects, then the
    app's sweeper (``ui.serving``, every ``SESSION_SWEEP_S``) frees it; one more sweep and 10 s margin."""
    import tomllib

    from ui.serving import SESSION_SWEEP_S

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    return float(config.get("server", {}).get("disconnectedSessionTTL", 120)) + 2 * SESSION_SWEEP_S + 10


@dataclass
class Wave:
    """One class in a soak run (``--waves``): its sessions, CPU and each process's memory."""

    number: int
    sessions: list[Session]
    cpu: dict[str, float] = field(default_factory=dict)
    peak_mb: list[float] = field(default_factory=list)  # per process: highest RSS sampled during the wave
    after_mb: list[float] = field(default_factory=list)  # per process: RSS once the wave's sessions were gone


def wave_cpu() -> dict[str, float]:
    """CPU figures of the wave that just ran, from the snapshots its sessions left in MARKS."""
    cpu: dict[str, float] = {}
    if "uploads_start" in MARKS and "class_end" in MARKS:  # from the uploads to the last session's step switch
        cpu0, busy0, wall0, browsers0 = MARKS["uploads_start"]
        cpu1, busy1, wall1, browsers1 = MARKS["class_end"]
        cpu.update(class_wall_s=wall1 - wall0, server_cpu_s=cpu1 - cpu0, browsers_cpu_s=browsers1 - browsers0,
                   machine_busy_cpu_s=busy1 - busy0)
    if "train_start" in MARKS and "train_end" in MARKS:
        cpu["train_wall_s"] = MARKS["train_end"][2] - MARKS["train_start"][2]
        cpu["train_server_cpu_s"] = MARKS["train_end"][0] - MARKS["train_start"][0]
    return cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="N simultaneous browser sessions against the app.")
    parser.add_argument("--sessions", type=int, default=30, help=f"simultaneous sessions (default 30, at most {MAX_SESSIONS})")
    parser.add_argument("--train", type=int, default=None,
                        help=f"how many of them then press Train at once ({TRAIN_STEPS} steps each; default 20, "
                        "with --waves 10 per wave; 0: none)")
    parser.add_argument("--waves", type=int, default=1,
                        help="classes one after another on the same server (a soak run; default 1): all sessions close "
                        "between waves, and the server's memory is read once they have left it")
    parser.add_argument("--settle-seconds", type=float, default=None,
                        help="with --waves: wait this long after a wave before reading memory (default: Streamlit's "
                        "disconnectedSessionTTL + two sweeps + 10 s)")
    parser.add_argument("--processes", type=int, default=1,
                        help="app processes behind nginx with sticky sessions (deploy/course.py; default 1: no nginx)")
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
    if args.waves < 1 or args.processes < 1:
        parser.error("--waves and --processes must be at least 1")
    if args.train is None:
        args.train = 20 if args.waves == 1 else 10
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
    waves: list[Wave] = []
    peaks: list[dict] = []
    settle_s = (settle_seconds() if args.settle_seconds is None else args.settle_seconds) if args.waves > 1 else 0.0
    with tempfile.TemporaryDirectory(prefix="rpn_viz_load_") as tmp:
        folder = Path(tmp)
        checkpoint = make_checkpoint(folder)
        photos = make_photos(folder, args.sessions * args.waves)  # every wave its own photos
        from PIL import Image

        sessions = []
        for i, photo in enumerate(photos):
            with Image.open(photo) as image:
                sessions.append(Session(i, photo.name, list(image.size)))
        extra_env = dict(item.split("=", 1) for item in args.server_env)
        if args.processes > 1:  # the course's processes share one weights cache
            extra_env = {**shared_weights_env(), **extra_env}
        app_root = ROOT
        if args.source == "head":
            app_root = folder / "app"
            app_root.mkdir()
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(app_root)], input=archive, check=True)
        servers = [Server(checkpoint, folder / f"streamlit{i}.log", extra_env, app_root) for i in range(args.processes)]
        proxy: Nginx | None = None
        warm_s = float("nan")
        logs = []
        try:
            for server in servers:
                server.wait_healthy()
            if args.processes > 1:
                proxy = Nginx(folder / "nginx", free_port(), [server.port for server in servers])
                proxy.wait_healthy()
            url = proxy.url if proxy is not None else servers[0].url
            for server in servers:  # the teacher opens each process once: its model loads before the class
                warm_s = asyncio.run(asyncio.wait_for(warm_up(server.url, args.timeout), args.timeout))
            global snapshot
            me = os.getpid()
            others = {server.process.pid for server in servers} | ({proxy.process.pid} if proxy is not None else set())
            snapshot = lambda: (sum(server.cpu_seconds() for server in servers), machine_busy_seconds(),  # noqa: E731
                                time.perf_counter(), descendants_cpu_seconds(me, others))
            for number in range(args.waves):
                wave = Wave(number + 1, sessions[number * args.sessions:(number + 1) * args.sessions])
                waves.append(wave)
                MARKS.clear()
                wave_start = time.perf_counter()
                results: list[dict] = []
                try:
                    results = asyncio.run(asyncio.wait_for(
                        run_classroom(url, photos, wave.sessions, args.timeout, min(args.train, args.sessions)),
                        args.max_seconds))
                except (asyncio.TimeoutError, TimeoutError):
                    for s in wave.sessions:
                        if s.slider_result_s is None:
                            s.errors.append(f"run cut at --max-seconds {args.max_seconds:.0f}")
                wave.cpu = wave_cpu()
                wave.peak_mb = [server.peak_since(wave_start) for server in servers]
                if results:
                    check(wave.sessions, results, photos, checkpoint)
                if args.waves > 1:  # every page of the wave is closed: wait until the server has let them go
                    print(f"wave {wave.number}: {sum(s.ok for s in wave.sessions)}/{len(wave.sessions)} correct; "
                          f"waiting {settle_s:.0f} s for its sessions to leave the server", file=sys.stderr, flush=True)
                    time.sleep(settle_s)
                    wave.after_mb = [server.recent_mb(5.0) for server in servers]
        finally:
            if proxy is not None:
                proxy.stop()
            for server in servers:
                logs.append(server.log_tail(200_000))
                peaks.append({**server.stop(), "address": f"127.0.0.1:{server.port}"})
        for log in logs:
            if "Traceback" in log:
                first = log[log.index("Traceback"):][:3000]
                print("server log, first traceback:\n" + first, file=sys.stderr)
                for s in sessions:
                    s.errors.append("server log has a traceback (printed above)")
                break
    sessions = [s for wave in waves for s in wave.sessions]  # the sessions that ran
    cpu = waves[0].cpu if waves else {}

    rows = summary_rows(sessions, peaks, args.memory_limit_mb, warm_s)
    if cpu and args.waves == 1:
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
    print(f"rpn_viz load test — {args.sessions} simultaneous Chromium sessions on 127.0.0.1"
          + (f", {args.waves} waves one after another" if args.waves > 1 else "")
          + (f", through nginx to {args.processes} app processes" if args.processes > 1 else "") + ", "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; total {elapsed:.0f} s"
          + (f"; server environment {' '.join(args.server_env)}" if args.server_env else ""))
    print("each session: upload its own photo on the Proposals step, download the JSON, move NMS IoU 0.70 → 0.65, "
          "download again (checked against rpn_viz.trace/refilter), switch to step 7; "
          f"then {min(args.train, args.sessions)} of them press Train together ({TRAIN_STEPS} steps)\n")
    width = max(len(r[0]) for r in rows)
    for what, value, met in rows:
        print(f"{what.ljust(width)}  {value}  {met}")
    growth_ok = True
    if args.waves > 1:
        print(f"\none row per wave ({args.sessions} sessions, {min(args.train, args.sessions)} trainings each; "
              f"'after' = resident memory {settle_s:.0f} s after the wave's pages closed)")
        print("| wave | correct | trainings | server CPU per session | peak during the wave | after the wave "
              "| after vs wave 1 (goal within 10 %) |")
        print("|---|---|---|---|---|---|---|")
        first = waves[0].after_mb
        for wave in waves:
            per = wave.cpu.get("server_cpu_s", float("nan")) / len(wave.sessions)
            change = [after / base - 1 for after, base in zip(wave.after_mb, first)] if first else []
            within = bool(change) and all(abs(c) <= 0.10 for c in change)
            growth_ok = growth_ok and within
            print(f"| {wave.number} | {sum(s.ok for s in wave.sessions)} / {len(wave.sessions)} "
                  f"| {sum(s.train_s is not None for s in wave.sessions)} | {per:.2f} s "
                  f"| {' + '.join(f'{m:.0f}' for m in wave.peak_mb)} MB | {' + '.join(f'{m:.0f}' for m in wave.after_mb)} MB "
                  f"| {', '.join(f'{c * 100:+.1f} %' for c in change)} {'yes' if within else 'NO'} |")
    failed = [s for s in sessions if not s.ok]
    for s in failed:
        print(f"session {s.index} ({s.photo}): " + "; ".join(s.errors), file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({
            "sessions": [asdict(s) for s in sessions], "server_memory": peaks, "warm_up_s": warm_s, "cpu": cpu,
            "waves": [{"number": w.number, "cpu": w.cpu, "peak_mb": w.peak_mb, "after_mb": w.after_mb} for w in waves],
            "memory_samples_mb": [server.samples[::4] for server in servers], "elapsed_s": elapsed,
            "cpu_count": os.cpu_count(),
        }, indent=1))
        print(f"\nwrote {args.json}")
    memory_ok = all(0 < (peak.get("vmhwm_mb") or 0) < args.memory_limit_mb for peak in peaks)
    shared_ok = len(peaks) == 1 or all(any(s.process == peak["address"] for s in sessions) for peak in peaks)
    return 0 if not failed and memory_ok and growth_ok and shared_ok else 1


if __name__ == "__main__":
    sys.exit(main())
