"""L5 · Trained vs untrained — the same photo through the same architecture, with and without learning."""

from __future__ import annotations

import streamlit as st

from rpn_viz.lab import baselines
from rpn_viz.model.models import MODELS, available_models
from rpn_viz.pipeline.tracing import Trace
from rpn_viz.model.weights import WeightsError

from .. import theme
from ..context import StepContext
from ..figures import show_picture
from ..picture_frame import side_by_side
from ..pictures import Picture
from ..resources import ModelChoice, SharedModel, get_trace
from ..store import session_store

TOP = [5, 10, 20, 50, 100]
KIND_NAMES = {"official": "trained (COCO)", "custom": "custom weights", "untrained": "untrained"}


def _name(trace: Trace) -> str:
    """Short name of a side: what its weights are."""
    return KIND_NAMES.get(trace.model.weights.kind, trace.model.weights.kind)


@st.cache_resource(show_spinner="Loading the paper's RPN with an untrained head…")
def _paper_untrained() -> SharedModel:
    from rpn_viz.model import paper

    return SharedModel(paper.load_paper_model(allow_download=False))


def _counterpart(ctx: StepContext) -> Trace | str:
    """The same photo through the same architecture with the other kind of weights, or why there is none."""
    loaded, photo = ctx.loaded, ctx.photo
    name = loaded.name
    if ctx.choice.kind in ("official", "custom"):
        return get_trace(ModelChoice(f"untrained:{name}", "untrained"), photo.sha256, photo.image)
    if ctx.choice.kind == "untrained":
        if name in {spec.name for spec in available_models()}:
            return get_trace(ModelChoice(f"official:{name}", "official"), photo.sha256, photo.image)
        return ("The trained (COCO) weights of this architecture are not on this machine, so only the untrained "
                "side can be shown. Add them in the sidebar, or train your own RPN in the Learning pages and pick "
                "it as the model: this page then compares it with its untrained start.")
    # the session's own model: compare with its architecture's untrained start
    if name in MODELS:
        return get_trace(ModelChoice(f"untrained:{name}", "untrained"), photo.sha256, photo.image)
    try:
        start = _paper_untrained()
    except WeightsError as exc:
        return f"Could not load the untrained version of your RPN: {exc}"
    if start.loaded.name != name:
        return f"No untrained counterpart is known for the architecture '{name}'."
    return session_store("lab_untrained_traces", 1).get_or_make(photo.sha256, lambda: start.trace(photo.image))


def _heatmaps(ctx: StepContext, views: list[baselines.TraceView], traces: list[Trace], level: int):
    panels = []
    for view, trace in zip(views, traces):
        heat = view.heatmaps[level]
        rows, cols = heat.prob.shape
        panels.append(Picture(ctx.input_view, width=700, height=700)
                      .heatmap(heat.prob.numpy(), (cols * heat.stride[1], rows * heat.stride[0]), alpha=0.65,
                               label="max objectness over the anchors")
                      .render(f"{_name(trace)}: level '{heat.name}', max {float(heat.prob.max()):.2f}", axes=False))
    return side_by_side(panels)


def _proposals(ctx: StepContext, views: list[baselines.TraceView], traces: list[Trace], shown: int):
    trace = ctx.trace
    panels = []
    for view, source in zip(views, traces):
        best = float(view.scores[0]) if view.scores.numel() else float("nan")
        panels.append(Picture(trace.image, width=700, height=700)
                      .boxes(trace.to_working(view.boxes[:shown]).tolist(), theme.KEPT, 2,
                             label=f"top {min(shown, view.boxes.shape[0])} proposals")
                      .render(f"{_name(source)}: best score {best:.2f}", axes=False))
    return side_by_side(panels)


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
    key = (ctx.key, "lab-untrained", tuple((t.model.name, t.model.weights.label) for t in traces))
    show_picture((*key, "heatmaps", int(level)), lambda: _heatmaps(ctx, views, traces, int(level)),
                 ctx.slug(f"lab-untrained-heatmaps-{views[0].heatmaps[int(level)].name}"))
    show_picture((*key, "top", int(shown)), lambda: _proposals(ctx, views, traces, int(shown)),
                 ctx.slug(f"lab-untrained-top{shown}"))
    keys = list(views[0].stats)
    st.dataframe(
        [{"measure": k, **{_name(t): round(v.stats[k], 4) for v, t in zip(views, traces)}} for k in keys],
        hide_index=True,
    )
    st.caption("Objectness = sigmoid of the head's logit. 'IoU with their anchors' near 1 means the regression "
               "did not move the boxes.")
