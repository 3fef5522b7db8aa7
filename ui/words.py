"""Sentences for people, built from the numbers ``rpn_viz`` returns (it returns numbers, not prose).

One function per thing the pages put into words: one anchor's decoding with the numbers filled in
(:func:`decode_formulas`), how a set of candidate boxes was made (:func:`candidate_note`), what
decoding a trained head's deltas against custom anchors did (:func:`custom_decode_text`), an
anchor set in one line (:func:`anchor_set_text`), and the followed anchor's life, one label per step
(:func:`stage_items`) and where it stopped (:func:`verdict`), the model / weights / device line
(:func:`model_line`), and what was changed in a photo before the network (:func:`photo_note`). No Streamlit here: the pages and the
slides place the text, tests read it.
"""

from __future__ import annotations

from typing import Sequence

from rpn_viz.io import adaptations as facts
from rpn_viz.lab.anchor_fit import AnchorSource, GridAnchors, ModelAnchors, ShapeAnchors
from rpn_viz.lab.baselines import CandidateSet, NetworkRun, SearchRun, WindowLayout
from rpn_viz.lab.follow import History
from rpn_viz.lab.custom_anchors import CustomAnchorDecode
from rpn_viz.model.models import PAPER_RPN, LoadedModel
from rpn_viz.pipeline.regression import DecodeExplanation

from .scene import Scene


def model_line(loaded: LoadedModel, markdown: bool = False) -> str:
    """"Model: … · weights: … · device: …", under every page's title and on every slide (``markdown``: the
    labels bold and the device as code). A COCO title ("… (COCO)") would mislead for custom or untrained
    weights, so only official weights and the paper's RPN (whose title names no weights) get the title."""
    named = loaded.weights.kind == "official" or loaded.name == PAPER_RPN
    bold, code = ("**", "`") if markdown else ("", "")
    return (f"{bold}Model:{bold} {loaded.spec.title if named else loaded.name} · {bold}weights:{bold} "
            f"{loaded.weights.label} · {bold}device:{bold} {code}{loaded.device}{code}")


def _numbers(values: Sequence[float]) -> str:
    return ", ".join(f"{v:g}" for v in values)


def decode_formulas(ex: DecodeExplanation) -> list[str]:
    """The four decoding lines of one anchor with its numbers filled in (plain text)."""
    return [
        f"x = xa + dx·wa = {ex.xa:.1f} + {ex.dx:+.3f}·{ex.wa:.1f} = {ex.x:.1f}",
        f"y = ya + dy·ha = {ex.ya:.1f} + {ex.dy:+.3f}·{ex.ha:.1f} = {ex.y:.1f}",
        f"w = wa·exp(dw) = {ex.wa:.1f}·exp({ex.dw:+.3f}) = {ex.w:.1f}",
        f"h = ha·exp(dh) = {ex.ha:.1f}·exp({ex.dh:+.3f}) = {ex.h:.1f}",
    ]


def candidate_note(candidates: CandidateSet) -> str:
    """How one method's candidate boxes were made, and what that means for the comparison."""
    made = candidates.made
    if isinstance(made, WindowLayout):
        return (f"{made.positions} positions ({made.grid[0]}×{made.grid[1]}, every {made.stride} px) × k = {made.k} "
                "shapes. Generating them is instant; a detector would then have to classify every one.")
    if isinstance(made, SearchRun):
        (sw, sh), (w, h) = made.searched_size, made.image_size
        return f"{made.mode} mode on a {sw}×{sh} copy of the {w}×{h} image, CPU."
    if isinstance(made, NetworkRun):
        return (f"{made.model}, {made.weights}, on {made.device}: preprocessing, backbone, head, decoding and NMS; "
                "the backbone's features are shared with the detector, so proposals come almost free.")
    raise TypeError(f"no words for {type(made).__name__}")


