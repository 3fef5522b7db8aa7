"""Models and traces, shared across every session of the server (one model in memory per choice).

Models are loaded once per server process (``st.cache_resource``) and never modified; each has a
lock so that one forward pass runs at a time on it (two cores gain nothing from parallel passes, and
this keeps memory bounded when a whole class uploads at once). A photo's trace is cached by the
photo's sha256 and the model, so moving a slider only re-filters.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

import streamlit as st

import rpn_viz
from rpn_viz.training.fairqueue import FairQueue
from rpn_viz.model.models import DEFAULT_MODEL, MODELS, PAPER_RPN, LoadedModel, ModelSpec
from rpn_viz.model import paper  # paper.MOBILENET_V2_IMAGENET read when used, as rpn_viz.commands.fetch does
from rpn_viz.model.paper import shipped_facts, shipped_label
from rpn_viz.pipeline.tracing import Trace
from rpn_viz.model.weights import is_available

from .serving import release_free_memory
from .store import MB, shared_store

# A teacher's own fine-tuned torchvision Faster R-CNN (state dict), offered as "custom"; the
# architecture is RPN_VIZ_CHECKPOINT_MODEL (default: the default model).
CHECKPOINT_ENV = "RPN_VIZ_CHECKPOINT"
CHECKPOINT_MODEL_ENV = "RPN_VIZ_CHECKPOINT_MODEL"

# st.session_state key under which a page may store a model trained in this session (LoadedModel);
# the model picker then offers it as "your RPN" for every step.
YOUR_RPN_KEY = "your_rpn"

# Set (True) by the "no trained model" screen's button: only then does the picker offer the untrained network.
UNTRAINED_OK_KEY = "allow_untrained"


@dataclass(frozen=True)
class ModelChoice:
    """One entry of the model picker."""

    key: str  # "official:<name>", "shipped:paper_rpn", "custom:<name>", "untrained:<name>" or "session"
    label: str

    @property
    def kind(self) -> str:
        return self.key.split(":", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split(":", 1)[1] if ":" in self.key else ""


def official_label(spec: ModelSpec) -> str:
    """A COCO model's picker label; it says when choosing it will download its file."""
    return spec.title if is_available(spec.official) else f"{spec.title} — downloads on first use"


def model_choices() -> list[ModelChoice]:
    """torchvision's COCO models (downloaded when chosen; the first is the default), the paper's RPN
    trained here (the offline model), a custom checkpoint, the untrained network once the
    no-trained-model screen was asked for it, and 'your RPN'."""
    choices = [ModelChoice(f"official:{spec.name}", official_label(spec)) for spec in MODELS.values()]
    choices.append(ModelChoice(SHIPPED_KEY, shipped_title()))
    if os.environ.get(CHECKPOINT_ENV):
        name = os.environ.get(CHECKPOINT_MODEL_ENV) or DEFAULT_MODEL
        choices.insert(0, ModelChoice(f"custom:{name}", f"Custom checkpoint {os.path.basename(os.environ[CHECKPOINT_ENV])}"))
    if st.session_state.get(UNTRAINED_OK_KEY):
        choices.append(
            ModelChoice(f"untrained:{DEFAULT_MODEL}", "Untrained MobileNetV3 FPN (random weights, seed 0) — for comparison")
        )
    session_model: LoadedModel | None = st.session_state.get(YOUR_RPN_KEY)
    if session_model is not None:
        label = session_model.weights.label
        choices.insert(0, ModelChoice("session", label[:1].upper() + label[1:]))
    return choices


#: The picker entry of the paper's RPN with the head trained here on the bundled photos (works offline).
SHIPPED_KEY = f"shipped:{PAPER_RPN}"


def shipped_title() -> str:
    """Picker label of the shipped model, with what it was trained on."""
    label = shipped_label(shipped_facts())
    backbone = "works offline" if is_available(paper.MOBILENET_V2_IMAGENET) else "downloads its 14 MB backbone on first use"
    return f"{label[:1].upper()}{label[1:]} — {backbone}"


# One network pass at a time on the whole server, whichever model runs it: each pass's activations
# (100-250 MB for a COCO model on a 2048-pixel photo) are the server's biggest transient memory, and
# two at once (the sidebar's model for one session, the learning page's for another) made the peaks
# of bench/load_test.py. Re-entrant: a page that holds it may run a model that takes it again.
NETWORK_LOCK = threading.RLock()


