"""The app run headless for one step with Streamlit's ``AppTest``: the runner of the tests (and of
the benchmark's per-step table), so every check starts the app the same way.

``AppTest`` does not initialise bound widgets from ``at.query_params``: the step (and any widget
value) goes into ``session_state`` before the first run. Ground-truth boxes go into
``session_state["gt_boxes"]`` the way :mod:`ui.boxes` keeps them (per photo sha256, photo pixels).
"""

from __future__ import annotations

import hashlib
import json
from typing import Sequence

from streamlit.testing.v1 import AppTest

from rpn_viz.io.paths import app_root

__all__ = ["app_test", "check", "downloadable_pictures", "pictures", "run_step", "sample_sha", "text_of"]


def sample_sha(title: str | None = None) -> str:
    """sha256 of a bundled sample photo's bytes (by its title; default: the first sample)."""
    samples = json.loads((app_root() / "assets" / "samples.json").read_text())
    entry = samples[0] if title is None else next(e for e in samples if e["title"] == title)
    return hashlib.sha256((app_root() / "assets" / entry["file"]).read_bytes()).hexdigest()


def app_test(step: str, *, sample: str | None = None, gt: Sequence[Sequence[float]] | None = None,
             untrained: bool = False, timeout: float = 300, **state: object) -> AppTest:
    """The app, not yet run, set to ``step``; ``sample`` picks a bundled photo by title, ``gt`` gives
    it ground-truth boxes; ``untrained`` opens it on the untrained network as the "no trained model"
    screen's button does (only then does the picker offer it: no weights file needed); ``state``
    sets widget values by key."""
    from ui.resources import UNTRAINED_OK_KEY  # the app's own module, imported as the app imports it
    from rpn_viz.model.models import DEFAULT_MODEL

    at = AppTest.from_file(str(app_root() / "app.py"), default_timeout=timeout)
    at.session_state["step"] = step
    if untrained:
        at.session_state[UNTRAINED_OK_KEY] = True
        at.session_state["model"] = f"untrained:{DEFAULT_MODEL}"
    if sample is not None:
        at.session_state["sample"] = sample
    if gt is not None:
        at.session_state["gt_boxes"] = {sample_sha(sample): [list(map(float, box)) for box in gt]}
    for key, value in state.items():
        at.session_state[key] = value
    return at


def check(at: AppTest) -> AppTest:
    """Assert the last run showed no exception and no error message; returns ``at``."""
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def run_step(step: str, **kwargs: object) -> AppTest:
    """:func:`app_test`, run once and :func:`check`-ed."""
    at = app_test(step, **kwargs)  # type: ignore[arg-type]
    at.run()
    return check(at)


def text_of(at: AppTest) -> str:
    """All markdown and captions of the page, for looking up the numbers it states."""
    return "\n".join(m.value for m in at.markdown) + "\n".join(c.value for c in at.caption)


def pictures(at: AppTest) -> int:
    """Pictures on the page: images, plus clickable pictures (the image-coordinates component)."""
    return sum(1 for element in at.main
               if type(element).__name__ == "Image" or getattr(element, "type", "") == "component_instance")


def downloadable_pictures(at: AppTest) -> int:
    """Images shown, each of which must come with its own download button (``ui.figures``)."""
    figures = len(at.get("image"))
    assert len(at.get("download_button")) >= figures
    return figures


def charts(at: AppTest) -> list[tuple[dict, list[dict]]]:
    """Native charts on the page (``ui.charts``): each one's Vega-Lite spec and its data rows."""
    import json

    import pyarrow as pa

    found = []
    for element in at.get("vega_lite_chart"):
        spec = json.loads(element.proto.spec)
        data = element.proto.data.data
        if data:  # Streamlit sends a single view's inline rows as Arrow; layers keep theirs in the spec
            rows = pa.ipc.open_stream(data).read_all().to_pylist()
        else:
            rows = [row for part in [spec, *spec.get("layer", [])] for row in part.get("data", {}).get("values", [])]
        found.append((spec, rows))
    return found
