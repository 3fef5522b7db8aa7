"""T1 · Watch an RPN learn — train a head on your own boxes, live, then step through it as "your RPN".

Layout and drawing only: the training, the labels, the losses and every number come from
``rpn_viz.learn`` (which calls torchvision's own matcher, sampler, box coder and loss).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch
from PIL import Image

from rpn_viz.images import describe_error
from rpn_viz.box_files import BoxFileError
from rpn_viz.dataset import BUNDLED, read_box_file, select
from rpn_viz.examples import TOP_K, Example, best_iou_top_k, examples_for
from rpn_viz.learn import DEFAULT_LR, DEFAULT_STEPS, LiveView, StepResult, TrainConfig, TrainingSession, generalisation
from rpn_viz.models import MODELS, LoadedModel
from rpn_viz.paper import MOBILENET_V2_IMAGENET, load_paper_model, shipped_facts, shipped_training
from rpn_viz.tracing import Trace, trace
from rpn_viz.weights import WeightsError, is_available

from .. import theme
from ..boxes import box_editor, get_boxes, parse_boxes
from ..context import StepContext
from ..figures import download_png
from ..pictures import Picture
from ..store import session_store
from ..photo import Photo, sample_photo, samples
from ..resources import SHIPPED_KEY, YOUR_RPN_KEY, SharedModel, get_model, model_choices, training_turn

PAPER = "paper"
PICTURE_WIDTH = 560  # screen pixels of a picture's drawing area (three pictures side by side)
LR_CHOICES = [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1]
RUN_KEY = "learn_run"


@dataclass
class Run:
    """This session's training run and what it was started on (kept in ``st.session_state``)."""

    session: TrainingSession
    photo_sha: str
    boxes: tuple[tuple[float, ...], ...]  # working-photo pixels, as the box editor keeps them
    start_key: str
    seed: int
    bundled: bool  # also trains on the bundled photos
    registered_steps: int = 0
    input_view: np.ndarray | None = None


@st.cache_resource(max_entries=4, show_spinner="Loading ImageNet MobileNetV2 once for this server…")
def _paper_model(seed: int) -> SharedModel:
    """The paper's RPN with a fresh head from ``seed`` (shared by all sessions, never modified)."""
    return SharedModel(load_paper_model(seed=seed, allow_download=False))


def _start_options() -> dict[str, str]:
    """Starting points: the paper's fresh head, or the head of a trained model this server has."""
    options = {PAPER: "The paper's RPN: a fresh head on ImageNet MobileNetV2 (works offline)",
               SHIPPED_KEY: f"The paper's RPN: fine-tune its {shipped_training(shipped_facts())} (works offline)"}
    for choice in model_choices():  # COCO models whose file is here (this page does not download), a custom one
        if choice.kind == "custom" or (choice.kind == "official" and is_available(MODELS[choice.name].official)):
            options[choice.key] = f"Fine-tune the head of {choice.label}"
    return options


@st.cache_resource(max_entries=4, show_spinner=False)
def _bundled_examples(start_key: str, _start: LoadedModel, _lock: threading.Lock) -> list[Example]:
    """The bundled training photos (and mirrors) as examples for ``start``'s backbone; shared, read-only.

    Features, labels and targets depend on the backbone and the matcher only, never on the head, so
    one list serves every session that starts from the same model.
    """
    photos = select(read_box_file(BUNDLED), "train")
    items = []
    progress = st.progress(0.0, text="Preparing the bundled photos (backbone once per photo and mirror)…")
    for i, entry in enumerate(photos):
        items.append((entry.name, entry.load(), entry.box_tensor()))
        progress.progress((i + 1) / (2 * len(photos)), text=f"Read {entry.name}")
    examples = []
    for i, item in enumerate(items):
        with _lock:
            examples += examples_for(_start, [item])
        progress.progress(0.5 + (i + 1) / (2 * len(items)), text=f"Backbone on {item[0]} and its mirror image")
    progress.empty()
    return examples


