"""The app's steps, in the order a student meets them. Each module has ``render(ctx: StepContext)``.

To add a page: write ``ui/steps/<name>.py`` with a ``render`` function and add one ``Step`` line below.
A page's module is imported when its ``render`` is first asked for, so the titles and summaries can be
read without Streamlit (the slide deck and ``rpn-viz slides`` do).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from ..context import StepContext


@dataclass(frozen=True)
class Step:
    key: str  # value of ?step= in the URL
    title: str
    group: str  # "The pipeline", "Anchor lab & comparisons", "Learning"
    page: str  # the module in ui/steps/ whose render(ctx) draws the page
    summary: str  # one line under the title
    # the page draws the sidebar model's run on the photo (ctx.trace, ctx.result); False: the app does not run it
    # for this page (T1 trains its own model: a forward pass is ~150 MB at its peak, each time a class trains)
    uses_trace: bool = True

    @property
    def render(self) -> Callable[["StepContext"], None]:
        """The page's ``render(ctx)`` (imports its module the first time)."""
        return importlib.import_module(f"{__name__}.{self.page}").render


STEPS: list[Step] = [
    Step("input", "1 · Input", "The pipeline", "input_step", "How the photo is resized and normalised"),
    Step("features", "2 · Feature maps", "The pipeline", "features", "The backbone's grid of cells"),
    Step("anchors", "3 · Anchors", "The pipeline", "anchors", "k reference boxes at every cell"),
    Step("head", "4 · RPN head", "The pipeline", "head", "Objectness and box deltas for every anchor"),
    Step("regression", "5 · Regression", "The pipeline", "regression", "Anchors moved by their deltas"),
    Step("before_nms", "6 · Before NMS", "The pipeline", "before_nms", "Top-N boxes, clipped and thresholded"),
    Step("nms", "7 · NMS", "The pipeline", "nms_step", "Greedy non-maximum suppression, step by step"),
    Step("proposals", "8 · Proposals", "The pipeline", "proposals", "What the second stage receives"),
    Step("lab_anchors", "L1 · Anchor lab", "Anchor lab & comparisons", "lab_anchors",
         "Your own anchors: tiling, border, training labels and the 256-anchor mini-batch"),
    Step("lab_custom", "L2 · Custom anchors vs the trained head", "Anchor lab & comparisons", "lab_custom",
         "The head's deltas decoded against anchors it was not trained for"),
    Step("lab_recall", "L3 · Recall", "Anchor lab & comparisons", "lab_recall",
         "How many of your boxes the proposals find, by number and by IoU"),
    Step("lab_before", "L4 · Before the RPN", "Anchor lab & comparisons", "lab_before",
         "Sliding windows and Selective Search next to the RPN"),
    Step("lab_untrained", "L5 · Trained vs untrained", "Anchor lab & comparisons", "lab_untrained",
         "The same photo and architecture, with and without learning"),
    Step("lab_receptive", "L6 · Receptive field", "Anchor lab & comparisons", "lab_receptive",
         "Which input pixels one cell really looks at"),
    Step("lab_fit", "L7 · Fit anchors to your boxes", "Anchor lab & comparisons", "lab_fit",
         "Which boxes no anchor catches, best possible recall, and anchors fitted by k-means"),
    Step("learn", "T1 · Watch an RPN learn", "Learning", "learn_step",
         "Train a head on your own boxes, live; then view every step with \"your RPN\"", uses_trace=False),
]


def step_by_key(key: str | None) -> Step:
    """The step for a URL key (the first step for an unknown one)."""
    return next((step for step in STEPS if step.key == key), STEPS[0])
