"""T1's explanations: what happened, with this photo's numbers; the recall table; and whether the head
learned objects or your photo (a photo it never saw, with the verdict of :func:`rpn_viz.training.config.generalisation`
in words). Layout and text only: every number comes from the :class:`~rpn_viz.training.session.TrainingSession`.
"""

from __future__ import annotations

import streamlit as st

from rpn_viz.training.examples import TOP_K, TopProposals, top_proposals
from rpn_viz.io.images import LoadedImage
from rpn_viz.pipeline.tracing import Trace
from rpn_viz.training.session import TrainingSession
from rpn_viz.training.config import LiveView, generalisation

from ..boxes import get_boxes, parse_boxes
from ..context import StepContext
from ..photo import sample_photo, samples
from ..resources import SharedModel
from ..store import MB, session_store, shared_store
from .learn_pictures import proposals_picture, show_image


def explanations(session: TrainingSession) -> None:
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


def recall_table(session: TrainingSession, live: LiveView) -> None:
    st.subheader(f"Your boxes: best IoU among the top {TOP_K} proposals")
    rows = [{"box": f"GT {i + 1}", "before training": round(before, 3), f"after {session.steps_done} steps": round(after, 3)}
            for i, (before, after) in enumerate(zip(session.recall_before, live.best_iou))]
    st.dataframe(rows, hide_index=True)
    found = sum(v >= 0.7 for v in live.best_iou)
    st.caption(f"{found} of {len(rows)} box(es) now have a top-{TOP_K} proposal with IoU ≥ 0.7 "
               f"(before: {sum(v >= 0.7 for v in session.recall_before)}). Original-photo pixels.")


START_TRACES = 4  # the starting models' traces of sample photos the server keeps (~5 MB each for the paper's RPN)
START_TRACE_BYTES = 48 * MB


def _start_trace(start_key: str, session: TrainingSession, photo_sha: str, image: LoadedImage) -> Trace:
    """The session's starting model's trace of a sample photo: the same for every session that starts there.

    Its features serve every session's own head too (:meth:`TrainingSession.top_on`): the backbone is
    the start's, so a trained session's proposals there need no backbone pass of their own. Keyed by the
    model object as well: a starting model the server loaded again is another start.
    """
    def run() -> Trace:
        with st.spinner("Running the starting model on that photo…"):
            return SharedModel(session.start).trace(image)  # one network pass at a time on the server

    return shared_store("learn_start_traces", START_TRACES, START_TRACE_BYTES).get_or_make(
        (start_key, id(session.start), photo_sha), run)


def second_photo(ctx: StepContext, session: TrainingSession, start_key: str) -> None:
    """Did it learn objects, or your photo? Your RPN on a sample photo it never saw, measured on typed boxes.

    ``start_key`` names the starting model for the server's cache. The session keeps only your RPN's top
    proposals there; the server keeps the starting model's trace of the photo (shared, bounded).
    """
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
    store = session_store("learn_second_top", size=4)  # your RPN's top proposals on the other photo

    def run_yours() -> TopProposals:  # the head on the starting model's features: no backbone pass
        return session.top_on(_start_trace(start_key, session, other.sha256, other.image))

    yours = store.get_or_make((id(session), other.sha256, session.steps_done), run_yours)
    show_image(lambda: proposals_picture(other.image.image, yours, f"Your RPN on '{entry['title']}' (never seen)", boxes),
               ctx.slug(f"learn-second-{entry['file'].rsplit('.', 1)[0]}"))
    top_here = float(yours.scores[0]) if yours.scores.numel() else 0.0
    trained_top = float(session.live().top_scores[0]) if session.steps_done else 0.0
    if boxes:  # the starting model is only needed to compare on the boxes
        original = other.to_original(boxes)
        was = top_proposals(_start_trace(start_key, session, other.sha256, other.image)).best_iou(original)
        now = yours.best_iou(original)
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
                    f"found well: {trained_on} {'teaches' if photos == 1 else 'teach'} some of what objects look like, "
                    "not all of it.")
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
