"""Step 8 — the proposals, and the crops the second stage receives."""

from __future__ import annotations

import json

import streamlit as st

from rpn_viz.export import proposals_csv, trace_json

from .. import theme
from ..context import StepContext
from ..figures import draw_boxes, new_figure, show_figure, show_photo
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
    boxes = trace.to_working(result.boxes[:shown])
    image = trace.image
    fig, ax = new_figure(image.size, max_width=10)
    show_photo(ax, image, f"Top {shown} of {n} proposals")
    labels = [f"#{i} {p:.2f}" for i, p in enumerate(result.scores[:shown].tolist())] if shown <= 20 else None
    draw_boxes(ax, boxes.tolist(), theme.CYCLE[0] if shown > 20 else [theme.CYCLE[i % 7] for i in range(shown)],
               linewidth=2, labels=labels)
    show_figure(fig, ctx.slug(f"proposals-top{shown}"))

    st.subheader("What the second stage receives: the crops")
    count = min(GALLERY, n)
    columns = st.columns(6)
    crops = trace.to_working(result.boxes[:count]).round().int().tolist()
    for i, (x1, y1, x2, y2) in enumerate(crops):
        crop = image.crop((x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)))
        crop.thumbnail((220, 220))
        columns[i % 6].image(crop, caption=f"#{i} · {float(result.scores[i]):.3f}")
    doc = trace_json(trace, result)
    cols = st.columns(2)
    cols[0].download_button("Proposals as JSON", json.dumps(doc, indent=1), file_name=f"{ctx.slug('proposals')}.json",
                            mime="application/json", key="dl-json")
    cols[1].download_button("Proposals as CSV", proposals_csv(trace, result), file_name=f"{ctx.slug('proposals')}.csv",
                            mime="text/csv", key="dl-csv")
    st.caption("Boxes in the files are in your photo's pixels (x1, y1, x2, y2), ranked, with objectness probability.")
