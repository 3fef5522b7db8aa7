"""What a step's picture is drawn from: a photo's trace and one choice of post-processing (no Streamlit).

:class:`Scene` is the part of the app's :class:`ui.context.StepContext` that pictures need, so the
same drawing functions (:mod:`ui.step_pictures`) serve the app, the slide deck and the command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rpn_viz.pipeline.filtering import FilterResult, FilterSettings
from rpn_viz.pipeline.tracing import Trace


@dataclass(kw_only=True)
class Scene:
    """A trace, the post-processing settings and their result (``trace.refilter(settings)``)."""

    trace: Trace
    settings: FilterSettings
    result: FilterResult
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, trace: Trace, settings: FilterSettings | None = None) -> "Scene":
        """The scene of ``trace`` under ``settings`` (the model's own when None), re-filtering only when they differ."""
        settings = settings or trace.default_settings
        result = trace.result if settings == trace.default_settings else trace.refilter(settings)
        return cls(trace=trace, settings=settings, result=result)

    @property
    def input_view(self) -> np.ndarray:
        """The network input picture (H×W×3 uint8), computed once."""
        if "input_view" not in self._cache:
            self._cache["input_view"] = self.trace.input_view()
        return self._cache["input_view"]

    @property
    def input_size(self) -> tuple[int, int]:
        return self.trace.preprocess.input_size
