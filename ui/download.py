"""Opening the chosen model: the COCO file's download with a progress bar, the switch to the offline
model when there is no network (with a note and a Retry button), and the screen shown when no
trained model can be had at all — the only place that offers the untrained network.

The offline note is shown in full (which file could not be downloaded, from where, which folder it
goes in, and Retry) on the session's first page only; on later pages it is one line in the sidebar
with the Retry button, and presenter mode shows only a small badge: a class sees the lesson first.

Layout only: downloading, hashing and loading are ``rpn_viz.model.download``, ``rpn_viz.model.weights`` and
``rpn_viz.model.models``; the progress bar's words are the CLI's progress line's
(``rpn_viz.commands.commandline.progress_text``).
"""

from __future__ import annotations

from typing import Callable, NoReturn

import streamlit as st

from rpn_viz.model.models import DEFAULT_MODEL, MODELS, LoadedModel
from rpn_viz.model import paper  # paper.MOBILENET_V2_IMAGENET read when used, as rpn_viz.commands.fetch does
from rpn_viz.commands.commandline import progress_text
from rpn_viz.model.download import MB, DownloadError, Progress, forget_failures, start_download
from rpn_viz.model.weights import (
    OfficialFile,
    WeightsError,
    candidate_paths,
    configured_weights_dir,
    hub_checkpoint_dir,
    is_available,
    missing_message,
    save_uploaded,
)

from .resources import UNTRAINED_OK_KEY, ModelChoice, get_model

SWITCH_KEY = "_model_switch"  # a picker value to select on the next run, before the picker is drawn
# {"from": COCO key, "to": offline key, "message": one line, "page": the step it was first shown on}: why we switched
NOTE_KEY = "_offline_note"
PROGRESS_EVERY_S = 0.25


def apply_switch(valid_keys: list[str]) -> None:
    """Select the model a previous run switched to (call before the picker widget is drawn)."""
    target = st.session_state.pop(SWITCH_KEY, None)
    if target in valid_keys:
        st.session_state["model"] = target


def picked() -> None:
    """The picker's on_change: a model chosen by hand drops the offline note and tries downloads anew."""
    st.session_state.pop(NOTE_KEY, None)
    forget_failures()


def _retry(key: str) -> None:
    """Retry: back to the COCO model, and try its download now even if the last attempt just failed."""
    st.session_state.pop(NOTE_KEY, None)
    st.session_state["model"] = key
    forget_failures()


def _allow_untrained() -> None:
    st.session_state[UNTRAINED_OK_KEY] = True
    st.session_state["model"] = f"untrained:{DEFAULT_MODEL}"


def files_needed(choice: ModelChoice) -> list[tuple[OfficialFile, str]]:
    """The official files a picker entry loads, with what each is (for the progress bar)."""
    if choice.kind == "official":
        spec = MODELS[choice.name]
        return [(spec.official, spec.title)]
    if choice.kind == "shipped":  # the offline model: the paper's head on ImageNet MobileNetV2
        return [(paper.MOBILENET_V2_IMAGENET, "the ImageNet MobileNetV2 backbone of the offline model")]
    return []


def _download(official: OfficialFile, title: str) -> Callable[[], None]:
    """Download ``official`` (or join the download another session started) with a progress bar;
    raises :class:`DownloadError`. Returns what to call once the model is loaded (the bar says so)."""
    job = start_download(official)
    if job.finished:  # the file is there already, or a failure to connect is remembered
        job.result()
        return lambda: None
    slot = st.empty()
    slot.progress(0.0, text=f"Connecting to download {title} ({official.filename})…")

    def show(progress: Progress) -> None:  # the CLI's words for the same numbers
        slot.progress(progress.fraction or 0.0, text=f"Downloading {title}: {progress_text(progress)}")

    try:
        path = job.follow(show, interval=PROGRESS_EVERY_S)
    except DownloadError:
        slot.empty()
        raise
    done = f"Downloaded {official.filename} ({path.stat().st_size / MB:.1f} MB), sha256 checked"
    slot.progress(1.0, text=f"{done} — loading it…")
    return lambda: slot.progress(1.0, text=f"{done}, loaded.")


def open_model(choice: ModelChoice, choices: list[ModelChoice], page: str, present: bool = False) -> LoadedModel:
    """The chosen model, downloading a COCO file first if it is missing; offline, the offline model with
    a note (in full on the session's first page ``page``, never in presenter mode), or the
    no-trained-model screen. Draws in the main area."""
    note = st.session_state.get(NOTE_KEY)
    if note is not None and note["to"] != choice.key:
        st.session_state.pop(NOTE_KEY, None)
        note = None

    def give_up(message: str) -> NoReturn:
        earlier = note["message"] if note is not None else ""
        no_trained_model(f"{earlier} {message}".strip(), note["from"] if note is not None else f"official:{DEFAULT_MODEL}")

    loaded_note = []
    for official, title in files_needed(choice):
        if not is_available(official):
            try:
                loaded_note.append(_download(official, title))
            except DownloadError as exc:
                message = missing_message(official, None, exc.reason)
                if choice.kind == "official":
                    _go_offline(choice, choices, message)
                give_up(message)
    if note is not None and not present and _first_page(note, page):
        st.warning(note["message"])
        st.info(f"**You are looking at the offline model, not the COCO model:** {_label(choices, choice.key)}. "
                "Press **Retry the download** when you are online.")
        st.button("Retry the download", key="download_retry", on_click=_retry, args=(note["from"],))
    try:
        loaded = get_model(choice).loaded
    except WeightsError as exc:
        if choice.kind == "shipped":
            give_up(str(exc))
        st.error(str(exc))
        st.stop()
    for say_loaded in loaded_note:
        say_loaded()
    return loaded


