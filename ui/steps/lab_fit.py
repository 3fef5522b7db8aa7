"""L7 · Fit anchors to your boxes — which boxes no anchor catches, best possible recall, k-means anchors."""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st
import torch

from rpn_viz.lab import anchor_fit as af
from rpn_viz.io import box_files
from rpn_viz.lab import shape_kmeans
from rpn_viz.pipeline.anchors import AnchorSpec
from rpn_viz.io.errors import describe_error

from .. import charts, theme
from ..boxes import get_boxes, set_boxes
from ..context import StepContext
from ..figures import show_picture
from ..lab_pictures import fit_sources, unmatched_picture
from ..store import session_store
from ..photo import samples
from ..words import anchor_set_text
from .lab_common import gt_section, lab_anchor_spec, set_lab_anchors

SCOPES = {"photo": "this photo's boxes", "bundled": "the bundled set", "files": "your box files"}
CLUSTER_MARKERS = ("circle", "triangle-up", "triangle-down")  # × 5 colours: 15 clusters, the most k can be
PICTURE_SOURCES = {"model": "the model's anchors", "paper": "the paper's k = 9", "custom": "the lab's custom anchors"}
CACHE_KEY = "lab_fit_stats"


def _sources(ctx: StepContext) -> dict[str, af.AnchorSource]:
    return fit_sources(ctx.trace, lab_anchor_spec())


def _cached_stats(key: tuple, make, what: str) -> af.SetStats:
    """Statistics of a whole set, kept for this session (a few entries: the set or the anchors changed)."""
    def matched() -> af.SetStats:
        with st.spinner(f"Matching every box of the set against {what}…"):
            return make()

    return session_store(CACHE_KEY, 24).get_or_make(key, matched)


# --------------------------------------------------------------------------------------------------
# boxes from files
# --------------------------------------------------------------------------------------------------


def _use_found(ctx: StepContext, found: box_files.ImageBoxes, where: str, key: str) -> None:
    """Offer a file's boxes for this photo: replace the user's boxes or add to them (never silently)."""
    photo = ctx.photo
    boxes = found.scaled(photo.image.image.size)
    labels = ", ".join(sorted(set(found.labels))) or "no label"
    mine = len(get_boxes(photo))
    st.markdown(f"{where}: **{len(boxes)} box{'es' if len(boxes) != 1 else ''}** for {photo.name} ({labels}).")
    c = st.columns(2)
    if c[0].button(f"Use these {len(boxes)} boxes" + (f" instead of your {mine}" if mine else ""), key=f"{key}_use",
                   disabled=not boxes):
        set_boxes(photo, [[round(v, 1) for v in b] for b in boxes])
        st.rerun()
    if mine and c[1].button(f"Add them to your {mine}", key=f"{key}_add", disabled=not boxes):
        set_boxes(photo, get_boxes(photo) + [[round(v, 1) for v in b] for b in boxes])
        st.rerun()


def _file_boxes(ctx: StepContext, bundled: list[box_files.ImageBoxes] | None) -> None:
    photo = ctx.photo
    entry = next((e for e in samples() if e.get("file") == photo.name and e.get("boxes")), None)
    if entry is not None:  # a bundled sample photo that comes with its boxes (assets/samples.json)
        try:
            found = box_files.parse_entry(entry, "samples.json", size=photo.image.original_size)
        except box_files.BoxFileError as exc:
            st.error(describe_error(exc))
        else:
            _use_found(ctx, found, "This sample comes with", "lab_fit_sample")
    if bundled and entry is None:
        try:
            found = box_files.boxes_for_photo(bundled, photo.name, photo.image.original_size, "bundled set")
        except box_files.BoxFileError:
            found = None  # not every photo is in the bundled set: nothing to offer, nothing wrong
        if found is not None and found.boxes:
            _use_found(ctx, found, "The bundled set has", "lab_fit_bundled")
    upload = st.file_uploader("Boxes for this photo from a file: COCO-style JSON or Pascal VOC XML",
                              type=["json", "xml"], key="lab_fit_file",
                              help="Matched to this photo by file name; boxes in the photo's own pixels. "
                                   "Your boxes above stay as they are until you choose to use these.")
    if upload is None:
        return
    try:
        images = box_files.read_box_file(upload.name, upload.getvalue())
        found = box_files.boxes_for_photo(images, photo.name, photo.image.original_size, upload.name)
    except Exception as exc:  # a bad file: one line, and the boxes already entered stay
        st.error(describe_error(exc))
        return
    _use_found(ctx, found, upload.name, "lab_fit_upload")