def _start_model(start_key: str, seed: int) -> SharedModel:
    if start_key == PAPER:
        return _paper_model(seed)
    choice = next(c for c in model_choices() if c.key == start_key)
    return get_model(choice)


def _to_original(photo: Photo, boxes: list[list[float]]) -> list[list[float]]:
    """Working-photo pixels (what the box editor keeps) to the original photo's pixels."""
    return [[v / photo.image.downscale for v in box] for box in boxes]


# --- figures --------------------------------------------------------------------------------


def _loss_chart(slot, session: TrainingSession) -> None:
    """The loss of every step so far, as a native chart (its menu saves it as PNG or SVG)."""
    slot.line_chart({"step": list(range(1, session.steps_done + 1)), **session.losses()}, x="step",
                    y=["total", "objectness", "box"], x_label="step", y_label="loss (256 anchors)",
                    color=[theme.OKABE_ITO["black"], theme.KEPT, theme.CURRENT])


def _own_step(session: TrainingSession) -> StepResult | None:
    """The last step that trained on this page's photo (with the bundled photos, most steps do not)."""
    return next((r for r in reversed(session.history) if r.example == 0), None)


def _heatmap_picture(session: TrainingSession, live: LiveView, view: np.ndarray) -> Image.Image:
    """Objectness (max over the k anchors, finest level) with the current top proposals and your boxes."""
    level = session.before.levels[0]
    (h, w), (sy, sx) = level.grid, level.stride
    picture = Picture(view, width=PICTURE_WIDTH)
    picture.heatmap(torch.sigmoid(live.objectness[0]).max(dim=0).values.numpy(), (w * sx, h * sy), alpha=0.55)
    picture.boxes(live.result.boxes[:TOP_K].tolist(), "white", 1.6, style="--", halo=theme.OKABE_ITO["black"],
                  label=f"top-{TOP_K} proposals")
    picture.boxes(session.boxes_input.tolist(), theme.GROUND_TRUTH, 3.5, halo=theme.OKABE_ITO["black"],
                  label="your boxes")
    where = f", level '{level.name}'" if len(session.before.levels) > 1 else ""
    return picture.render(f"Objectness{where} and top-{TOP_K} proposals, step {live.step}")


def _minibatch_picture(session: TrainingSession, view: np.ndarray) -> Image.Image:
    """The anchors the last step on this photo sampled, with a margin: anchors may cross the border."""
    step = _own_step(session)
    positives, negatives = session.minibatch_boxes(step) if step is not None else (torch.zeros(0, 4),) * 2
    ih, iw = view.shape[:2]
    pad = 0.25 * max(iw, ih)
    picture = Picture(view, view=(-pad, -pad, iw + pad, ih + pad), width=PICTURE_WIDTH)
    picture.boxes([[0, 0, iw, ih]], theme.OKABE_ITO["black"], 1.5, style=":", label="image border")
    picture.boxes(negatives.tolist(), theme.NEGATIVE, 0.8, alpha=0.55, label="negative anchors")
    picture.boxes(positives.tolist(), theme.POSITIVE, 1.6, alpha=0.85, label="positive anchors")
    picture.boxes(session.boxes_input.tolist(), theme.GROUND_TRUTH, 3.5, label="your boxes")
    which = f"step {step.step}" if step is not None else "no step yet"
    return picture.render(f"Mini-batch on this photo ({which}): {len(positives)} + / {len(negatives)} −")


def _proposals_picture(traced: Trace, title: str, boxes: list[list[float]]) -> Image.Image:
    """A photo with a trace's top proposals (and optional boxes), in the photo's pixels."""
    picture = Picture(traced.image, width=PICTURE_WIDTH)
    top = traced.to_working(traced.result.boxes[:TOP_K]).tolist()
    picture.boxes(top, theme.KEPT, 2.2, label=f"top-{TOP_K} proposals",
                  tags=[f"{p:.2f}" for p in traced.result.scores[:TOP_K].tolist()])
    picture.boxes(boxes, theme.GROUND_TRUTH, 3.5, style="--", label="your boxes")
    return picture.render(title)