@dataclass(frozen=True, eq=False)
class SharedModel:
    """A loaded model with the lock that lets one forward pass run at a time (:data:`NETWORK_LOCK`).

    Models are shared by every session of the server and never modified; two cores gain nothing
    from parallel passes, and one pass at a time keeps memory bounded when a class uploads at once.
    Everything that runs the network goes through :meth:`trace` or holds :attr:`lock`.
    """

    loaded: LoadedModel
    lock: threading.RLock = field(default_factory=lambda: NETWORK_LOCK)

    def trace(self, image: rpn_viz.LoadedImage) -> Trace:
        """``rpn_viz.trace`` of this model on ``image``, under the lock."""
        with self.lock:
            return rpn_viz.trace(self.loaded, image)


@st.cache_resource(show_spinner="Loading the model once for this server (a few seconds)…")
def shared_model(key: str) -> SharedModel:
    """Load an official (file already here: ``ui.download`` fetches it first), shipped, custom or untrained
    model (cached for all sessions)."""
    kind, name = key.split(":", 1)
    if kind == "shipped":
        return SharedModel(rpn_viz.load_model(PAPER_RPN, allow_download=False))
    checkpoint = os.environ.get(CHECKPOINT_ENV) if kind == "custom" else None
    return SharedModel(rpn_viz.load_model(name, untrained=(kind == "untrained"), checkpoint=checkpoint,
                                          allow_download=False))


def get_model(choice: ModelChoice) -> SharedModel:
    """The model for a picker entry; the session's own model ("your RPN") gets a lock of this session."""
    if choice.kind == "session":
        loaded: LoadedModel = st.session_state[YOUR_RPN_KEY]
        own = st.session_state.get("_session_model")
        if own is None or own.loaded is not loaded:
            own = st.session_state["_session_model"] = SharedModel(loaded)
        return own
    return shared_model(choice.key)


TRACES = 12  # shared traces kept by the server: ~5-8 MB each for a sample-sized photo, more for a big one
TRACE_BYTES = 96 * MB


def _shared_trace(model_key: str, photo_sha: str, model: SharedModel, image: rpn_viz.LoadedImage) -> Trace:
    """A photo's trace for every session (at most ``TRACES`` of them and ``TRACE_BYTES``)."""

    def run() -> Trace:
        with st.spinner("Running the network on the photo…"):
            traced = model.trace(image)
        release_free_memory()  # the forward pass's freed activations go back to the system
        return traced

    return shared_store("traces", TRACES, TRACE_BYTES).get_or_make((model_key, photo_sha), run)


def get_trace(choice: ModelChoice, photo_sha: str, image: rpn_viz.LoadedImage) -> Trace:
    """The photo's trace for the chosen model: shared cache for shared models, per session otherwise."""
    model = get_model(choice)
    if choice.kind != "session":
        return _shared_trace(choice.key, photo_sha, model, image)
    from .store import session_store

    def run() -> Trace:
        with st.spinner("Running your RPN on the photo…"):
            return model.trace(image)

    # one photo at a time for a session's own model keeps memory small
    loaded = model.loaded
    return session_store("_session_traces", 1).get_or_make((id(loaded), loaded.weights.label, photo_sha), run)


def model_title(loaded: LoadedModel) -> str:
    """Human title of a loaded model."""
    spec = MODELS.get(loaded.name)
    return spec.title if spec is not None and loaded.weights.kind == "official" else loaded.weights.label


# Trainings from every session of this server take turns (rpn_viz.training.fairqueue): on 2 cores, 20 at once
# would each run 20× slower, hold 20 sets of gradients, and finish in whatever order the OS favours.
TRAINING_SLOTS = int(os.environ.get("RPN_VIZ_TRAINING_SLOTS", "1"))


@st.cache_resource
def training_queue() -> FairQueue:
    """The server's one training queue (shared by every session)."""
    return FairQueue(slots=TRAINING_SLOTS)


# Slide decks from every session take turns too: each renders a dozen figures (CPU and ~100 MB in
# flight); a class pressing "Download slides" together would otherwise start one thread each.
DECK_SLOTS = int(os.environ.get("RPN_VIZ_DECK_SLOTS", "2"))


@st.cache_resource
def deck_queue() -> FairQueue:
    """The server's one slide-deck queue (shared by every session)."""
    return FairQueue(slots=DECK_SLOTS)


def training_turn(slot: "st.delta_generator.DeltaGenerator"):
    """Wait for this session's turn to train, telling it its place in ``slot``; hold the turn in the block."""
    queue = training_queue()

    def tell(place: int) -> None:
        slot.info(f"**Queued: number {place} in line** for the server's training slot ({queue.running} training "
                  "now). Yours starts by itself; Stop leaves the queue.")

    return queue.turn(on_wait=tell)
