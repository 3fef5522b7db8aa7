"""L5 · Trained vs untrained — the same photo through the same architecture, with and without learning."""

from __future__ import annotations

import matplotlib.pyplot as plt
import streamlit as st

import rpn_viz
from rpn_viz import baselines
from rpn_viz.models import MODELS, available_models
from rpn_viz.tracing import Trace
from rpn_viz.weights import WeightsError

from .. import theme
from ..context import StepContext
from ..figures import draw_boxes, legend, overlay_heatmap, show_figure
from ..resources import ModelChoice, get_trace

TOP = [5, 10, 20, 50, 100]
KIND_NAMES = {"official": "trained (COCO)", "custom": "custom weights", "untrained": "untrained"}


def _name(trace: Trace) -> str:
    """Short name of a side: what its weights are."""
    return KIND_NAMES.get(trace.model.weights.kind, trace.model.weights.kind)


@st.cache_resource(show_spinner="Loading the paper's RPN with an untrained head…")
def _paper_untrained() -> rpn_viz.LoadedModel:
    from rpn_viz import paper

    return paper.load_paper_model(allow_download=False)


def _counterpart(ctx: StepContext) -> Trace | str:
    """The same photo through the same architecture with the other kind of weights, or why there is none."""
    loaded, photo = ctx.loaded, ctx.photo
    name = loaded.name
    if ctx.choice.kind in ("official", "custom"):
        return get_trace(ModelChoice(f"untrained:{name}", "untrained"), photo.sha256, photo.image)
    if ctx.choice.kind == "untrained":
        if name in {spec.name for spec in available_models()}:
            return get_trace(ModelChoice(f"official:{name}", "official"), photo.sha256, photo.image)
        return (f"The trained (COCO) weights of this architecture are not on this machine, so only the untrained "
                f"side can be shown. Add them in the sidebar, or train your own RPN in the Learning pages and pick "
                f"it as the model: this page then compares it with its untrained start.")
    # the session's own model: compare with its architecture's untrained start
    if name in MODELS:
        return get_trace(ModelChoice(f"untrained:{name}", "untrained"), photo.sha256, photo.image)
    try:
        start = _paper_untrained()
    except WeightsError as exc:
        return f"Could not load the untrained version of your RPN: {exc}"
    if start.name != name:
        return f"No untrained counterpart is known for the architecture '{name}'."
    cache = st.session_state.setdefault("lab_untrained_traces", {})
    if photo.sha256 not in cache:
        cache.clear()
        cache[photo.sha256] = rpn_viz.trace(start, photo.image)
    return cache[photo.sha256]


def _heatmaps(ctx: StepContext, views: list[baselines.TraceView], traces: list[Trace], level: int) -> None:
    fig, axes = plt.subplots(1, len(views), figsize=(7.5 * len(views), 6.5), squeeze=False)
    iw, ih = ctx.input_size
    for ax, view, trace in zip(axes[0], views, traces):
        heat = view.heatmaps[level]
        rows, cols = heat.prob.shape
        ax.imshow(ctx.input_view)
        overlay_heatmap(ax, heat.prob.numpy(), (cols * heat.stride[1], rows * heat.stride[0]), vmin=0.0, vmax=1.0,
                        alpha=0.65, label="max objectness over the anchors")
        ax.set_xlim(0, iw)
        ax.set_ylim(ih, 0)
        ax.set_title(f"{_name(trace)}: level '{heat.name}', max {float(heat.prob.max()):.2f}")
        ax.set_axis_off()
    fig.tight_layout()
    show_figure(fig, ctx.slug(f"lab-untrained-heatmaps-{views[0].heatmaps[level].name}"))


def _proposals(ctx: StepContext, views: list[baselines.TraceView], traces: list[Trace], shown: int) -> None:
    trace = ctx.trace
    image = trace.image
    fig, axes = plt.subplots(1, len(views), figsize=(7.5 * len(views), 7.5 * image.height / image.width + 1),
                             squeeze=False)
    for ax, view, source in zip(axes[0], views, traces):
        ax.imshow(image)
        draw_boxes(ax, trace.to_working(view.boxes[:shown]).tolist(), theme.KEPT, linewidth=2,
                   label=f"top {min(shown, view.boxes.shape[0])} proposals")
        ax.set_title(f"{_name(source)}: best score {float(view.scores[0]) if view.scores.numel() else float('nan'):.2f}")
        ax.set_axis_off()
        legend(ax, loc="lower center", bbox_to_anchor=(0.5, -0.12), fontsize=11)
    fig.tight_layout()
    show_figure(fig, ctx.slug(f"lab-untrained-top{shown}"))


def untrained_text(out: baselines.UntrainedOutput) -> str:
    """What an untrained network's output is, in words, from its measured numbers."""
    if out.spread < 1e-3:
        text = (f"{out.label}: every objectness is {out.mean:.3f} (spread {out.spread:.0e}) — a flat heatmap: random "
                "weights give near-zero features, so the head has nothing to say")
    else:
        text = (f"{out.label}: objectness varies (std {out.spread:.3f}), but only as random weights make it vary; "
                "it is not about objects")
    if out.largest_shift < 0.5:
        text += (f"; every proposal is its anchor (largest shift {out.largest_shift:.1e} px), and which anchors "
                 "survive NMS is decided by ties, not by the photo.")
    else:
        text += f"; boxes move up to {out.largest_shift:.0f} px from their anchors, in random directions."
    return text

def render(ctx: StepContext) -> None:
    st.markdown(
        """
Everything an RPN knows is in its weights. Here is the same photo through the **same architecture** twice:
once with trained weights and once with random ones. Same anchors, same post-processing — only learning
differs. On the left of each figure the trained network, on the right the untrained one.
"""
    )
    other = _counterpart(ctx)
    shown = st.select_slider("Proposals drawn", TOP, value=20, key="lab_untrained_top")
    if isinstance(other, str):
        st.info(other)
        traces = [ctx.trace]
        views = [baselines.trace_view(ctx.trace, max(TOP), ctx.result)]
        notes = [untrained_text(baselines.untrained_output(ctx.trace))] if not ctx.loaded.is_trained else []
    else:
        traces = [ctx.trace, other] if ctx.loaded.is_trained else [other, ctx.trace]
        try:
            pair = baselines.side_by_side(traces[0], traces[1], top_n=max(TOP), settings=ctx.settings)
        except ValueError as exc:
            st.error(str(exc))
            return
        views, notes = [pair.left, pair.right], [untrained_text(u) for u in pair.untrained]
        if not pair.same_input:
            notes.insert(0, "The two network inputs differ: these are not the same photo (or not the same preprocessing).")
    for note in notes:
        st.warning(note)
    names = [level.name for level in ctx.trace.levels]
    level = st.radio("Feature level", range(len(names)), format_func=lambda i: f"level '{names[i]}'",
                     horizontal=True, key="lab_untrained_level")
    _heatmaps(ctx, views, traces, int(level))
    _proposals(ctx, views, traces, int(shown))
    keys = list(views[0].stats)
    st.dataframe(
        [{"measure": k, **{_name(t): round(v.stats[k], 4) for v, t in zip(views, traces)}} for k in keys],
        hide_index=True,
    )
    st.caption("Objectness = sigmoid of the head's logit. 'IoU with their anchors' near 1 means the regression "
               "did not move the boxes.")