def _show(image: Image.Image, name: str, caption: str | None = None) -> None:
    """A picture of this session's own training (not cached for the server) with its PNG download."""
    st.image(image, caption=caption, width="stretch")
    download_png(lambda: image, name)


# --- page parts -----------------------------------------------------------------------------


def _intro() -> None:
    st.markdown(
        """
Every number the other steps show comes from a head that was **trained**: a few small convolutions that
learned, from labelled boxes, which anchors hold an object and how to move them. Here you train one yourself,
on your own boxes, in seconds. The backbone runs **once**; its feature maps are kept and only the head learns.
Everything that decides *what* it learns is torchvision's own code: the anchor labels, the 256-anchor
mini-batch, the regression targets and the loss.
"""
    )


def _boxes_section(ctx: StepContext) -> list[list[float]]:
    boxes = get_boxes(ctx.photo)
    title = f"Ground-truth boxes ({len(boxes)} on this photo — shared with the anchor lab and recall)"
    with st.expander(title, expanded=not boxes):
        box_editor(ctx.photo, key="learn_gt")
    return get_boxes(ctx.photo)


def _register(run: Run) -> bool:
    """Offer the current head as "your RPN" in the model picker (a frozen snapshot); True if it is new."""
    if run.session.steps_done == 0 or run.registered_steps == run.session.steps_done:
        return False
    st.session_state[YOUR_RPN_KEY] = run.session.trained_model()
    run.registered_steps = run.session.steps_done
    return True


def _train(run: Run, steps: int, every: int) -> None:
    """Run ``steps`` steps, redrawing every ``every`` steps; Stop (a rerun) interrupts between steps."""
    session = run.session
    counter = st.empty()
    progress = st.progress(0.0)
    columns = st.columns(3)
    slots = [column.empty() for column in columns]
    target = session.steps_done + steps

    def redraw() -> None:
        live = session.live()
        _loss_chart(slots[0], session)
        slots[1].image(_heatmap_picture(session, live, run.input_view), width="stretch")
        slots[2].image(_minibatch_picture(session, run.input_view), width="stretch")
        last = session.history[-1]
        counter.markdown(f"**Step {session.steps_done} of {target}** · total loss **{last.total_loss:.3f}** "
                         f"(objectness {last.objectness_loss:.3f}, box {last.box_loss:.3f}) · "
                         f"best top-{TOP_K} IoU per box: {', '.join(f'{v:.2f}' for v in live.best_iou)}")

    with training_turn(counter):  # one training at a time on the server, first come first served
        for i in range(steps):
            session.step()  # pure torch: a Stop click takes effect at the next Streamlit call below
            progress.progress((i + 1) / steps, text=f"step {session.steps_done} / {target} "
                                                    f"({session.history[-1].ms:.0f} ms)")
            if (i + 1) % every == 0 or i == steps - 1:
                redraw()