def _first_page(note: dict, page: str | None) -> bool:
    """Whether the note is still on the page it was first shown on (the session's first page, or the
    page where a Retry just failed). Once the session has left that page, never again."""
    if note.setdefault("page", page) != page:
        note["page"] = None  # left the first page: one line in the sidebar from now on
    return note["page"] == page


def offline_line(model_key: str, page: str | None) -> None:
    """In the sidebar, while the offline model ``model_key`` stands in for the COCO one, after the page
    that showed the offline note in full: one line (the whole note as its tooltip) and the Retry button."""
    note = st.session_state.get(NOTE_KEY)
    if note is None or note["to"] != model_key or page is None or _first_page(note, page):
        return
    st.caption(":orange[**Offline:**] the COCO model could not be downloaded; this is the offline model.",
               help=note["message"])
    st.button("Retry the download", key="download_retry", on_click=_retry, args=(note["from"],))


def offline_badge() -> None:
    """Presenter mode's only trace of the offline note: a small badge, the note as its tooltip."""
    note = st.session_state.get(NOTE_KEY)
    if note is not None:
        st.badge("offline model", icon=":material/cloud_off:", color="orange",
                 help=f"{note['message']} Leave presenter mode and press Retry the download when you are online.")


def _label(choices: list[ModelChoice], key: str) -> str:
    return next((c.label for c in choices if c.key == key), key)


def _go_offline(choice: ModelChoice, choices: list[ModelChoice], message: str) -> NoReturn:
    """The COCO file cannot be had: switch to the offline model (next run, with a note), or say that
    there is no trained model."""
    fallback = next((c for c in choices if c.kind == "shipped"), None)
    if fallback is None:
        no_trained_model(message, retry_key=choice.key)
    st.session_state[NOTE_KEY] = {"from": choice.key, "to": fallback.key, "message": message}
    st.session_state[SWITCH_KEY] = fallback.key
    st.rerun()


def _where(official: OfficialFile) -> str:
    found = next((path for path in candidate_paths(official) if path.is_file()), None)
    return f"found in `{found.parent}/`" if found is not None else "**missing**"


def no_trained_model(reason: str, retry_key: str = f"official:{DEFAULT_MODEL}") -> NoReturn:
    """The screen shown when neither the COCO model nor the offline model can be had; then stop."""
    coco = MODELS[DEFAULT_MODEL]
    folder = configured_weights_dir() or hub_checkpoint_dir()
    st.title("No trained model available")
    st.warning(reason)
    st.markdown(
        f"To explore a **trained** Region Proposal Network, put one of these files in `{folder}/` "
        "(or upload the COCO file in the sidebar), then press **Retry the download**:\n\n"
        f"- **The COCO model** ({coco.title}): `{coco.official.filename}`, from {coco.official.url} — "
        f"{_where(coco.official)}\n"
        f"- **The offline model** (the paper's RPN, on an ImageNet MobileNetV2 backbone): "
        f"`{paper.MOBILENET_V2_IMAGENET.filename}`, from {paper.MOBILENET_V2_IMAGENET.url} — {_where(paper.MOBILENET_V2_IMAGENET)}"
    )
    st.button("Retry the download", key="download_retry", type="primary", on_click=_retry, args=(retry_key,))
    st.divider()
    st.caption("Without a trained model you can still see the machinery, on a network that has learned nothing:")
    st.button("Explore the untrained network (random weights: every score 0.5, every proposal its anchor)",
              key="download_untrained", on_click=_allow_untrained)
    st.stop()


def weights_help() -> None:
    """Say where the COCO weights go, and accept them as an upload (hash-checked)."""
    spec = MODELS[DEFAULT_MODEL]
    folder = configured_weights_dir() or hub_checkpoint_dir()
    with st.expander("COCO weights: add the file by hand", expanded=False):
        st.markdown(
            f"Choosing the COCO model downloads `{spec.official.filename}`. Without a network, download it "
            f"from {spec.official.url} elsewhere and put it in `{folder}/`, or upload it here (its sha256 is "
            "checked before it is saved)."
        )
        upload = st.file_uploader("Weights file (.pth)", type=["pth"], key="weights_upload")
        if upload is not None:
            try:
                path = save_uploaded(upload.getvalue(), spec.official)
                st.success(f"Saved to {path}. Choose the COCO model above.")
            except (WeightsError, OSError) as exc:
                st.error(str(exc))
