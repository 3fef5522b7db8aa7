"""Presenter mode (``?present=1``) and two models side by side (``?compare=<model key>``).

Presenter mode hides the sidebar, enlarges the text, puts the step counter, Back/Next and the step's
main picture (as large as the window allows, landscape or portrait) at the top, and binds the ← and →
keys to Back and Next. Offline, a small badge in that row is all it shows of the offline note. The
comparison shows the step's main picture for the sidebar's model and a second one, on the same photo
with the same post-processing settings, in two columns with shared colour scales, each labelled by
its weights. The pictures are :mod:`ui.main_pictures`; the page itself follows, for the first model.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import streamlit as st
from PIL import Image

from rpn_viz.io.errors import describe_error
from rpn_viz.lab.follow import History
from rpn_viz.training.fairqueue import FairQueue
from rpn_viz.model.models import DEFAULT_MODEL
from rpn_viz.io.paths import samples

from . import follow
from .context import StepContext
from .download import offline_badge
from .figures import picture_bytes, show_picture
from .main_pictures import SHARED_SCALES, choices, main_picture
from .resources import ModelChoice, deck_queue, get_model, get_trace
from .scene import Scene
from .step_pictures import STEP_KEYS, Choices
from .steps.lab_common import deck_inputs
from .store import session_store

PRESENT, COMPARE, SECOND = "present", "compare", "compare_model"

CSS = """
<style>
section[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], header[data-testid="stHeader"],
[data-testid="stSidebarCollapseButton"] { display: none !important; }
[data-testid="stMainBlockContainer"], .block-container { padding: 0.5rem 2rem 2rem 2rem !important; max-width: 100% !important; }
[data-testid="stMain"] .stElementContainer:has(style), [data-testid="stMain"] .stElementContainer:has(script) { display: none; }
html, body, [class*="css"] { font-size: 22px; }
.stMarkdown p, .stMarkdown li { font-size: 1.3rem !important; }
.st-key-present_nav h1 { font-size: 2rem !important; padding: 0 !important; }
.st-key-present_nav p { font-size: 1.4rem !important; font-weight: 700; white-space: nowrap; }
.st-key-follow_life *, .st-key-follow_life .stMarkdown p { font-size: 17px !important; }
.st-key-follow_life { gap: 0.4rem !important; padding: 0.5rem 1rem !important; }
.st-key-present_main { --present-reserve: 150px; }
[data-testid="stMain"]:has(.st-key-follow_life) .st-key-present_main { --present-reserve: 300px; }
.st-key-present_main img { width: min(100%, calc((100vh - var(--present-reserve)) * var(--present-ratio, 1))) !important;
  height: auto !important; max-width: 100% !important; margin: 0 auto; display: block; }
.st-key-present_main [data-testid="stFullScreenFrame"], .st-key-present_main [data-testid="stFullScreenFrame"] > div,
.st-key-present_main [data-testid="stImage"], .st-key-present_main [data-testid="stImageContainer"] { width: 100% !important;
  max-width: 100% !important; align-items: center; justify-content: center; }
