"""T1's pictures: the loss chart, objectness with the top proposals, the sampled mini-batch, and a trace's
proposals on another photo — drawn per session (a training is this session's own: nothing to share).
"""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch
from PIL import Image

from rpn_viz.training.examples import TOP_K, TopProposals
from rpn_viz.training.session import TrainingSession
from rpn_viz.training.config import LiveView, StepResult

from .. import theme
from ..figures import Drawing, download_png
from ..pictures import Picture

PICTURE_WIDTH = 560  # screen pixels of a picture's drawing area (three pictures side by side)


def loss_chart(slot, session: TrainingSession) -> None:
    """The loss of every step so far, as a native chart (its menu saves it as PNG or SVG)."""
    slot.line_chart({"step": list(range(1, session.steps_done + 1)), **session.losses()}, x="step",
                    y=["total", "objectness", "box"], x_label="step", y_label="loss (256 anchors)",
                    color=[theme.OKABE_ITO["black"], theme.KEPT, theme.CURRENT])


def _own_step(session: TrainingSession) -> StepResult | None:
    """The last step that trained on this page's photo (with the bundled photos, most steps do not)."""
    return next((r for r in reversed(session.history) if r.example == 0), None)


def heatmap_picture(session: TrainingSession, live: LiveView, view: np.ndarray) -> Image.Image:
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


def minibatch_picture(session: TrainingSession, view: np.ndarray) -> Image.Image:
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


def proposals_picture(photo: Image.Image, top: TopProposals, title: str, boxes: list[list[float]]) -> Image.Image:
    """The photo a trace was made of, with its top proposals (and optional boxes), in the photo's pixels."""
    picture = Picture(photo, width=PICTURE_WIDTH)
    picture.boxes(top.working.tolist(), theme.KEPT, 2.2, label=f"top-{len(top.scores)} proposals",
                  tags=[f"{p:.2f}" for p in top.scores.tolist()])
    picture.boxes(boxes, theme.GROUND_TRUTH, 3.5, style="--", label="your boxes")
    return picture.render(title)


def show_image(draw: Drawing, name: str, caption: str | None = None) -> None:
    """A picture of this session's own training (not cached for the server) with its PNG download.

    The download draws it again when clicked: a button that kept the drawn image would hold ~1 MB
    per picture for as long as Streamlit keeps the button's callback (the whole session)."""
    st.image(draw(), caption=caption, width="stretch", output_format="JPEG")
    download_png(draw, name)