def _explanations(session: TrainingSession) -> None:
    summary = session.label_summary()
    first, last = session.history[0], session.history[-1]
    level = session.before.levels[0]
    grids = " + ".join(f"{lv.grid[0]}×{lv.grid[1]}" for lv in session.before.levels)
    iw, ih = session.before.preprocess.input_size
    k = len(level.anchor_shapes)
    best = ", ".join(f"{v:.2f}" for v in summary.best_anchor_iou)
    ties = ""
    if summary.positive_best_match > len(summary.best_anchor_iou):
        ties = (" — several anchors can tie for a box's best IoU (a large anchor that contains the whole box has "
                "the same IoU wherever it sits), and all of them count")
    st.subheader("What happened, with this photo's numbers")
    st.markdown(
        f"""
**How anchors get labels.** The network input is {iw}×{ih}; the head sees {grids} cells with k = {k} anchors
each: **{summary.anchors:,} anchors**. For your {len(summary.best_anchor_iou)} box(es), torchvision's `Matcher`
made **{summary.positive} positive** — {summary.positive_by_iou} because their IoU with a box is
≥ {summary.fg_iou:g}, {summary.positive_best_match} only because they are a box's best match (best IoU per box:
{best}{ties}); **{summary.negative:,} negative** (IoU < {summary.bg_iou:g} with every box); and
**{summary.ignored:,} ignored** (in between): they never enter the loss.

**The mini-batch.** Each step draws 256 labelled anchors at random, at most half positive. With
{summary.positive} positives available, step 1 used **{first.positive.numel()} positives and
{first.negative.numel()} negatives**; step {last.step} used {last.positive.numel()} and {last.negative.numel()}
(blue and orange in the picture). Everything else is not looked at in that step.

**The losses.** Objectness: binary cross-entropy of the 256 anchors' logits against their labels
({first.objectness_loss:.3f} at step 1 → {last.objectness_loss:.3f} at step {last.step}). Box: smooth-L1
(β = 1/9) between the *positives'* predicted deltas and their targets, divided by 256
({first.box_loss:.3f} → {last.box_loss:.3f}). A negative anchor has no box to move towards, so it gets no
box loss — only positives learn to regress.
"""
    )
    story = session.explain_anchor(session.best_anchor(0))
    target = ", ".join(f"{v:+.3f}" for v in story.target)
    predicted = ", ".join(f"{v:+.3f}" for v in story.predicted)
    x1, y1, x2, y2 = story.box
    st.markdown(
        f"""
**Regression targets are encoded deltas.** Box 1's best anchor ({story.shape}, level '{story.level}',
cell {story.cell}, {x2 - x1:.0f}×{y2 - y1:.0f} px, IoU {story.iou:.2f}) would land exactly on your box if
the head output (dx, dy, dw, dh) = **({target})** — `BoxCoder.encode`: the centre shift in anchor widths and
heights, and the log of the size ratio. The head now outputs **({predicted})**.
"""
    )
    if story.scores is not None:
        background, obj = story.scores
        st.markdown(
            f"""
**Why 2k softmax scores are k sigmoid logits.** The paper's head gives this anchor two scores:
background b = {background:.3f}, object o = {obj:.3f}. Softmax: P(object) = eᵒ / (eᵒ + eᵇ) =
**{story.softmax:.4f}**. torchvision's RPN wants one logit per anchor, so this head hands it
o − b = {story.logit:.3f}, and sigmoid(o − b) = **{story.probability:.4f}** — the same number, because
eᵒ / (eᵒ + eᵇ) = 1 / (1 + e^−(o−b)). So torchvision's binary cross-entropy on that logit *is* the paper's
two-class log loss.
"""
        )
    else:
        st.markdown(
            f"""
**Why k sigmoid logits are the paper's 2k softmax scores.** torchvision's head outputs one logit per anchor;
here {story.logit:.3f}, so P(object) = sigmoid = **{story.probability:.4f}**. The paper's head outputs two
scores (background b, object o) and takes a softmax — and eᵒ / (eᵒ + eᵇ) = sigmoid(o − b): any pair with
o − b = {story.logit:.3f} gives the same probability, so k logits carry exactly the same information.
"""
        )


def _recall_table(session: TrainingSession, live: LiveView) -> None:
    st.subheader(f"Your boxes: best IoU among the top {TOP_K} proposals")
    rows = [{"box": f"GT {i + 1}", "before training": round(before, 3), f"after {session.steps_done} steps": round(after, 3)}
            for i, (before, after) in enumerate(zip(session.recall_before, live.best_iou))]
    st.dataframe(rows, hide_index=True)
    found = sum(v >= 0.7 for v in live.best_iou)
    st.caption(f"{found} of {len(rows)} box(es) now have a top-{TOP_K} proposal with IoU ≥ 0.7 "
               f"(before: {sum(v >= 0.7 for v in session.recall_before)}). Original-photo pixels.")