def custom_decode_text(out: CustomAnchorDecode) -> str:
    """Why custom anchors cannot be decoded against (incompatible), or what decoding against them did."""
    if not out.compatible:
        i = out.mismatch
        k = out.model_k[i]
        return (
            f"The head's box-regression layer outputs 4 numbers for each of the {k} anchors per cell it was trained "
            f"with on level {out.level_names[i]} ({len(out.model_sizes[i])} sizes × {len(out.model_ratios[i])} ratios "
            f"= {k} × 4 = {4 * k} channels); your set has {out.custom_k[i]} anchors per cell. There is no output for "
            "an anchor the head was not built for, and nothing says which outputs would belong to which of yours: "
            f"choose {k} anchors per cell (e.g. as many sizes and ratios as the model has) to decode against them."
        )
    metrics = out.metrics
    lines = [
        f"Anchor position a of every cell now gets your a-th anchor ({', '.join(str(k) for k in out.custom_k)} per "
        f"cell); the head's outputs are unchanged. For the anchors behind the model's top "
        f"{int(metrics['anchors compared'])} proposals, the box decoded from your anchor overlaps the model's own box "
        f"with IoU {metrics['same anchor IoU (mean)']:.2f} on average (1 = identical), and its area is "
        f"{metrics['area ratio (median)']:.2f}× the model's (median).",
        "The network never sees the anchors: they exist only when its outputs are decoded (x = xa + dx·wa, "
        "w = wa·exp(dw)). Moving the anchor sliders therefore changes the lab's tiling and labels, but not the "
        "network: the head keeps predicting offsets for the anchors it was trained with, and decoded against "
        "others they land scaled and shifted by exactly your change.",
    ]
    if out.same_set:
        lines.append("This is the model's own anchor set, so the proposals are the model's own.")
    if not out.trained:
        lines.append(
            "These weights are untrained: every delta is ~0, so every decoded box is just its anchor and every "
            "objectness is 0.5 — the comparison only shows your anchors versus the model's."
        )
    return " ".join(lines)


def anchor_set_text(source: AnchorSource) -> str:
    """An anchor set in one line: anchors per cell, their sizes and ratios, the stride(s)."""
    if isinstance(source, ModelAnchors):
        levels, strides = len(source.sizes), ", ".join(map(str, source.strides))
        if len(set(source.sizes)) == 1 and len(set(source.ratios)) == 1:
            return (f"k = {source.per_cell[0]} per cell ({_numbers(source.sizes[0])} px × "
                    f"{_numbers(source.ratios[0])}) on {levels} level{'s' if levels > 1 else ''}, strides {strides}")
        return f"{sum(source.per_cell)} shapes on {levels} levels, strides {strides}"
    if isinstance(source, GridAnchors):
        spec = source.spec
        return f"k = {spec.k} per cell ({_numbers(spec.sizes)} px × {_numbers(spec.ratios)}), stride {spec.stride}"
    if isinstance(source, ShapeAnchors):
        shapes = ", ".join(f"{s:.0f} px·{r:.2g}" for s, r in zip(source.sizes, source.ratios))
        return f"k = {len(source.sizes)} per cell ({shapes}), stride {source.stride}"
    raise TypeError(f"no words for {type(source).__name__}")


def stage_items(h: History, scene: Scene) -> dict[str, str]:
    """One short label per pipeline step (step key → text): cell → anchor → score → deltas → box → NMS → rank."""
    s = scene.settings
    dx, dy, dw, dh = h.deltas
    items = {
        "features": f"Cell: level '{h.level_name}', row {h.row}, col {h.col}",
        "anchors": f"Anchor: {h.shape.label}",
        "head": f"Score: logit {h.logit:+.2f} → {h.prob:.3f}",
        "regression": f"Deltas: {dx:+.2f}, {dy:+.2f}, {dw:+.2f}, {dh:+.2f}",
    }
    if h.stage == "beyond pre-NMS top-N":
        items["before_nms"] = f"✗ Not in its level's top {s.pre_nms_top_n} (rank {h.level_rank:,})"
    elif h.stage == "too small":
        x1, y1, x2, y2 = h.clipped_box
        items["before_nms"] = f"✗ Too small: {x2 - x1:.1f}×{y2 - y1:.1f} px (min {s.min_size:g})"
    elif h.stage == "low score":
        items["before_nms"] = f"✗ Score {h.prob:.3f} < threshold {s.score_thresh:g}"
    else:
        x1, y1, x2, y2 = h.clipped_box
        clip = ", clipped" if h.clipped else ""
        items["before_nms"] = f"Box {x2 - x1:.0f}×{y2 - y1:.0f} px{clip}; #{h.nms_rank} of {h.nms_inputs:,}"
    if h.stage == "suppressed":
        items["nms"] = f"✗ NMS: removed at step {h.suppressor_step + 1} by #{h.suppressor_flat} (IoU {h.suppress_iou:.2f})"
    elif h.nms_step is not None:
        items["nms"] = f"NMS: kept at step {h.nms_step + 1}, removed {len(h.removed)}"
    else:
        items["nms"] = "NMS: never reached it"
    if h.final_rank is not None:
        items["proposals"] = f"Proposal #{h.final_rank}"
    elif h.stage == "beyond post-NMS top-N":
        items["proposals"] = f"✗ Kept #{h.kept_rank}, beyond top {s.post_nms_top_n}"
    else:
        items["proposals"] = "Not a proposal"
    return items


