"""L4 · Before the RPN — exhaustive sliding windows and Selective Search next to the RPN."""

from __future__ import annotations

from dataclasses import astuple

import streamlit as st

from rpn_viz.lab import baselines
from rpn_viz.pipeline.anchors import AnchorSpec

from .. import charts, theme
from ..context import StepContext
from ..figures import show_picture
from ..lab_pictures import METHOD_COLOURS, method_panels
from ..store import session_store
from ..widgets import untrained_note
from ..words import candidate_note
from .lab_common import SEARCH_RUNS, SEARCH_STORE, gt_section, search_key

SIZE_CHOICES = [32, 64, 128, 256, 512]
RATIO_CHOICES = [0.5, 1.0, 2.0]
STRIDE_CHOICES = [8, 16, 32]


def _bars(table: baselines.Comparison) -> tuple[dict, dict]:
    """How many boxes each method gives, and how long it took (log scales: they differ by orders of magnitude)."""
    names = [row["method"] for row in table.rows]
    colours = [METHOD_COLOURS.get(n, theme.CYCLE[0]) for n in names]
    count = charts.bars({row["method"]: row["boxes"] for row in table.rows}, title="How many boxes",
                        y_title="candidate boxes (log scale)", log_y=True, colours=colours)
    seconds = charts.bars({row["method"]: max(row["seconds"], 1e-4) for row in table.rows},
                          title="Time to produce them", y_title="seconds on this machine (log scale)", log_y=True,
                          colours=colours, fmt=".3~g")
    return count, seconds


def render(ctx: StepContext) -> None:
    trace = ctx.trace
    iw, ih = ctx.input_size
    st.markdown(
        """
Before the RPN, a detector got its candidate boxes in one of two ways. **Exhaustive sliding windows**: every
size and shape at every position — hopelessly many boxes, each to be classified by a separate network run.
**Selective Search** (used by R-CNN and Fast R-CNN): group an over-segmentation of the photo by colour, texture
and size into a hierarchy of regions — a couple of thousand good boxes, but seconds per photo on a CPU,
the slowest part of Fast R-CNN. The **RPN** reuses the detector's own features, so its proposals cost a few
milliseconds on a GPU on top of the backbone the detector runs anyway.
"""
    )
    untrained_note(trace)
    c = st.columns([3, 2, 2])
    sizes = c[0].multiselect("Sliding-window sizes (px)", SIZE_CHOICES, default=[128, 256, 512],
                             key="lab_before_sizes")
    ratios = c[1].multiselect("Window height:width", RATIO_CHOICES, default=RATIO_CHOICES, key="lab_before_ratios")
    stride = c[2].select_slider("Window stride (px)", STRIDE_CHOICES, value=16, key="lab_before_stride")
    c = st.columns(2)
    mode = c[0].radio("Selective Search mode", ["fast", "single", "quality"], horizontal=True, key="lab_before_mode",
                      help="fast: the paper's fast mode; single: one segmentation (quickest); quality: slowest")
    side = c[1].select_slider("Selective Search works on a copy with longer side (px)", [200, 300, 500, 800],
                              value=500, key="lab_before_side")
    if not sizes or not ratios:
        st.error("Choose at least one window size and one aspect ratio.")
        return
    gt = gt_section(ctx, "lab_before_gt", expanded=False)
    spec = AnchorSpec(tuple(sorted(sizes)), tuple(sorted(ratios)), int(stride))
    windows = baselines.sliding_windows((iw, ih), spec)
    key = search_key(ctx, mode, int(side))
    runs = session_store(SEARCH_STORE, SEARCH_RUNS)
    if st.button(f"Run Selective Search ({mode} mode) on this photo", key="lab_before_run"):
        with st.spinner("Selective Search is running on the CPU…"):
            runs.put(key, baselines.selective_search_input(trace, int(side), mode))
    search = runs.find(key)
    sets = [windows, *([search] if search is not None else []), baselines.rpn_candidates(trace, ctx.result)]
    table = baselines.compare(sets, gt)
    rows = [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}
            for row in table.rows]
    st.dataframe(rows, hide_index=True)
    for s in sets:
        st.caption(f"**{s.name}** — {candidate_note(s)}")
    if search is None:
        st.info("Press the button to run Selective Search (a few seconds); the table then compares all three.")
    rpn = sets[-1]
    text = (f"On this photo: **{windows.count:,} sliding windows** (made in {windows.seconds * 1000:.0f} ms, but each "
            f"would need its own classification), ")
    if search is not None:
        text += f"**{search.count:,} Selective Search boxes** in **{search.seconds:.2f} s**, "
    text += f"and **{rpn.count:,} RPN proposals** in **{rpn.seconds:.2f} s** for the whole network on `{ctx.loaded.device}`."
    if gt.numel():
        by_name = {row["method"]: row for row in table.rows}
        text += " Recall at IoU 0.5 on your boxes: " + ", ".join(
            f"{name} {row['recall@0.5']:.0%}" for name, row in by_name.items()) + "."
    else:
        text += " Add ground-truth boxes (expander above) to compare their recall."
    st.markdown(text)
    shows = (ctx.key, "lab-before", astuple(spec), key if search is not None else None, tuple(map(tuple, gt.tolist())))
    for column, chart in zip(st.columns(2), _bars(table)):
        with column:
            charts.show_chart(chart)
    show_picture((*shows, "boxes"), lambda: method_panels(ctx, table, gt), ctx.slug("lab-before-boxes"))
