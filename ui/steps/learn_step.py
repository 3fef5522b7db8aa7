"""T1 · Watch an RPN learn — train a head on your own boxes, live, then step through it as "your RPN".

Layout only: the training, the labels, the losses and every number come from ``rpn_viz.training.session``
(which calls torchvision's own matcher, sampler, box coder and loss). The page's pictures are
:mod:`ui.steps.learn_pictures`; its explanations and the test on a photo it never saw,
:mod:`ui.steps.learn_explain`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np
import streamlit as st

from rpn_viz.io.box_files import BoxFileError
from rpn_viz.training.dataset import BUNDLED, read_box_file, select
from rpn_viz.io.errors import describe_error
from rpn_viz.training.examples import TOP_K, Example, examples_for
from rpn_viz.training.session import TrainingSession
from rpn_viz.model.models import MODELS, LoadedModel
from rpn_viz.model import paper  # paper.MOBILENET_V2_IMAGENET read when used
from rpn_viz.model.paper import load_paper_model, shipped_facts, shipped_training
from rpn_viz.training.config import DEFAULT_LR, DEFAULT_STEPS, TrainConfig
from rpn_viz.model.weights import WeightsError, is_available

from ..boxes import box_editor, get_boxes
from ..context import StepContext
from ..resources import SHIPPED_KEY, YOUR_RPN_KEY, SharedModel, get_model, model_choices, training_turn
from ..serving import release_free_memory
from ..store import MB, shared_store
from .learn_explain import explanations, recall_table, second_photo
from .learn_pictures import heatmap_picture, loss_chart, minibatch_picture, show_image

PAPER = "paper"
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


BUNDLED_SETS = 4  # starting models whose bundled examples the server keeps (~50 MB each for the paper's RPN)
BUNDLED_BYTES = 256 * MB


def _bundled_examples(start_key: str, start: LoadedModel, lock: threading.Lock) -> list[Example]:
    """The bundled training photos (and mirrors) as examples for ``start``'s backbone; shared, read-only.

    Features, labels and targets depend on the backbone and the matcher only, never on the head, so
    one list serves every session that starts from the same model (``BUNDLED_SETS`` and
    ``BUNDLED_BYTES`` at most).
    """
    return shared_store("bundled_examples", BUNDLED_SETS, BUNDLED_BYTES).get_or_make(
        start_key, lambda: _make_bundled_examples(start, lock))


def _make_bundled_examples(start: LoadedModel, lock: threading.Lock) -> list[Example]:
    photos = select(read_box_file(BUNDLED), "train")
    items = []
    progress = st.progress(0.0, text="Preparing the bundled photos (backbone once per photo and mirror)…")
    for i, entry in enumerate(photos):
        items.append((entry.name, entry.load(), entry.box_tensor()))
        progress.progress((i + 1) / (2 * len(photos)), text=f"Read {entry.name}")
    examples = []
    for i, item in enumerate(items):
        with lock:
            examples += examples_for(start, [item])
        progress.progress(0.5 + (i + 1) / (2 * len(items)), text=f"Backbone on {item[0]} and its mirror image")
    progress.empty()
    return examples


def _start_model(start_key: str, seed: int) -> SharedModel:
    if start_key == PAPER:
        return _paper_model(seed)
    choice = next(c for c in model_choices() if c.key == start_key)
    return get_model(choice)


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


def _train(get_run: Callable[[], Run], lr: float, steps: int, every: int) -> Run:
    """Wait for this session's turn, then run ``steps`` steps, redrawing every ``every`` steps; Stop (a
    rerun) interrupts between steps. Returns the run.

    ``get_run`` gives the session's run, made (backbone pass, labels, a copy of the head) only once
    the turn has come: a session waiting in line holds nothing yet. With 20 sessions pressing Train at
    once, runs made before the wait made the server's peak (bench/load_test.py)."""
    counter = st.empty()
    progress = st.progress(0.0)
    columns = st.columns(3)
    slots = [column.empty() for column in columns]

    def redraw() -> None:
        live = session.live()
        loss_chart(slots[0], session)
        slots[1].image(heatmap_picture(session, live, run.input_view), width="stretch", output_format="JPEG")
        slots[2].image(minibatch_picture(session, run.input_view), width="stretch", output_format="JPEG")
        last = session.history[-1]
        counter.markdown(f"**Step {session.steps_done} of {target}** · total loss **{last.total_loss:.3f}** "
                         f"(objectness {last.objectness_loss:.3f}, box {last.box_loss:.3f}) · "
                         f"best top-{TOP_K} IoU per box: {', '.join(f'{v:.2f}' for v in live.best_iou)}")

    try:
        with training_turn(counter):  # one training at a time on the server, first come first served
            run = get_run()
            run.session.set_lr(lr)
            session = run.session
            target = session.steps_done + steps
            for i in range(steps):
                session.step()  # pure torch: a Stop click takes effect at the next Streamlit call below
                progress.progress((i + 1) / steps, text=f"step {session.steps_done} / {target} "
                                                        f"({session.history[-1].ms:.0f} ms)")
                if (i + 1) % every == 0 or i == steps - 1:
                    redraw()
    finally:
        release_free_memory()  # the run's freed buffers go back to the system, not into a thread's arena
    return run


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
        st.error(str(exc) if start_key != PAPER else f"{exc} (needs {paper.MOBILENET_V2_IMAGENET.filename})")
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
            extra = _bundled_examples(start_key, start, lock) if bundled and run is None else []

            def get_run() -> Run:
                if run is not None:
                    return run
                with st.spinner("Running the backbone once and labelling the anchors…"), lock:
                    session = TrainingSession(start, ctx.photo.image, ctx.photo.to_original(boxes),
                                              TrainConfig(lr=lr, seed=seed), extra=extra, name=ctx.photo.name)
                made = Run(session, *wanted)
                made.input_view = session.before.input_view()
                st.session_state[RUN_KEY] = made
                return made

            run = _train(get_run, lr, steps, every)
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
    loss_chart(columns[0], session)
    with columns[1]:
        show_image(lambda: heatmap_picture(session, live, run.input_view), ctx.slug("learn-objectness"))
    with columns[2]:
        show_image(lambda: minibatch_picture(session, run.input_view), ctx.slug("learn-minibatch"))
    st.caption("Left: the loss of each step's mini-batch. Middle: objectness probability (max over the anchors of "
               "each cell) with the current top proposals. Right: the anchors the last step on this photo "
               "sampled — blue positive, orange negative; dotted: the image border (anchors may cross it). "
               "Network-input pixels. The chart's menu (⋯) saves it as PNG.")
    recall_table(session, live)
    explanations(session)
    second_photo(ctx, run.session, start_key if start_key != PAPER else f"{PAPER}:seed{seed}")