</style>
"""

# ← / → press Back / Next while presenter mode is on (not while a slider, box or field has the keyboard).
KEYS = """
<script>
(() => {
  if (window.__rpnKeys) document.removeEventListener('keydown', window.__rpnKeys);
  window.__rpnKeys = (e) => {
    if (!document.querySelector('.st-key-present_nav') || e.altKey || e.ctrlKey || e.metaKey) return;
    const t = e.target;
    if (t && t.closest && t.closest('input, textarea, select, [role=slider], [contenteditable=true]')) return;
    const which = e.key === 'ArrowRight' ? 'next' : e.key === 'ArrowLeft' ? 'back' : null;
    const button = which && document.querySelector('.st-key-present_' + which + ' button');
    if (button && !button.disabled) { e.preventDefault(); button.click(); }
  };
  document.addEventListener('keydown', window.__rpnKeys);
})();
</script>
"""


@dataclass(frozen=True)
class View:
    """How the main area is laid out this run."""

    present: bool
    second: ModelChoice | None  # the model compared with the sidebar's, or None
    slides: Any = None  # the sidebar container where :func:`slides` puts its button (once the trace exists)


def _start(key: str, value: object) -> None:
    if key not in st.session_state:
        st.session_state[key] = value


def switches(choices: list[ModelChoice], model_key: str) -> View:
    """The sidebar's presenter and compare switches (read from the URL on a session's first run)."""
    _start(PRESENT, st.query_params.get(PRESENT) in ("1", "true"))
    url_second = st.query_params.get(COMPARE)
    _start(COMPARE, url_second is not None)
    untrained = ModelChoice(f"untrained:{DEFAULT_MODEL}", "Untrained MobileNetV3 FPN (random weights, seed 0)")
    others = [c for c in choices if c.key != model_key]  # the untrained network is always there to compare with
    others += [untrained] if untrained.key not in {c.key for c in choices} | {model_key} else []
    by_key = {c.key: c for c in others}
    if st.session_state.get(SECOND) not in by_key:
        # by default trained against untrained: the plainest lesson
        st.session_state[SECOND] = url_second if url_second in by_key else untrained.key if untrained.key in by_key \
            else (others[0].key if others else None)
    st.toggle("Presenter mode (← → keys)", key=PRESENT, help="Hides this sidebar, enlarges everything; also ?present=1")
    compare = st.toggle("Compare with a second model", key=COMPARE, disabled=not others)
    second = None
    if compare and others:
        second = by_key[st.selectbox("Second model", list(by_key), format_func=lambda k: by_key[k].label, key=SECOND)]
    if st.session_state[PRESENT]:
        st.query_params[PRESENT] = "1"
    else:
        st.query_params.pop(PRESENT, None)
    if second is not None:
        st.query_params[COMPARE] = second.key
    else:
        st.query_params.pop(COMPARE, None)
    return View(bool(st.session_state[PRESENT]), second, st.container())


def presenter_header(position: int, count: int, go: Callable[[int], None], title: str) -> None:
    """Styles, keys, then one row: Back, Next, the step's title, the step counter and a way out."""
    st.markdown(CSS, unsafe_allow_html=True)
    st.html(KEYS, unsafe_allow_javascript=True)
    with st.container(horizontal=True, key="present_nav", vertical_alignment="center", gap="medium"):
        st.button("← Back", key="present_back", on_click=go, args=(-1,), disabled=position == 0)
        st.button("Next →", key="present_next", on_click=go, args=(1,), disabled=position == count - 1)
        st.title(title, width="stretch")
        offline_badge()
        st.markdown(f"Step {position + 1} / {count}", width="content")
        st.button("Exit", key="present_exit", help="Leave presenter mode",
                  on_click=lambda: st.session_state.update({PRESENT: False}))


def presenter_picture(step_key: str, ctx: StepContext) -> bool:
    """The step's main picture, as large as fits the window (its width, and its height below the header
    row); False when the step has none."""
    main = main_picture(step_key, ctx, follow.history(ctx))
    if main is None:
        return False
    width, height = Image.open(io.BytesIO(picture_bytes(*main))).size  # reads the JPEG's header only
    # the CSS above sizes the picture by this ratio: as wide as the page, unless that would make it taller than
    # the window below the header row (a portrait photo): then as tall as that, centred
    st.markdown(f"<style>.st-key-present_main {{ --present-ratio: {width / height:.4f}; }}</style>", unsafe_allow_html=True)
    with st.container(key="present_main"):
        show_picture(main[0], main[1], ctx.slug(f"main-{step_key}"))
    return True


def second_context(ctx: StepContext, second: ModelChoice) -> StepContext | None:
    """The same photo and settings through the second model (an error line, and None, if it cannot run)."""
    try:
        loaded = get_model(second).loaded
        trace = get_trace(second, ctx.photo.sha256, ctx.photo.image)
        result = trace.result if ctx.settings == trace.default_settings else trace.refilter(ctx.settings)
    except Exception as exc:  # the comparison must never take the page down
        st.error(f"Could not run {second.label}: {describe_error(exc)}")
        return None
    return StepContext(loaded, second, ctx.photo, trace=trace, settings=ctx.settings, result=result)


def comparison(step_key: str, ctx: StepContext, second: ModelChoice) -> None:
    """The step's main picture for both models, side by side, same colour scales, labelled by weights."""
    other = second_context(ctx, second)
    if other is None:
        return
    found = follow.history(ctx)
    contexts = [(ctx, found), (other, None)]
    shared = SHARED_SCALES.get(step_key)
    scale = None
    if shared is not None:
        ranges = [shared(c, f, choices()) for c, f in contexts]
        scale = (min(r[0] for r in ranges), max(r[1] for r in ranges))
    columns = st.columns(2, gap="medium")
    for side, column, (c, f) in zip("ab", columns, contexts):
        with column, st.container(key=f"compare_{side}"):
            st.markdown(f"**{c.choice.label}**  \nweights: {c.loaded.weights.label}")
            main = main_picture(step_key, c, f, scale)
            if main is None:
                st.info("Nothing to draw for this model with these settings.")
            else:
                show_picture(main[0], main[1], c.slug(f"compare-{side}-{step_key}"))
            counts = c.result.counts()
            st.caption(" → ".join(f"{v:,}" for v in counts.values()) + " boxes (candidates → min size → score → NMS → "
                       "proposals)")
    if found is not None:
        st.caption(f"The followed anchor #{found.flat_index} belongs to the first model; anchor numbers of the "
                   "second model mean other anchors.")
    if scale is not None:
        st.caption(f"Both pictures share one colour scale: {scale[0]:.3g} … {scale[1]:.3g}.")


# --- the slide deck (issue 26) ----------------------------------------------------------------------

