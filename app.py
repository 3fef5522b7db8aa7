"""RPN explorer — step through a real Region Proposal Network on your own photo.

Run with ``streamlit run app.py``. This file only lays the page out: the sidebar chooses the photo,
the model, the step and the post-processing settings (all kept in the URL, so a link shares a step);
the chosen step in ``ui/steps/`` draws. Every number comes from ``rpn_viz``.
"""

from __future__ import annotations

import streamlit as st

from ui.serving import freeze_long_lived, limit_malloc, limit_torch_threads, skip_triton, start_session_sweeper, use_huge_pages

use_huge_pages()  # before torch allocates: big tensors on huge pages, a third less CPU per trace (ui/serving.py)
skip_triton()  # before torch is imported: its GPU kernel compiler is ~70 MB the app never uses

from rpn_viz.model.device import device_name, resolve_device, tf32_allowed
from rpn_viz.pipeline.filtering import FilterSettings
from rpn_viz.io.errors import describe_error
from rpn_viz.model.models import DEFAULT_MODEL, MODELS
from rpn_viz.model.weights import is_available
from ui import theme
from ui.context import StepContext
from ui import follow, present
from ui.download import apply_switch, offline_line, open_model, picked, weights_help
from ui.photo import photo_picker
from ui.resources import get_trace, model_choices
from ui.steps import STEPS, step_by_key
from ui.words import device_note, model_line

PRE_NMS_CHOICES = [10, 50, 100, 150, 200, 300, 500, 1000, 2000, 3000, 6000]
POST_NMS_CHOICES = [1, 5, 10, 20, 50, 100, 150, 200, 300, 500, 1000, 2000]
SETTING_KEYS = ("nms_iou", "pre_nms", "post_nms", "score")
NOT_HERE = "This page trains its own model and does not use these: they apply to the pipeline and lab steps."

limit_malloc()  # a classroom in one process: bounded allocator arenas (see ui/serving.py)
limit_torch_threads()  # half the cores for the network, the rest for the pages
start_session_sweeper()  # sessions that have gone give their memory back (ui/serving.py)
st.set_page_config(page_title="RPN explorer — how Faster R-CNN proposes regions", layout="wide")
st.markdown(theme.CSS, unsafe_allow_html=True)
try:
    resolve_device()  # $RPN_VIZ_DEVICE: a bad value or a missing GPU is one line, not a traceback
except ValueError as exc:
    st.error(str(exc))
    st.stop()


def reset_settings(defaults: FilterSettings) -> None:
    """Put the post-processing sliders back to the model's own values (runs before the widgets)."""
    st.session_state.update(nms_iou=defaults.nms_iou, pre_nms=defaults.pre_nms_top_n,
                            post_nms=defaults.post_nms_top_n, score=defaults.score_thresh)


def settings_widgets(defaults: FilterSettings, model_key: str) -> FilterSettings:
    """Post-processing sliders (bound to the URL); switching models resets them to the new model's own values."""
    if st.session_state.get("_settings_for") not in (None, model_key):
        for key in SETTING_KEYS:
            st.session_state.pop(key, None)
    st.session_state["_settings_for"] = model_key
    st.caption("These re-run only the post-processing, never the network. Defaults are the model's own.")
    nms = st.slider("NMS IoU threshold", 0.05, 1.0, defaults.nms_iou, 0.05, key="nms_iou", bind="query-params")
    pre = st.select_slider("Pre-NMS top-N (per level)", sorted({*PRE_NMS_CHOICES, defaults.pre_nms_top_n}),
                           defaults.pre_nms_top_n, key="pre_nms", bind="query-params")
    post = st.select_slider("Post-NMS top-N", sorted({*POST_NMS_CHOICES, defaults.post_nms_top_n}),
                            defaults.post_nms_top_n, key="post_nms", bind="query-params")
    score = st.slider("Score threshold", 0.0, 1.0, defaults.score_thresh, 0.01, key="score", bind="query-params")
    st.button("Reset to the model's defaults", on_click=reset_settings, args=(defaults,))
    return defaults.with_changes(nms_iou=float(nms), pre_nms_top_n=int(pre), post_nms_top_n=int(post),
                                 score_thresh=float(score))


def from_url(key: str, options: list[str], default: str) -> None:
    """Start a widget at the URL's ?key= value (first run of a session only)."""
    if key not in st.session_state:
        value = st.query_params.get(key)
        st.session_state[key] = value if value in options else default


def go(offset: int) -> None:
    """Next/Back: move the step radio."""
    keys = [step.key for step in STEPS]
    current = keys.index(step_by_key(st.session_state.get("step")).key)
    st.session_state["step"] = keys[max(0, min(len(keys) - 1, current + offset))]


