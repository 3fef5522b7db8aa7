"""What every step receives: the model, the photo's trace, and the post-processing chosen in the sidebar."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from rpn_viz.filtering import FilterResult, FilterSettings
from rpn_viz.models import LoadedModel
from rpn_viz.tracing import Trace

from .photo import Photo
from .resources import ModelChoice


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

    def memo(self, key: str, make: Callable[[], object]) -> object:
        """Compute something once per rerun (several parts of a page may need it)."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]