SLIDES = "_slides"  # this session's decks (made or being made), by what they show
SLIDES_LAB = "slides_lab"  # the checkbox: the deck has the lab pages too
DEFAULT_APP_URL = "http://localhost:8501/"


@dataclass
class DeckJob:
    """One deck being made in a thread of its own: its progress, then its bytes or a one-line error."""

    total: int
    done: int = 0
    what: str = "title page"
    data: bytes | None = None
    error: str | None = None
    finished: threading.Event = field(default_factory=threading.Event)  # set once data or error is there

    @property
    def running(self) -> bool:
        return self.data is None and self.error is None


def _source(ctx: StepContext):
    """The deck's photo credit and licence, model and link back to this app."""
    from .slides import Source

    entry = next((e for e in samples() if e["file"] == ctx.photo.name and e.get("credit") == ctx.photo.credit), None) \
        if ctx.photo.credit else None
    url = getattr(st.context, "url", None) or DEFAULT_APP_URL
    return Source(ctx.photo.name, entry["credit"] if entry else "your photo", entry.get("licence") if entry else None,
                  ctx.choice.key, url, entry["title"] if entry else None)


def _make(job: DeckJob, scene: Scene, source, found: History | None, picked: Choices, steps, lab,
          queue: FairQueue) -> None:
    """The thread's work: wait for a turn in the server's deck ``queue``, then the deck's bytes into ``job``
    (never raises: a failure is the job's one-line error)."""
    try:
        from .slides import make_deck

        def progress(done: int, total: int, what: str) -> None:
            job.done, job.total, job.what = done, total, what

        def waiting(place: int) -> None:
            job.what = f"queued, number {place} in line behind other sessions' decks"

        with queue.turn(on_wait=waiting):
            job.what = "title page"
            job.data = make_deck(scene, source, found, picked, progress, steps, lab)
    except Exception as exc:  # one line for this session; other sessions never see it
        job.error = describe_error(exc)
    finally:
        job.finished.set()


def _start_deck(ctx: StepContext, found: History | None, picked: Choices, key: tuple, lab) -> DeckJob:
    """Make the deck in a thread of its own, so this page stays usable; decks of all sessions take turns
    (:func:`ui.resources.deck_queue`): when a class asks at once, two are made at a time, first come first served."""
    job = DeckJob(total=1 + len(STEP_KEYS))
    session_store(SLIDES, 2).put(key, job)
    stored = session_store("_nms_steps", 2).find(ctx.key)  # the NMS page's replay, when this session has it
    scene = Scene(trace=ctx.trace, settings=ctx.settings, result=ctx.result)  # its own per-run cache
    threading.Thread(target=_make, args=(job, scene, _source(ctx), found, picked, (lambda: stored) if stored else None,
                                         lab, deck_queue()),
                     name="rpn-viz-slides", daemon=True).start()
    return job


@st.fragment(run_every=0.5)
def _progress(job: DeckJob) -> None:
    """Progress while the deck is made (this part alone reruns); the whole page once it is ready."""
    if not job.running:
        st.rerun()
    st.progress(job.done / job.total, text=f"Making the slides: {job.what} ({job.done}/{job.total} pages)")


def slides(view: View, ctx: StepContext) -> None:
    """"Download slides (PDF)": the walk-through of this photo, model and settings, made only on a click."""
    if view.slides is None:
        return
    found = follow.history(ctx)
    picked = choices()
    # the checkbox is drawn under the button; its value (from the last run) is part of what the deck shows
    lab, lab_key = deck_inputs(ctx) if st.session_state.get(SLIDES_LAB) else (None, None)
    key = (ctx.key, found and found.flat_index, picked, lab_key)
    with view.slides:
        job = session_store(SLIDES, 2).find(key)
        if job is None:
            if st.button("Download slides (PDF)", key="slides_make", help="A title page and one 16:9 page per "
                         "step 1–8, with its picture, numbers and settings (and the followed proposal)"):
                job = _start_deck(ctx, found, picked, key, lab)
        if job is not None:
            _offer(job, ctx, key)
        st.checkbox("Add the lab pages", key=SLIDES_LAB, help="One more page per lab page with a main picture "
                    "(L1, L2, L4; L3 and L7 with ground-truth boxes; L6 once computed there)")


def _offer(job: DeckJob, ctx: StepContext, key: tuple) -> None:
    """The deck's progress, its one-line error, or its download button."""
    if job.running:
        _progress(job)
    elif job.error is not None:
        st.error(f"Could not make the slides: {job.error}")
        st.button("Try again", key="slides_retry", on_click=lambda: session_store(SLIDES, 2).pop(key, None))
    else:
        st.download_button(f"Save the slides ({job.total} pages, {len(job.data) / 1e6:.1f} MB)", job.data,
                           file_name=f"{ctx.slug('slides')}.pdf", mime="application/pdf", key="slides_save",
                           on_click="ignore", type="primary")
