"""L1 · Anchor lab — tile your own anchors, label them as the paper trains, sample a mini-batch."""

from __future__ import annotations

from dataclasses import astuple

import numpy as np
import streamlit as st
import torch

from rpn_viz.pipeline.anchors import PAPER_ANCHORS, AnchorSpec, MiniBatch, Tiling, assign_labels, sample_minibatch, tile_anchors

from .. import charts, theme
from ..context import StepContext
from ..figures import show_picture
from ..lab_pictures import PAPER_IMAGE, RATIO_CHOICES, tiling_picture
from ..pictures import Picture
from .lab_common import LAB_ANCHOR_WIDGETS, gt_section, lab_anchor_state

SIZE_CHOICES = [16, 32, 64, 128, 256, 512, 1024]
RATIO_CHOICES = [0.25, 0.5, 1.0, 2.0, 4.0]
STRIDE_CHOICES = [4, 8, 16, 32, 64]
RATIO_COLOURS = [theme.OKABE_ITO[c] for c in ("purple", "blue", "green", "orange", "vermillion")]


def _inside_chart(tiling: Tiling) -> dict:
    """Per anchor shape: how many lie inside the image and how many cross its border."""
    shapes = tiling.spec.shapes()
    inside = np.array(tiling.inside_per_shape())
    total = tiling.num_positions
    labels = [f"{s.size:g} px, {s.ratio:g} ({s.width:.0f}×{s.height:.0f})" for s in shapes]
    return charts.stacked_bars(labels, {"inside the image": inside, "crossing the border": total - inside},
                               title="Big anchors rarely fit inside the image",
                               x_title=f"anchors of this shape (one per position: {total:,})",
                               colours=[theme.KEPT, theme.OKABE_ITO["orange"]])


def _batch_picture(ctx: StepContext, gt: torch.Tensor, tiling: Tiling, batch: MiniBatch):
    """The photo with the gt boxes and the sampled mini-batch (positives solid, negatives thin)."""
    w, h = tiling.image_size
    return (Picture(ctx.input_view, view=(-20, -20, w + 20, h + 20))
            .boxes(tiling.anchors[batch.negative].tolist(), theme.NEGATIVE, 0.8, alpha=0.55,
                   label=f"sampled negatives ({batch.negative.numel()})")
            .boxes(tiling.anchors[batch.positive].tolist(), theme.POSITIVE, 2.0,
                   label=f"sampled positives ({batch.positive.numel()})")
            .boxes(gt.tolist(), theme.GROUND_TRUTH, 3.5, label="your ground-truth boxes",
                   tags=[f"GT {i + 1}" for i in range(gt.shape[0])])
            .render(f"Mini-batch: {batch.positive.numel()} positive + {batch.negative.numel()} negative"))