with st.sidebar:
    st.title("RPN explorer")
    st.caption("How Faster R-CNN's Region Proposal Network finds objects, step by step, on your photo.")
    photo = photo_picker()
    choices = model_choices()
    by_key = {choice.key: choice for choice in choices}
    from_url("model", list(by_key), choices[0].key)
    apply_switch(list(by_key))  # offline: the previous run switched to the offline model
    if st.session_state["model"] not in by_key:  # e.g. "your RPN" of an earlier run
        st.session_state["model"] = choices[0].key
    model_key = st.selectbox("Model", list(by_key), format_func=lambda k: by_key[k].label, key="model",
                             on_change=picked)
    choice = by_key.get(model_key, choices[0])
    offline_line(choice.key, st.session_state.get("step"))  # offline, after the first page: one line and Retry
    if not is_available(MODELS[DEFAULT_MODEL].official):
        weights_help()
    from_url("step", [step.key for step in STEPS], STEPS[0].key)
    step_key = st.radio("Step", [step.key for step in STEPS], format_func=lambda k: step_by_key(k).title,
                        key="step")
    st.query_params.update(step=step_key, model=model_key)  # a link to this page opens this step and model
    step = step_by_key(step_key)
    with st.expander("Present and compare", expanded=False):  # issue 15: presenter mode, two models
        view = present.switches(choices, model_key)

# downloads a missing COCO file with progress; offline, says so (in full on the first page, a badge when presenting)
loaded = open_model(choice, choices, step.key, view.present)
freeze_long_lived()  # the models are loaded: the per-run garbage collection skips them from now on

with st.sidebar:
    with st.expander("Post-processing settings", expanded=step.uses_trace):
        if not step.uses_trace:  # kept (their values live in the widgets and the URL), but idle here
            st.caption(NOT_HERE)
        settings = settings_widgets(FilterSettings.from_rpn(loaded.model.rpn), choice.key)

PIPELINE = [s.key for s in STEPS if s.group == "The pipeline"]
position = [s.key for s in STEPS].index(step.key)
model_text = model_line(loaded, markdown=True)
if view.present:  # one compact row instead of title, summary and model line
    present.presenter_header(position, len(STEPS), go, step.title.split("·", 1)[-1].strip())
else:
    st.title(step.title.split("·", 1)[-1].strip())
    st.caption(step.summary)
    st.markdown(model_text)

if photo is None:
    st.info("Choose a sample photo, upload one, or take a webcam snapshot in the sidebar.")
    st.stop()

trace = result = None
if step.uses_trace:  # T1 trains its own model: the sidebar's model does not run for it
    try:
        trace = get_trace(choice, photo.sha256, photo.image)
        result = trace.result if settings == trace.default_settings else trace.refilter(settings)
    except Exception as exc:  # a failure on one photo must not take the app down
        st.error(f"Could not run the network on {photo.name}: {describe_error(exc)}")
        st.stop()

ctx = StepContext(loaded, choice, photo, trace=trace, settings=settings, result=result)
if trace is not None:
    follow.start(choice.key, photo.sha256, int(trace.anchors.shape[0]))
    present.slides(view, ctx)  # "Download slides (PDF)" in "Present and compare" (issue 26)
elif view.slides is not None:
    view.slides.caption("Slides are made on the pipeline and lab steps.")
if step.key in PIPELINE:
    follow.strip(ctx, step.key, PIPELINE)
    if view.second is not None:
        present.comparison(step.key, ctx, view.second)
        st.subheader(f"The page for {choice.label}")
    elif view.present and present.presenter_picture(step.key, ctx):
        st.subheader("Details")
elif view.second is not None:
    st.caption("The comparison with a second model covers the pipeline steps 1–8.")
if view.present:
    st.markdown(model_text)
step.render(ctx)

if not view.present:
    st.divider()
    back, _, forward = st.columns([1, 4, 1])
    back.button("← Back", on_click=go, args=(-1,), disabled=step.key == STEPS[0].key, width="stretch")
    forward.button("Next →", on_click=go, args=(1,), disabled=step.key == STEPS[-1].key, width="stretch")
with st.expander("Timings and device"):
    if trace is not None:
        times = {**trace.timings_ms, **{f"re-filter: {k}": v for k, v in result.timings_ms.items()}}
        st.dataframe([{"stage": k, "ms": round(v, 1)} for k, v in times.items()], hide_index=True)
        st.caption("The network ran once for this photo and model; sliders re-filter only.")
    st.markdown(device_note(str(loaded.device), device_name(loaded.device), tf32_allowed()))