def _second_photo(ctx: StepContext, run: Run, start: LoadedModel, lock: threading.Lock) -> None:
    session = run.session
    st.subheader("Did it learn objects, or your photo?")
    entries = [e for e in samples() if e["file"] != ctx.photo.name] or samples()
    titles = [e["title"] for e in entries]
    title = st.selectbox("A photo it never saw", titles, key="learn_second")
    entry = entries[titles.index(title)] if title in titles else entries[0]
    other = sample_photo(entry)
    typed = st.text_area("Boxes on that photo (optional, x1, y1, x2, y2 per line, photo pixels) — to measure it",
                         value="\n".join(", ".join(f"{v:g}" for v in b) for b in get_boxes(other)),
                         key=f"learn_second_boxes_{other.sha256[:8]}")
    try:
        boxes = parse_boxes(typed, other.image.image.size) if typed.strip() else []
    except ValueError as exc:
        st.error(f"Could not read the boxes: {exc}")
        boxes = []
    store = session_store("learn_second_traces", size=4)  # this session's traces on the other photo
    with st.spinner("Running your RPN on that photo…"), lock:  # the backbone is the shared model's
        traced = store.get_or_make((id(session), other.sha256, session.steps_done), lambda: session.trace(other.image))
    before = None
    if boxes:  # "before" is only needed to compare on the boxes
        with st.spinner("Running the starting model on that photo…"), lock:
            before = store.get_or_make((id(start), other.sha256, "start"), lambda: trace(start, other.image))
    _show(_proposals_picture(traced, f"Your RPN on '{entry['title']}' (never seen)", boxes),
          ctx.slug(f"learn-second-{entry['file'].rsplit('.', 1)[0]}"))
    top_here = float(traced.result.scores[0]) if traced.result.scores.numel() else 0.0
    trained_top = float(session.live().top_scores[0]) if session.steps_done else 0.0
    if boxes:
        original = _to_original(other, boxes)
        was, now = best_iou_top_k(before, original), best_iou_top_k(traced, original)
        rows = [{"box": f"GT {i + 1}", "starting model": round(a, 3), "your RPN": round(b, 3)}
                for i, (a, b) in enumerate(zip(was, now))]
        st.dataframe(rows, hide_index=True)
        verdict = generalisation(was, now)
        photos = session.photo_count
        trained_on = "one photo" if photos == 1 else f"{photos} photos"
        if verdict.kind == "carries over":
            text = (f"Every box there has a top-{TOP_K} proposal with IoU ≥ {verdict.good_iou:g} — what the head "
                    f"learned from {trained_on} carries over to a photo it never saw"
                    + (", but one photo is far too little to rely on." if photos == 1 else "."))
        elif verdict.kind == "improved":
            text = (f"It improved on a photo it never saw (mean best IoU +{verdict.gain:.2f}), but not every box is "
                    f"found well: {trained_on} teach some of what objects look like, not all of it.")
        else:
            text = (f"It did not get better on a photo it never saw: with {trained_on} it memorised where *your* "
                    "boxes were, not what objects look like. The paper trained on thousands of images for tens "
                    "of thousands of steps.")
        st.markdown(f"**Honestly:** {text}")
    else:
        st.markdown(
            f"**Honestly:** its best proposal there scores {top_here:.2f} (on your photo: {trained_top:.2f}). "
            f"Trained on {session.photo_count} photo(s) for {session.steps_done} steps. A head trained on one photo "
            "learns where *your* box was, not what objects look like in general. Type boxes for this photo above "
            "to measure it instead of guessing."
        )


# --- the page -------------------------------------------------------------------------------