def render(ctx: StepContext) -> None:
    iw, ih = ctx.input_size
    st.markdown(
        """
Anchors are a **design choice**, not something the network learns: you pick a few sizes and aspect ratios
and the same set is placed at every cell of a feature map, `stride` pixels apart. Change them here and watch
how many anchors there are, how many cross the image border, and which ones would be **positive** or
**negative** when training on your boxes — exactly as the Faster R-CNN paper assigns them (torchvision's own
`AnchorGenerator`, `box_iou`, `Matcher` and `BalancedPositiveNegativeSampler` do the work).
"""
    )
    stored = lab_anchor_state()  # kept across pages; L7's fit may have filled it
    for name, key in LAB_ANCHOR_WIDGETS.items():
        st.session_state.setdefault(key, stored[name])
    c = st.columns([3, 3, 2])
    sizes = c[0].multiselect("Anchor sizes (√area, px)", sorted({*SIZE_CHOICES, *stored["fitted_sizes"]}),
                             key="lab_sizes", format_func=lambda v: f"{v:g}")
    ratios = c[1].multiselect("Aspect ratios (height:width)", sorted({*RATIO_CHOICES, *stored["fitted_ratios"]}),
                              key="lab_ratios", format_func=lambda v: f"{v:g}")
    stride = c[2].select_slider("Stride (px)", STRIDE_CHOICES, key="lab_stride")
    if sizes and ratios:
        stored.update(sizes=list(sizes), ratios=list(ratios), stride=int(stride))
    where = st.radio("Tile", ["photo", "paper"], horizontal=True, key="lab_image",
                     format_func=lambda v: f"this photo's network input ({iw}×{ih})" if v == "photo"
                     else "the paper's example (1000×600)")
    if not sizes or not ratios:
        st.error("Choose at least one anchor size and one aspect ratio.")
        return
    spec = AnchorSpec(tuple(sorted(sizes)), tuple(sorted(ratios)), int(stride))
    on_photo = where == "photo"
    tiling = tile_anchors((iw, ih) if on_photo else PAPER_IMAGE, spec)
    rows, cols = tiling.grid
    m = st.columns(5)
    m[0].metric("positions", f"{tiling.num_positions:,}", help=f"{rows} rows × {cols} columns")
    m[1].metric("anchors per position k", tiling.k, help=f"{len(spec.sizes)} sizes × {len(spec.ratios)} ratios")
    m[2].metric("anchors", f"{tiling.num_anchors:,}")
    m[3].metric("inside the image", f"{tiling.num_inside:,}")
    m[4].metric("crossing the border", f"{tiling.num_cross_boundary:,}")
    share = tiling.num_inside / tiling.num_anchors
    paper = tile_anchors(PAPER_IMAGE, PAPER_ANCHORS)
    pascal = tile_anchors((800, 600), PAPER_ANCHORS)
    st.markdown(
        f"""
The {tiling.image_size[0]}×{tiling.image_size[1]} image at stride {stride} has {rows}×{cols} = **{tiling.num_positions:,}
positions**; with k = {tiling.k} that is **{tiling.num_anchors:,} anchors**, of which **{tiling.num_inside:,}**
({share:.0%}) lie entirely inside the image. The paper ignores the other {tiling.num_cross_boundary:,} when
training ("they introduce large, difficult to correct error terms") but keeps them, clipped, at test time.

*The paper's check:* for a 1000×600 image it counts "roughly 20,000 (≈ 60 × 40 × 9) anchors" and "about 6,000"
inside. With its 9 anchors at stride 16 this lab gets **{paper.num_anchors:,}** and **{paper.num_inside:,}** (the
paper's released code, py-faster-rcnn: 8,151); "about 6,000" is what a typical PASCAL VOC photo rescaled to
**800×600** gives ({pascal.num_inside:,} here).
"""
    )
    where_key = ctx.trace_key if on_photo else "paper"
    show_picture((where_key, "lab-tiling", astuple(spec), tiling.image_size), lambda: tiling_picture(ctx, tiling, on_photo),
                 ctx.slug(f"lab-tiling-s{tiling.spec.stride}-k{tiling.k}"),
                 caption=f"The k = {tiling.k} anchors of the middle cell (row {rows // 2}, column {cols // 2}, "
                         "black +). Dotted: the image border.")
    charts.show_chart(_inside_chart(tiling))

    st.subheader("Training labels from your boxes")
    if not on_photo:
        st.info("Labels need ground-truth boxes on a photo: choose *this photo's network input* above.")
        return
    gt = gt_section(ctx, "lab_gt")
    c = st.columns([3, 1])
    ignore = c[0].checkbox("Ignore anchors that cross the image border (the paper's training)", value=True,
                           key="lab_ignore")
    seed = int(c[1].number_input("Sampling seed", 0, 9999, 0, key="lab_seed"))
    labels = assign_labels(tiling.anchors, gt, (iw, ih), ignore_cross_boundary=ignore)
    batch = sample_minibatch(labels, 256, 0.5, seed)
    counts = labels.counts()
    if gt.shape[0] == 0:
        st.info(f"No box yet: every one of the {counts['negative']:,} anchors considered is **negative**. "
                "Draw or type a box above to see positives.")
    st.markdown(
        f"""
Each anchor's label comes from its best IoU with your {gt.shape[0]} box(es): **≥ {labels.fg_iou:g} → positive**,
**< {labels.bg_iou:g} → negative**, in between → ignored (it teaches nothing clear). Because a small or
oddly shaped box may reach 0.7 with no anchor at all, each box's best anchor (ties included) is made positive
too. Here: **{counts['positive']:,} positive** ({counts['  of which best anchor of a box']} only by the
best-anchor rule), **{counts['negative']:,} negative**, **{counts['ignored']:,} ignored**.
Each training step looks at a random **mini-batch of {batch.batch_size}** of them, at most half positive
(when there are fewer positives, negatives fill the rest): here {batch.positive.numel()} positive +
{batch.negative.numel()} negative.
"""
    )
    st.dataframe([{"label": k.strip(), "anchors": v} for k, v in counts.items()], hide_index=True)
    if gt.shape[0]:
        st.dataframe(
            [{"box": f"GT {i + 1}", "size (input px)": f"{b[2] - b[0]:.0f}×{b[3] - b[1]:.0f}",
              "best anchor IoU": round(float(labels.gt_best_iou[i]), 3),
              "positive anchors": int(labels.gt_num_positive[i])} for i, b in enumerate(gt.tolist())],
            hide_index=True,
        )
    show_picture((ctx.trace_key, "lab-minibatch", astuple(spec), tuple(map(tuple, gt.tolist())), ignore, seed),
                 lambda: _batch_picture(ctx, gt, tiling, batch), ctx.slug(f"lab-minibatch-seed{batch.seed}"))
