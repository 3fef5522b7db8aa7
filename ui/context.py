"""What every step receives: the model, the photo's trace, and the post-processing chosen in the sidebar."""

from __future__ import annotations

import uuid
from dataclasses import astuple, dataclass, field

import streamlit as st

import numpy as np

from rpn_viz.filtering import FilterResult, FilterSettings
from rpn_viz.models import LoadedModel
from rpn_viz.tracing import Trace

from .photo import Photo
from .resources import ModelChoice


def session_token() -> str:
    """A random name for this browser session (keys of things only this session may see)."""
    return st.session_state.setdefault("_session_token", uuid.uuid4().hex)


@dataclass
class StepContext:
    """Read-only inputs of a step's ``render`` function."""

    loaded: LoadedModel
    choice: ModelChoice
    photo: Photo
    trace: Trace
    settings: FilterSettings  # the sidebar's post-processing settings
    result: FilterResult  # trace.refilter(settings): what the sliders show
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def input_view(self) -> np.ndarray:
        """The network input picture (H×W×3 uint8), computed once per rerun."""
        if "input_view" not in self._cache:
            self._cache["input_view"] = self.trace.input_view()
        return self._cache["input_view"]

    @property
    def input_size(self) -> tuple[int, int]:
        return self.trace.preprocess.input_size

    def slug(self, what: str) -> str:
        """A file name for downloads: photo, model and what the figure shows."""
        stem = self.photo.name.rsplit(".", 1)[0]
        return f"{stem}-{self.loaded.name}-{what}".replace(" ", "_")

    @property
    def trace_key(self) -> tuple:
        """What the network's outputs come from: the model (its weights) and the photo.

        Part of the cache key of every picture that shows the trace (``ui.figures.show_picture``). A
        session's own model is named by this session and the model object, so two sessions' "your RPN"
        never share pictures.
        """
        if "trace_key" not in self._cache:
            model = (self.choice.key, self.loaded.weights.label)
            if self.choice.kind == "session":
                model += (session_token(), id(self.loaded))
            self._cache["trace_key"] = (*model, self.photo.sha256)
        return self._cache["trace_key"]

    @property
    def key(self) -> tuple:
        """:attr:`trace_key` and the sidebar's settings: the key of pictures that show ``ctx.result``."""
        return (*self.trace_key, astuple(self.settings))
