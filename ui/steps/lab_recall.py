"""L3 · Recall — how many of your boxes the proposals find, by number of proposals and by IoU."""

from __future__ import annotations

import streamlit as st

from rpn_viz.lab import recall

from .. import charts
from ..context import StepContext
from ..figures import show_picture
from ..lab_pictures import coverage_picture
from ..widgets import untrained_note
from .lab_common import gt_section

def _recall_vs_count(curves: recall.RecallCurves) -> dict:
    series = {f"IoU ≥ {t:g}": values for t, values in curves.recall_vs_count.items()}
    return charts.lines(curves.counts, series, title="Recall vs number of proposals",
                        x_title="number of proposals (best first)", y_title="recall", log_x=True, y_domain=(0, 1))


def _recall_vs_iou(curves: recall.RecallCurves) -> dict:
    series = {f"top {k}": values for k, values in curves.recall_vs_iou.items()}
    return charts.lines(curves.iou_thresholds, series, title="Recall vs IoU (paper's Fig. 2)",
                        x_title="IoU threshold", y_title="recall", y_domain=(0, 1), legend_at="bottom-left")


def render(ctx: StepContext) -> None:
    trace, result = ctx.trace, ctx.result
    n = int(result.final_pos.numel())
    st.markdown(
        """
An RPN only has to do one thing well: **leave no object without a proposal** — the second stage can reject
false alarms but can never find an object the RPN missed. *Recall* is the fraction of your ground-truth boxes
that some proposal overlaps with IoU at least t. The Faster R-CNN paper plots it against the IoU threshold
for the top 300, 1000 and 2000 proposals; proposal papers also plot it against the number of proposals.
"""
    )
    untrained_note(trace)
    gt = gt_section(ctx, "lab_recall_gt")
    if gt.shape[0] == 0:
        st.info("Draw or type at least one ground-truth box above: recall is measured on your boxes.")
        return
    curves = recall.recall_curves(result.boxes, gt)
    threshold = st.select_slider("IoU needed to count a box as found", recall.IOU_THRESHOLDS, value=0.5,
                                 key="lab_recall_iou")
    found = curves.num_gt - len(curves.uncovered(threshold))
    r05, r07 = curves.recall_vs_count[0.5], curves.recall_vs_count[0.7]
    st.markdown(
        f"""
With these **{n} proposals** (sidebar settings), **{found} of your {curves.num_gt} boxes** are found at
IoU ≥ {threshold:g}. Recall with all of them: **{r05[-1] if r05 else 0:.0%}** at IoU 0.5 and
**{r07[-1] if r07 else 0:.0%}** at 0.7; averaged over IoU 0.5…0.95 (AR): **{curves.average_recall:.2f}**.
"""
    )
    if n == 0:
        st.warning("There are no proposals with these settings. Lower the score threshold in the sidebar.")
        return
    key = (ctx.key, "lab-recall", tuple(map(tuple, gt.tolist())))
    c = st.columns(2)
    with c[0]:
        charts.show_chart(_recall_vs_count(curves))
    with c[1]:
        charts.show_chart(_recall_vs_iou(curves))
    show_picture((*key, threshold), lambda: coverage_picture(ctx, curves, gt, threshold),
                 ctx.slug(f"lab-recall-coverage-{threshold:g}"))
    table = curves.table()
    for row in table:
        row["gt"] = f"GT {row['gt'] + 1}"
        row["best IoU"] = round(row["best IoU"], 3)
    st.dataframe(table, hide_index=True)
    st.caption("'best proposal #': rank of the best-overlapping proposal (#0 is the top one); 'proposals needed': "
               "how many of the best-ranked proposals it takes to find the box (-1: none of them does).")