def verdict(h: History, scene: Scene) -> str:
    """One sentence: where this anchor ended up and why."""
    s = scene.settings
    if h.stage == "proposal":
        return f"it became **proposal #{h.final_rank}**."
    if h.stage == "beyond pre-NMS top-N":
        return (f"it stopped **before NMS**: its logit ranks {h.level_rank:,} on level '{h.level_name}', outside "
                f"the pre-NMS top {s.pre_nms_top_n}.")
    if h.stage == "too small":
        return f"it stopped **before NMS**: after clipping it is narrower than {s.min_size:g} px."
    if h.stage == "low score":
        return f"it stopped **before NMS**: objectness {h.prob:.3f} is below the score threshold {s.score_thresh:g}."
    if h.stage == "suppressed":
        return (f"it stopped **at NMS**: anchor #{h.suppressor_flat}, kept at step {h.suppressor_step + 1}, "
                f"overlaps it with IoU {h.suppress_iou:.2f} > {s.nms_iou:g}.")
    return f"NMS kept it (#{h.kept_rank}), but only the first {s.post_nms_top_n} become proposals."


_FORMAT_NAMES = {"WEBP": "WebP"}
_MODE_NAMES = {"1": "1-bit black-and-white image", "L": "grayscale image", "LA": "grayscale image",
               "La": "grayscale image"}


def adaptation_text(fact: facts.Adaptation) -> str:
    """One thing ``load_image`` changed in a photo, in words, e.g. "rotated upright using the EXIF orientation"."""
    if isinstance(fact, facts.FirstFrame):
        if fact.source_format == "TIFF":
            return f"multi-page TIFF: first of {fact.count} pages"
        return f"animated {_FORMAT_NAMES.get(fact.source_format, fact.source_format)}: first of {fact.count} frames"
    if isinstance(fact, facts.ModeConverted):
        return f"{_MODE_NAMES.get(fact.mode, f'{fact.mode} image')} converted to RGB"
    if isinstance(fact, facts.BitDepthScaled):
        return f"{fact.bits}-bit grayscale converted to 8-bit RGB"
    if isinstance(fact, facts.RangeStretched):
        low, high = (f"{int(fact.low)}", f"{int(fact.high)}") if fact.kind == "integer" else (f"{fact.low:g}", f"{fact.high:g}")
        return f"32-bit {fact.kind} image rescaled from its value range {low}..{high} to 8-bit RGB"
    if isinstance(fact, facts.UnitFloatScaled):
        return "32-bit float image (0..1) converted to 8-bit RGB"
    if isinstance(fact, facts.NoFiniteValues):
        return "32-bit float image has no finite values; shown black"
    if isinstance(fact, facts.TransparencyFlattened):
        return "transparent areas filled with white"
    if isinstance(fact, facts.ExifRotated):
        return "rotated upright using the EXIF orientation"
    if isinstance(fact, facts.ExifUnreadable):
        return "EXIF data unreadable; orientation not applied"
    if isinstance(fact, facts.Downscaled):
        return f"downscaled from {fact.original[0]}×{fact.original[1]} to {fact.working[0]}×{fact.working[1]}"
    raise TypeError(f"not an adaptation: {fact!r}")


def photo_note(adapted: Sequence[facts.Adaptation]) -> str | None:
    """What was changed in a photo before the network, in order, joined with "; " (the Input page's note,
    e.g. "grayscale image converted to RGB; downscaled from 6000×4000 to 2048×1365"); None: used as is."""
    return "; ".join(adaptation_text(fact) for fact in adapted) or None


def device_note(device: str, name: str, tf32: dict[str, bool]) -> str:
    """Where the network ran, and why a GPU's numbers differ slightly from the CPU's (``rpn_viz.model.device``)."""
    chosen = f"Device: **{name}** (choose with the `RPN_VIZ_DEVICE` setting: cpu, cuda, cuda:N or auto). "
    if not device.startswith("cuda"):
        return chosen + ("Every \"equal to torchvision\" on these pages means on this device; on a GPU, TF32 "
                         "convolutions make features differ from the CPU's by about 1e-3, so proposals differ slightly.")
    allowed = [what for what, on in tf32.items() if on]
    state = f"TF32 is **on** for {' and '.join(allowed)}" if allowed else "TF32 is **off**"
    off = [what for what, on in tf32.items() if not on]
    return chosen + (f"{state}{' (off for ' + ' and '.join(off) + ')' if allowed and off else ''}, PyTorch's "
                     "default: features differ from the CPU's by about 1e-3, so this GPU's proposals differ "
                     "slightly from a CPU's. Every \"equal to torchvision\" on these pages means on this device.")
