"""Step 8 — the proposals, and the crops the second stage receives."""

from __future__ import annotations

import io
import json

import streamlit as st
import torch

from rpn_viz.lab.detect import has_second_stage, one_proposal, second_stage
from rpn_viz.lab.follow import History
from rpn_viz.pipeline.export import proposals_csv, trace_json

from .. import follow, theme
from ..context import StepContext
from ..figures import show_picture
from ..pictures import Picture
from ..step_pictures import proposals_picture
from ..store import session_store
from ..widgets import untrained_note

GALLERY = 24


def render(ctx: StepContext) -> None:
    result, s, trace = ctx.result, ctx.settings, ctx.trace
    n = int(result.final_pos.numel())
    st.markdown(
        f"""
After NMS the RPN keeps the first **{s.post_nms_top_n}** boxes by objectness (*post-NMS top-N*): these
**{n} proposals** are all the second stage of Faster R-CNN ever looks at. It crops each one out of the
feature maps (RoIAlign) and decides *which* object it is, if any, and refines the box once more.
These proposals are exactly what torchvision's `model.rpn` returns for these settings.
"""
    )
    untrained_note(trace)
    if n == 0:
        st.warning("No proposals with these settings. Lower the score threshold in the sidebar.")
        return
    shown = n if n <= 5 else st.slider("Proposals drawn (best first)", 5, min(n, 300), min(n, 20), key="prop_drawn")
    found = follow.history(ctx)
    st.markdown(f"**Top {shown} of {n} proposals.** Click a box (the smallest under the click wins) or a row "
                "of the table to follow it through every step.")
    picture_key = (ctx.key, "proposals", shown, found and found.flat_index)
    follow.picker(picture_key, lambda: proposals_picture(ctx, shown, found).render(axes=False),
                  lambda: Picture(trace.image), trace.to_working(result.boxes[:shown]),
                  result.anchor_index[result.final_pos[:shown]].tolist(), "prop_click", ctx.slug(f"proposals-top{shown}"))
    follow.table([follow.row(ctx, int(p), i) for i, p in enumerate(result.final_pos[:shown].tolist())],
                 result.anchor_index[result.final_pos[:shown]].tolist(), "prop_table")
    if found is not None:
        followed_section(ctx, found)

    st.subheader("What the second stage receives: the crops")
    columns = st.columns(6)
    for i, crop in enumerate(_crops(ctx.key, trace, result)):
        columns[i % 6].image(crop, caption=f"#{i} · {float(result.scores[i]):.3f}")
    json_text, csv_text = _files(ctx.key, trace, result)  # made here, not when clicked: a click that
    # lands while the page reruns would ask Streamlit for a file of the previous run, which it has dropped
    cols = st.columns(2)  # a download changes nothing on the page: no rerun
    cols[0].download_button("Proposals as JSON", json_text, file_name=f"{ctx.slug('proposals')}.json",
                            mime="application/json", key="dl-json", on_click="ignore")
    cols[1].download_button("Proposals as CSV", csv_text, file_name=f"{ctx.slug('proposals')}.csv",
                            mime="text/csv", key="dl-csv", on_click="ignore")
    st.caption("Boxes in the files are in your photo's pixels (x1, y1, x2, y2), ranked, with objectness probability.")
    second_stage_section(ctx)


@st.cache_data(max_entries=64, max_size="24MB", show_spinner=False)
def _files(key: tuple, _trace, _result) -> tuple[str, str]:
    """The proposals as JSON and CSV text (made once per photo, model and settings)."""
    return json.dumps(trace_json(_trace, _result), indent=1), proposals_csv(_trace, _result)


@st.cache_data(max_entries=64, max_size="16MB", show_spinner=False)
def _crops(key: tuple, _trace, _result) -> list[bytes]:
    """The best proposals cut out of the photo, as JPEG thumbnails (cached by what they show)."""
    count = min(GALLERY, int(_result.final_pos.numel()))
    thumbnails = []
    for x1, y1, x2, y2 in _trace.to_working(_result.boxes[:count]).round().int().tolist():
        crop = _trace.image.crop((x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)))
        crop.thumbnail((220, 220))
        buffer = io.BytesIO()
        crop.convert("RGB").save(buffer, format="JPEG", quality=90)
        thumbnails.append(buffer.getvalue())
    return thumbnails


def followed_section(ctx: StepContext, found: History) -> None:
    """The followed anchor's final rank, its crop, and what the second stage makes of it."""
    st.subheader(f"The followed box: anchor #{found.flat_index}")
    if found.final_rank is None:
        st.info(f"Not a proposal: {follow.verdict(found, ctx)}")
        return
    left, right = st.columns([1, 3])
    x1, y1, x2, y2 = (round(v) for v in follow.working_box(ctx, found.clipped_box))
    crop = ctx.trace.image.crop((x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)))
    crop.thumbnail((260, 260))
    left.image(crop, caption=f"#{found.final_rank} · {found.prob:.3f}")
    right.markdown(f"Proposal **#{found.final_rank}** of {ctx.result.final_pos.numel()}, objectness "
                   f"**{found.prob:.3f}**, box ({x1}, {y1}, {x2}, {y2}) in photo pixels.")
    if has_second_stage(ctx.trace) and ctx.trace.model.is_trained:
        view = one_proposal(ctx.trace, torch.tensor(found.clipped_box))
        right.markdown(f"**Second stage** on this crop alone: *{view.name}* with probability **{view.score:.3f}** "
                       f"(background {view.background:.3f}); refined box "
                       f"({', '.join(f'{v:.0f}' for v in follow.working_box(ctx, view.box))}) in photo pixels.")


def second_stage_section(ctx: StepContext) -> None:
    """Optionally, what the detector makes of these proposals."""
    trace = ctx.trace
    st.subheader("And then: the second stage (optional)")
    if not has_second_stage(trace):
        st.info("This model is a Region Proposal Network on its own: there is no second stage to run.")
        return
    if not trace.model.is_trained:
        st.info("The second stage of an untrained network would only produce noise; choose a trained model.")
        return
    store = session_store("_detections", 2)
    if ctx.key not in store and st.button("Run the second stage on these proposals", key="prop_detect"):
        with st.spinner("Classifying every proposal…"):
            store.put(ctx.key, second_stage(trace, ctx.result))
    found = store.find(ctx.key)
    if found is None:
        st.caption("RoIAlign crops each proposal from the feature maps; the box head names it and refines its box.")
        return
    threshold = st.slider("Show detections with score at least", 0.05, 1.0, 0.5, 0.05, key="prop_det_thresh")

    def draw_detections():
        keep = found.scores >= threshold
        names = [f"{n} {s:.2f}" for n, s, k in zip(found.names, found.scores.tolist(), keep.tolist()) if k]
        return (Picture(trace.image)
                .boxes(trace.to_working(found.boxes[keep]).tolist(), [theme.CYCLE[i % 7] for i in range(int(keep.sum()))],
                       3, tags=names)
                .render(f"{int(keep.sum())} detections (score ≥ {threshold:g}) from "
                        f"{ctx.result.final_pos.numel()} proposals"))

    show_picture((ctx.key, "detections", threshold), draw_detections, ctx.slug("detections"))