def _set_images(scope: str, bundled: list[box_files.ImageBoxes] | None) -> tuple[list[box_files.ImageBoxes], str]:
    """The photos and boxes of the chosen whole set, and a key that names them (for the cache)."""
    if scope == "bundled":
        if bundled is None:
            st.info("This copy of the app has no bundled set yet (`assets/dataset/boxes.json` is missing): "
                    "choose *this photo's boxes* or *your box files*.")
            return [], "bundled-missing"
        return bundled, "bundled"
    uploads = st.file_uploader("A folder's worth of box files: one or more COCO JSON or Pascal VOC XML",
                               type=["json", "xml"], accept_multiple_files=True, key="lab_fit_set_files")
    if not uploads:
        st.info("Upload your box files (select every .xml of a VOC `Annotations` folder, or a COCO json).")
        return [], "files-none"
    digest = hashlib.sha256()
    for upload in uploads:
        digest.update(upload.name.encode() + b"\0" + upload.getvalue())
    try:
        return box_files.read_box_files((u.name, u.getvalue()) for u in uploads), digest.hexdigest()
    except Exception as exc:
        st.error(describe_error(exc))
        return [], "files-error"


# --------------------------------------------------------------------------------------------------
# pictures
# --------------------------------------------------------------------------------------------------


def _anchor_text(ctx: StepContext, key: str, index: int, box: list[float]) -> str:
    w, h = box[2] - box[0], box[3] - box[1]
    where = f"{w:.0f}×{h:.0f} at ({(box[0] + box[2]) / 2:.0f}, {(box[1] + box[3]) / 2:.0f})"
    if key == "model" and index >= 0:
        level, row, col, a = ctx.trace.locate(index)
        return f"level {level.name}, cell ({row}, {col}): {level.anchor_shapes[a].label}, {where}"
    return where


def _unmatched_figure(ctx: StepContext, match: af.BoxMatch, source_name: str) -> None:
    """Each box coloured by what training gives it, with its best anchor dotted and that IoU."""
    cats = match.categories
    best = match.best_anchor_boxes

    # drawn once per what it shows: the photo, the anchors' name, the boxes, their best anchors and IoUs
    key = (ctx.trace_key, "lab-fit-unmatched", source_name, tuple(cats), match.boxes.numpy().tobytes(),
           best.numpy().tobytes(), match.best_iou.numpy().tobytes())
    show_picture(key, lambda: unmatched_picture(ctx, match, source_name),
                 ctx.slug(f"lab-fit-unmatched-{source_name.replace(' ', '_')}"),
                 caption="Thick: your boxes (network-input pixels). Dotted: each box's best anchor. "
                         "Labels: the box and the IoU of its best anchor.")


