"""What every step receives: the model, the photo's trace, and the post-processing chosen in the sidebar."""

from __future__ import annotations

import uuid
from dataclasses import astuple, dataclass

import streamlit as st

from rpn_viz.model.models import LoadedModel

from .photo import Photo
from .resources import ModelChoice
from .scene import Scene


def session_token() -> str:
    """A random name for this browser session (keys of things only this session may see)."""
    return st.session_state.setdefault("_session_token", uuid.uuid4().hex)


@dataclass
class StepContext(Scene):
    """Read-only inputs of a step's ``render`` function: the model, the photo, and (as a :class:`Scene`,
    keyword arguments) ``trace``, ``settings`` (the sidebar's post-processing) and ``result``
    (``trace.refilter(settings)``: what the sliders show). ``trace`` and ``result`` are None for a step
    whose ``Step.uses_trace`` is False (the app does not run the sidebar's model for it)."""

    loaded: LoadedModel
    choice: ModelChoice
    photo: Photo

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