def render(ctx: StepContext) -> None:
    _intro()
    boxes = _boxes_section(ctx)
    if not boxes:
        st.info("Draw or type at least one box around an object above: the head learns from your boxes.")
        return

    options = _start_options()
    start_key = st.radio("Start from", list(options), format_func=options.get, key="learn_start",
                         help="This page trains its own copy of the starting model's head; the sidebar's model "
                              "is not used here and is never changed.")
    left, middle, right, far = st.columns(4)
    steps = left.slider("Steps", 10, 300, DEFAULT_STEPS, 10, key="learn_steps")
    lr = middle.select_slider("Learning rate (SGD, momentum 0.9)", LR_CHOICES, DEFAULT_LR["sgd"], key="learn_lr")
    every = right.slider("Redraw every … steps", 1, 25, 10, key="learn_every")
    seed = int(far.number_input("Seed (head and sampling)", 0, 9999, 0, key="learn_seed"))
    bundled = st.checkbox(
        "Also train on the bundled photos (one photo per step, each also mirrored, as in the paper)",
        key="learn_bundled",
        help="Your photo and boxes plus the project's openly licensed training photos with their hand-drawn "
             "boxes (assets/dataset). A head that sees many photos learns what objects look like, not where "
             "your box was.",
    )
    buttons = st.columns(3)
    train = buttons[0].button("Train", type="primary", key="learn_train", width="stretch")
    stop = buttons[1].button("Stop", key="learn_stop", width="stretch")
    reset = buttons[2].button("Start over", key="learn_reset", width="stretch")

    try:
        shared = _start_model(start_key, seed)
        start, lock = shared.loaded, shared.lock
    except WeightsError as exc:
        st.error(str(exc) if start_key != PAPER else f"{exc} (needs {MOBILENET_V2_IMAGENET.filename})")
        return
    run: Run | None = st.session_state.get(RUN_KEY)
    wanted = (ctx.photo.sha256, tuple(tuple(b) for b in boxes), start_key, seed, bundled)
    if reset or (run is not None and (run.photo_sha, run.boxes, run.start_key, run.seed, run.bundled) != wanted):
        run = None
        st.session_state.pop(RUN_KEY, None)
        st.session_state.pop("learn_stopped", None)

    if train:
        st.session_state.pop("learn_stopped", None)
        try:
            if run is None:
                extra = _bundled_examples(start_key, start, lock) if bundled else []
                with st.spinner("Running the backbone once and labelling the anchors…"), lock:
                    session = TrainingSession(start, ctx.photo.image, _to_original(ctx.photo, boxes),
                                              TrainConfig(lr=lr, seed=seed), extra=extra, name=ctx.photo.name)
                run = Run(session, *wanted)
                run.input_view = session.before.input_view()
                st.session_state[RUN_KEY] = run
            run.session.set_lr(lr)
            _train(run, steps, every)
        except BoxFileError as exc:
            st.error(f"The bundled photos cannot be used: {exc}")
            return
        except Exception as exc:  # one line, never a traceback
            st.error(f"Training failed: {describe_error(exc)}")
            return
        if _register(run):
            st.rerun()  # the sidebar's model picker now offers "your RPN"
    if run is None:
        st.info(f"Press **Train** to run {steps} steps. Each step: the head on the cached features, the loss "
                "on 256 sampled anchors, one SGD update.")
        return
    if stop:  # kept in the session so that the message survives the rerun that updates the model picker
        st.session_state["learn_stopped"] = True
    if st.session_state.get("learn_stopped"):
        st.info(f"Stopped at step {run.session.steps_done}. Press Train to continue from there.")
    if _register(run):
        st.rerun()

    session = run.session
    live = session.live()
    st.success(f"**{session.weights_info().label}.** It is now **your RPN** in the sidebar's Model picker: "
               "every step of the pipeline can show it.")
    columns = st.columns(3)
    _loss_chart(columns[0], session)
    with columns[1]:
        _show(_heatmap_picture(session, live, run.input_view), ctx.slug("learn-objectness"))
    with columns[2]:
        _show(_minibatch_picture(session, run.input_view), ctx.slug("learn-minibatch"))
    st.caption("Left: the loss of each step's mini-batch. Middle: objectness probability (max over the anchors of "
               "each cell) with the current top proposals. Right: the anchors the last step on this photo "
               "sampled — blue positive, orange negative; dotted: the image border (anchors may cross it). "
               "Network-input pixels. The chart's menu (⋯) saves it as PNG.")
    _recall_table(session, live)
    _explanations(session)
    _second_photo(ctx, run, start, lock)