def _shapes_figure(ctx: StepContext, shapes: np.ndarray, fit: shape_kmeans.ShapeFit | None,
                   sources: dict[str, af.AnchorSource], scope_name: str) -> None:
    """Box widths and heights (log–log) with the current anchors' shapes and the fitted ones."""
    markers = {"model": ("square", theme.OKABE_ITO["black"]), "custom": ("diamond", theme.OKABE_ITO["purple"])}
    anchor_shapes = {key: _source_shapes(sources[key]) for key in markers}

    groups: dict[str, np.ndarray] = {}
    styles: dict[str, tuple[str, str, bool, int]] = {}
    # the anchors' colours (black, purple, yellow) are not cluster colours; past five clusters the
    # colours repeat with another marker, so every cluster keeps a look of its own (k goes up to 15)
    colours = [c for c in theme.CYCLE if c not in (theme.OKABE_ITO["yellow"], theme.OKABE_ITO["black"],
                                                   theme.OKABE_ITO["purple"])]
    if fit is not None:
        for c in range(fit.k):
            name = f"your boxes, cluster {c + 1} ({int((fit.assignment == c).sum())})"
            marker = CLUSTER_MARKERS[c // len(colours) % len(CLUSTER_MARKERS)]
            groups[name], styles[name] = shapes[fit.assignment == c], (colours[c % len(colours)], marker, True, 90)
    else:
        name = f"your boxes ({len(shapes)})"
        groups[name], styles[name] = shapes, (theme.GROUND_TRUTH, "circle", True, 90)
    for key, (marker, colour) in markers.items():
        groups[sources[key].name], styles[sources[key].name] = anchor_shapes[key], (colour, marker, False, 260)
    if fit is not None:
        name = f"fitted anchors, k = {fit.k}"
        groups[name] = np.stack([fit.widths, fit.heights], axis=1)
        styles[name] = (theme.OKABE_ITO["yellow"], "cross", True, 500)
    charts.show_chart(charts.points(groups, styles, title=f"Box shapes of {scope_name} and anchor shapes",
                                    x_title="width (network-input pixels)", y_title="height (network-input pixels)"))


def _source_shapes(source: af.AnchorSource) -> np.ndarray:
    """(n, 2) distinct anchor widths and heights of a source (w = size/√ratio, h = size·√ratio)."""
    if isinstance(source, af.GridAnchors):
        return np.array([[s.width, s.height] for s in source.spec.shapes()])
    pairs = [(s, r) for sizes, ratios in zip(source.sizes, source.ratios) for s in sizes for r in ratios]
    return np.unique(np.array([[s / np.sqrt(r), s * np.sqrt(r)] for s, r in pairs]), axis=0)


# --------------------------------------------------------------------------------------------------
# the page
# --------------------------------------------------------------------------------------------------


def _stats_row(stats: af.SetStats, iou: float) -> dict:
    counts = stats.counts()
    return {
        "anchors": stats.name,
        f"best possible recall @ {iou:g}": f"{stats.best_possible_recall(iou):.0%}" if stats.num_boxes else "—",
        "mean best IoU": round(stats.mean_best_iou, 3) if stats.num_boxes else "—",
        "matched ≥ 0.7": counts[af.MATCHED],
        "best match only": counts[af.BEST_MATCH_ONLY],
        "no positive": counts[af.UNMATCHED],
        "per cell": " + ".join(map(str, stats.per_cell)),
        "set": anchor_set_text(stats.source),
    }


def _py_tuple(values: tuple[float, ...]) -> str:
    """Python source of a tuple of numbers: (48,) or (0.5, 1, 2)."""
    return "(" + ", ".join(f"{v:g}" for v in values) + ("," if len(values) == 1 else "") + ")"


def _copy(spec: AnchorSpec) -> None:
    set_lab_anchors(spec)
    st.session_state["lab_fit_copied"] = spec


def render(ctx: StepContext) -> None:
    trace = ctx.trace
    sources = _sources(ctx)
    model = sources["model"]
    st.markdown(
        f"""
Two questions people who train detectors keep asking: **which of my objects gets no positive anchor?** and
**are my anchor sizes right for my data?** Training labels an anchor positive when its IoU with a box is
**≥ 0.7**, and also makes each box's best anchor positive, however low its IoU. A box with no anchor at 0.7
is therefore learnt only from one poor anchor — or not at all, when that anchor overlaps another box more.
Here: this model's anchors ({anchor_set_text(model)}), the paper's k = 9 and the lab's custom anchors (chosen in
**L1**) against your boxes; then anchors fitted to your boxes by k-means (YOLOv2's recipe).
"""
    )
    bundled = box_files.load_bundled()
    gt = gt_section(ctx, "lab_fit_gt")
    with st.expander("Boxes from a file (COCO JSON or Pascal VOC XML)", expanded=not gt.shape[0]):
        _file_boxes(ctx, bundled)

    # ---- 1. this photo: which boxes are missed ---------------------------------------------------
    st.subheader("Which of your boxes do the anchors miss?")
    c = st.columns([3, 2])
    pick = c[0].radio("Anchors", list(PICTURE_SOURCES), format_func=PICTURE_SOURCES.get, horizontal=True,
                      key="lab_fit_source")
    ignore = c[1].checkbox("Ignore anchors crossing the border (the paper's training)", value=False,
                           key="lab_fit_ignore",
                           help="torchvision's RPN (this model) uses every anchor; the paper ignored the "
                                "ones crossing the image border when training.")
    frame = af.trace_frame(trace)
    photo_stats = {key: af.photo_stats(src, frame, gt, ignore) for key, src in sources.items()}
    if gt.shape[0] == 0:
        st.info("No box on this photo yet: draw or type one above, load a box file, or look at a whole set below.")
    else:
        match = photo_stats[pick][1]
        counts = match.counts()
        m = st.columns(3)
        for col, cat in zip(m, af.CATEGORIES):
            col.metric(cat, counts[cat])
        _unmatched_figure(ctx, match, sources[pick].name)
        best = match.best_anchor_boxes
        st.dataframe(
            [{"box": f"GT {i + 1}", "size (input px)": f"{b[2] - b[0]:.0f}×{b[3] - b[1]:.0f}",
              "what training gives it": cat, "best anchor IoU": round(float(match.best_iou[i]), 3),
              "best anchor": _anchor_text(ctx, pick, int(match.best_anchor[i]), best[i].tolist()),
              "anchors positive at ≥ 0.7": int(match.num_matched[i]),
              "positive as best anchor": int(match.num_best_match[i])}
             for i, (b, cat) in enumerate(zip(match.boxes.tolist(), match.categories))],
            hide_index=True,
        )

    # ---- 2. best possible recall and the fit ------------------------------------------------------
    st.subheader("Best possible recall, and anchors fitted to your boxes")
    st.markdown(
        "**Best possible recall** at an IoU: the share of boxes whose best anchor reaches it — what a perfect head "
        "could recall by choosing anchors (it still has to move them). Boxes are scaled as the model resizes each "
        "photo, so all anchor sets are compared on the same network input."
    )
    c = st.columns([3, 2, 2, 1])
    scope = c[0].radio("Boxes", list(SCOPES), format_func=SCOPES.get, horizontal=True, key="lab_fit_scope")
    iou = c[1].select_slider("IoU for best possible recall", [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], value=0.7,
                             key="lab_fit_iou")
    resize = af.Resize.of(trace)
    if scope == "photo":
        images, set_key = [], "photo"
        shapes = (torch.stack([gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]], dim=1).double().numpy()
                  if gt.shape[0] else np.zeros((0, 2)))
        scope_name = "this photo"
    else:
        images, set_key = _set_images(scope, bundled)
        shapes = shape_kmeans.box_shapes(images, resize)
        with_size = sum(1 for im in images if im.size is not None and im.boxes)
        scope_name = f"{SCOPES[scope]} ({with_size} photos)"
        skipped = sum(1 for im in images if im.size is None)
        if skipped:
            st.warning(f"{skipped} photo(s) of the set have no size in their box file and are left out "
                       "(the model's resize depends on it).")

    def stats_of(key: str, source: af.AnchorSource) -> af.SetStats:
        if scope == "photo":
            return photo_stats[key][0] if key in photo_stats else af.photo_stats(source, frame, gt, ignore)[0]
        return _cached_stats((set_key, source, resize, ignore),
                             lambda: af.set_stats(source, images, resize, ignore), source.name)

    distinct = len(np.unique(shapes, axis=0)) if len(shapes) else 0
    fit = None
    if distinct:
        k_max = min(15, distinct)  # the slider keeps its k when the set changes, within the new range
        st.session_state["lab_fit_k"] = min(int(st.session_state.get("lab_fit_k", min(9, k_max))), k_max)
        k = c[2].slider("k (anchor shapes to fit)", 1, k_max, key="lab_fit_k") if k_max > 1 else 1
        seed = int(c[3].number_input("Seed", 0, 9999, 0, key="lab_fit_seed"))
        fit = shape_kmeans.kmeans_shapes(shapes, int(k), seed)
    rows = [stats_of(key, src) for key, src in sources.items()]
    if fit is not None:
        stride = sources["custom"].spec.stride
        fitted = fit.anchors(stride)
        fitted = af.ShapeAnchors(fitted.sizes, fitted.ratios, stride, f"fitted k = {fit.k}")
        grid = shape_kmeans.as_grid(fit, stride)
        rows.append(stats_of("fitted", fitted))
        rows.append(stats_of("grid", af.GridAnchors(grid, "fitted, as sizes × ratios")))
    if not len(shapes):
        st.info("No boxes in this set yet.")
        return
    st.dataframe([_stats_row(r, iou) for r in rows], hide_index=True)
    st.caption(f"{rows[0].num_boxes} boxes on {rows[0].num_images} photo(s). Matched / best match only / no positive: "
               "the training rule above, per anchor set. Anchors sit on a grid of cell centres, so even a perfect "
               "shape misses a box centred between two cells.")
    if scope != "photo" and any(lbl for lbl in rows[0].labels):
        by_label = rows[0].counts_by_label()
        with st.expander(f"Per object category, with {rows[0].name}"):
            st.dataframe([{"category": name, **counts} for name, counts in sorted(by_label.items())], hide_index=True)
    _shapes_figure(ctx, shapes, fit, sources, scope_name)
    if fit is None:
        return

    st.markdown(f"**The {fit.k} fitted shapes** (k-means with 1 − IoU, seed {fit.seed}; mean IoU of a box with "
                f"its nearest shape, centred: **{fit.mean_iou:.3f}**):")
    st.dataframe(
        [{"shape": i + 1, "width": round(float(w), 1), "height": round(float(h), 1), "size √(w·h)": round(float(s), 1),
          "ratio h/w": round(float(r), 3), "boxes": n}
         for i, (w, h, s, r, n) in enumerate(zip(fit.widths, fit.heights, fit.sizes, fit.ratios, fit.cluster_sizes()))],
        hide_index=True,
    )
    model_row, custom_row, fit_row, grid_row = rows[0], rows[2], rows[3], rows[4]
    head_k = model.per_cell
    st.markdown(
        f"""
**If these anchors replaced the model's:** best possible recall at IoU {iou:g} would go from
**{model_row.best_possible_recall(iou):.0%}** (the model's) and **{custom_row.best_possible_recall(iou):.0%}**
(custom) to **{fit_row.best_possible_recall(iou):.0%}**, and the mean best IoU from **{model_row.mean_best_iou:.2f}**
and **{custom_row.mean_best_iou:.2f}** to **{fit_row.mean_best_iou:.2f}**, with {fit.k} anchors per cell at stride
{stride} instead of the model's {' + '.join(map(str, head_k))} on {len(head_k)} levels.

But the trained head's deltas were learned for **its own anchors**: for each of its {head_k[0]} anchors per cell
it outputs offsets in units of *that* anchor's width and height, so with new anchors it has to be trained again
(**L2 · Custom anchors vs the trained head** shows what its current deltas do on other anchors). Best possible
recall is the ceiling the anchors set; what the trained network reaches is in **L3 · Recall**.

torchvision's `AnchorGenerator` puts every size with every ratio, so as the lab's custom anchors these shapes
become sizes {', '.join(f'{s:g}' for s in grid.sizes)} × ratios {', '.join(f'{r:g}' for r in grid.ratios)} =
**{grid.k} anchors per cell** (best possible recall {grid_row.best_possible_recall(iou):.0%}):
`AnchorGenerator(sizes=({_py_tuple(grid.sizes)},), aspect_ratios=({_py_tuple(grid.ratios)},))`.
"""
    )
    st.button(f"Copy the fitted anchors into the lab's custom anchors ({grid.k} per cell, stride {stride})",
              key="lab_fit_copy", on_click=_copy, args=(grid,), type="primary")
    copied = st.session_state.get("lab_fit_copied")
    if copied is not None and copied == lab_anchor_spec():
        st.success(f"The lab's custom anchors are now sizes {', '.join(f'{s:g}' for s in copied.sizes)} × ratios "
                   f"{', '.join(f'{r:g}' for r in copied.ratios)}, stride {copied.stride}: see them in L1, and in "
                   "the *custom anchors (L1)* row above.")
