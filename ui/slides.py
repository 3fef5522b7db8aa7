"""This photo's walk-through as a slide deck (PDF): a title page, then one 16:9 page per pipeline step
(and, on request, per lab page with a main picture: :mod:`ui.lab_slides`).

Each step's page has the step's main picture — drawn by :mod:`ui.step_pictures`, the code the app
draws with, zoomed to projector resolution (:func:`slide_picture`: at least 1920 pixels wide) and embedded as
the very JPEG the app shows — the step's title, one sentence saying what it shows with this photo's
numbers, 2–4 key numbers, the model / weights / device line, the post-processing settings and a link
to that step in the live app. A followed anchor is drawn on every picture and named on every page.

The PDF is composed with fpdf2: its text is real text (DejaVu Sans, the app's font, embedded as a
subset with a Unicode map, so it can be selected and searched) and it embeds JPEG bytes as they are,
so eight 1920-pixel pictures stay within a few megabytes. No Streamlit here: the app (``ui.present``)
and ``rpn-viz slides`` (:mod:`rpn_viz.commands.slides`) both call :func:`make_deck`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlencode

from fpdf import FPDF
from PIL import Image

from rpn_viz.pipeline.filtering import FilterSettings
from rpn_viz.lab.follow import History
from rpn_viz.pipeline.nms import NmsStep

from . import theme
from .picture_frame import font_path, jpeg, zoomed
from .scene import Scene
from .step_pictures import STEP_KEYS, Choices, anchor_cell, decoded_anchor, head_map, main_picture, nms_index, nms_steps
from .steps import STEPS
from .lab_slides import LabInputs, LabPage, lab_page, left_out_line, plan
from .words import model_line, stage_items, verdict

ZOOM = 1920 / 990  # a screen picture (900-pixel drawing area, ~990 with its axes) becomes just over 1920 pixels wide:
# no more pixels than a projector shows, so a deck with the lab pages stays within 12 MB
MIN_WIDTH, MAX_ZOOM = 1920, 3.2  # a picture narrower than a projector (a tall photo) is drawn larger, up to 3.2×
MAX_BYTES = 12_000_000  # a lab page whose picture would take the deck past this is left out (the title page says so)
OVERHEAD_BYTES = 250_000  # what is not a picture: the fonts' subsets, the text, the PDF's structure
PAGE_W, PAGE_H = 338.667, 190.5  # mm: 13.333 × 7.5 inches, the 16:9 slide size of presentation programs
MARGIN = 12.0
PANEL_W = 98.0  # the text column on the right of a step's picture
FONT = "DejaVu"
INK, GREY = (0, 0, 0), (90, 90, 90)
TITLES = {step.key: step.title for step in STEPS}
SUMMARIES = {step.key: step.summary for step in STEPS}
Progress = Callable[[int, int, str], None]  # (pages done, pages in all, what comes next)


@dataclass(frozen=True)
class Source:
    """Where the deck's photo and model come from, and the app to link back to."""

    photo_name: str
    credit: str  # a sample's credit, or "your photo"
    licence: str | None  # a sample's licence (None for your photo)
    model_key: str  # the app's ?model= value ("official:<name>", "shipped:paper_rpn", ...)
    url: str  # the app's address (the page's own in the app; rpn-viz slides --url)
    sample_title: str | None = None  # ?sample= when the photo is a bundled sample


@dataclass(frozen=True)
class StepPage:
    """The words of one step's page."""

    title: str
    sentence: str
    numbers: list[tuple[str, str]]  # (value, what it is), 2–4 of them


def settings_line(s: FilterSettings) -> str:
    """The post-processing settings in one line."""
    return (f"Post-processing: NMS IoU {s.nms_iou:g} · pre-NMS top-N {s.pre_nms_top_n:,} per level · "
            f"post-NMS top-N {s.post_nms_top_n:,} · score ≥ {s.score_thresh:g} · min size {s.min_size:g} px")


def app_url(source: Source, scene: Scene, step_key: str, found: History | None) -> str:
    """The app's address opening ``step_key`` with this photo (a sample's), model, settings and followed anchor."""
    s = scene.settings
    query = {"step": step_key, "model": source.model_key}
    if source.sample_title is not None:
        query.update(source="Sample", sample=source.sample_title)
    query.update(nms_iou=f"{s.nms_iou:g}", pre_nms=s.pre_nms_top_n, post_nms=s.post_nms_top_n, score=f"{s.score_thresh:g}")
    if found is not None:
        query["follow"] = found.flat_index
    return f"{source.url.split('?')[0]}?{urlencode(query)}"


def plain(text: str) -> str:
    """Markdown emphasis off (the PDF's text is plain)."""
    return text.replace("**", "")


def step_page(step_key: str, scene: Scene, found: History | None, choices: Choices,
              replay: Callable[[], list[NmsStep]]) -> StepPage:
    """One step's sentence and key numbers, from this trace and result."""
    trace, result, s = scene.trace, scene.result, scene.settings
    counts = list(result.counts().values())  # candidates, after min size, after threshold, after NMS, proposals
    anchors = int(trace.anchors.shape[0])
    if step_key == "input":
        (ow, oh), (iw, ih) = trace.preprocess.original_size, trace.preprocess.input_size
        scale = trace.preprocess.scale[0]
        return StepPage(TITLES[step_key], f"The {ow}×{oh} photo is resized to {iw}×{ih} pixels (× {scale:.3f}) and "
                        "normalised with ImageNet's mean and standard deviation: this is what the network sees.",
                        [(f"{ow}×{oh}", "photo (pixels)"), (f"{iw}×{ih}", "network input"), (f"× {scale:.3f}", "scale")])
    if step_key == "features":
        level = main_level(scene, found, choices.feat_level)
        (sy, sx), (h, w), c = level.stride, level.grid, int(level.features.shape[0])
        return StepPage(TITLES[step_key], f"The backbone turns the input into {len(trace.levels)} feature map(s); level "
                        f"'{level.name}' has {h}×{w} cells, one every {sx} pixels, each a vector of {c} numbers "
                        "(their mean is drawn).",
                        [(f"{h}×{w}", f"grid of level '{level.name}'"), (f"{sx} px", "stride"), (f"{c}", "channels"),
                         (f"{len(trace.levels)}", "feature levels")])
    if step_key == "anchors":
        level, row, col = anchor_cell(scene, found, choices)
        k = len(level.anchor_shapes)
        sizes = ", ".join(f"{v:g}" for v in sorted({a.size for a in level.anchor_shapes}))
        ratios = ", ".join(f"{v:g}" for v in sorted({a.ratio for a in level.anchor_shapes}))
        return StepPage(TITLES[step_key], f"Every cell of level '{level.name}' carries the same k = {k} anchors "
                        f"(sizes {sizes} px, height:width {ratios}); cell ({row}, {col}) is drawn. Over every "
                        f"level that makes {anchors:,} anchors.",
                        [(f"{k}", "anchors per cell"), (f"{anchors:,}", "anchors in all"), (f"({row}, {col})", "cell drawn")])
    if step_key == "head":
        level, shown, _ = head_map(scene, found, choices)
        top = float(trace.logits.sigmoid().max())
        return StepPage(TITLES[step_key], "A 3×3 convolution and two 1×1 convolutions give every anchor an objectness "
                        f"and four box deltas; the map shows the objectness of level '{level.name}' ({shown}).",
                        [(f"{anchors:,}", "anchors scored"), (f"{5 * anchors:,}", "numbers out (1 + 4 each)"),
                         (f"{top:.3f}", "top objectness")])
    if step_key == "regression":
        flat, ex = decoded_anchor(scene, found)
        prob = float(trace.logits[flat].sigmoid())
        bw, bh = ex.box[2] - ex.box[0], ex.box[3] - ex.box[1]
        which = "the followed anchor" if found is not None else "the highest-scoring anchor"
        return StepPage(TITLES[step_key], f"Anchor #{flat}, {which}, is moved by its deltas (Δx {ex.dx:+.2f}, "
                        f"Δy {ex.dy:+.2f}, Δw {ex.dw:+.2f}, Δh {ex.dh:+.2f}) into its box.",
                        [(f"#{flat}", "anchor"), (f"{prob:.3f}", "objectness"), (f"{ex.wa:.0f}×{ex.ha:.0f}", "anchor size"),
                         (f"{bw:.0f}×{bh:.0f}", "box size")])
    if step_key == "before_nms":
        reach = result.prob[result.nms_input_pos]
        top = f"{float(reach.max()):.3f}" if reach.numel() else "–"
        return StepPage(TITLES[step_key], f"Of {counts[0]:,} candidates (the top {s.pre_nms_top_n:,} of each level), "
                        f"{counts[2]:,} are at least {s.min_size:g} px after clipping and score at least "
                        f"{s.score_thresh:g}: they go to NMS. The best {min(counts[2], choices.before_drawn):,} are drawn.",
                        [(f"{counts[0]:,}", "candidates"), (f"{counts[1]:,}", "after min size"),
                         (f"{counts[2]:,}", "into NMS"), (top, "top score")])
    if step_key == "nms":
        shown = nms_index(replay(), choices) + 1 if counts[2] else 0
        return StepPage(TITLES[step_key], "Greedy NMS keeps the best remaining box and removes the boxes of its level "
                        f"that overlap it with IoU above {s.nms_iou:g}: {counts[2]:,} boxes in, {counts[3]:,} kept. "
                        f"Step {shown} is drawn.",
                        [(f"{counts[2]:,}", "into NMS"), (f"{counts[3]:,}", "kept"),
                         (f"{counts[2] - counts[3]:,}", "removed"), (f"{s.nms_iou:g}", "NMS IoU")])
    if step_key == "proposals":
        top = f"{float(result.scores[0]):.3f}" if counts[4] else "–"
        return StepPage(TITLES[step_key], f"The best {s.post_nms_top_n:,} boxes NMS kept are the proposals: "
                        f"{counts[4]:,} go to the second stage, which crops each from the feature maps. The best "
                        f"{min(counts[4], 20)} are drawn with rank and score.",
                        [(f"{counts[4]:,}", "proposals"), (top, "top score"), (f"{s.post_nms_top_n:,}", "post-NMS top-N")])
    raise KeyError(step_key)


def main_level(scene: Scene, found: History | None, name: str | None):
    """The level the features picture shows (the followed anchor's, the chosen one, or the first)."""
    if found is not None:
        return scene.trace.levels[found.level]
    return next((lv for lv in scene.trace.levels if lv.name == name), scene.trace.levels[0])


def slide_picture(draw: Callable[[], Image.Image]) -> Image.Image:
    """A picture as the screen draws it, at projector resolution: :data:`ZOOM` times larger, and at least
    :data:`MIN_WIDTH` pixels wide unless that takes more than :data:`MAX_ZOOM` (a very tall photo)."""
    with zoomed(ZOOM):
        image = draw()
    if image.width < MIN_WIDTH:
        with zoomed(min(MAX_ZOOM, ZOOM * MIN_WIDTH / image.width * 1.01)):  # 1 %: sizes round to whole pixels
            image = draw()
    return image


# --- the PDF ------------------------------------------------------------------------------------------

class _Deck(FPDF):
    """16:9 pages in DejaVu Sans, with the helpers the pages share."""

    def __init__(self) -> None:
        super().__init__(orientation="landscape", unit="mm", format=(PAGE_H, PAGE_W))
        self.set_auto_page_break(False)
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.add_font(FONT, "", str(font_path()))
        self.add_font(FONT, "B", str(font_path(bold=True)))
        self.set_creator("rpn_viz")

    def text_at(self, x: float, y: float, w: float, text: str, size: float, bold: bool = False,
                colour: tuple[int, int, int] = INK, link: str = "") -> float:
        """Wrapped text in a box ``w`` wide from (x, y); returns the y under it."""
        self.set_font(FONT, "B" if bold else "", size)
        self.set_text_color(*colour)
        self.set_xy(x, y)
        self.multi_cell(w, size * 0.45, text, align="L", link=link, new_x="LMARGIN", new_y="NEXT")
        return self.get_y()

    picture_bytes = 0  # the JPEG bytes embedded so far

    def picture(self, data: bytes, size: tuple[int, int], x: float, y: float, w: float, h: float) -> None:
        """A JPEG fitted into the box (x, y, w, h), centred, aspect kept."""
        self.picture_bytes += len(data)
        fit = min(w / size[0], h / size[1])
        pw, ph = size[0] * fit, size[1] * fit
        self.image(io.BytesIO(data), x + (w - pw) / 2, y + (h - ph) / 2, pw, ph)

    def footer_lines(self, lines: list[str], link: str, page: str) -> None:
        """Small grey lines at the foot of the page, then the link to this view in the live app, and the page number."""
        self.set_font(FONT, "", 9)
        rows = sum(len(self.multi_cell(PAGE_W - 2 * MARGIN - 20, 9 * 0.45, line, dry_run=True, output="LINES"))
                   for line in lines)
        y = PAGE_H - MARGIN - rows * 4.05 - 3.6
        for line in lines:
            y = self.text_at(MARGIN, y, PAGE_W - 2 * MARGIN - 20, line, 9, colour=GREY)
        self.text_at(MARGIN, y, PAGE_W - 2 * MARGIN - 20, link, 8, colour=theme_rgb(theme.OKABE_ITO["blue"]), link=link)
        self.set_font(FONT, "", 10)
        self.set_text_color(*GREY)
        self.set_xy(PAGE_W - MARGIN - 20, PAGE_H - MARGIN - 4)
        self.cell(20, 4, page, align="R")


def theme_rgb(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)


def _numbers(pdf: _Deck, x: float, y: float, numbers: list[tuple[str, str]]) -> float:
    for value, label in numbers:
        y = pdf.text_at(x, y, PANEL_W, value, 24, bold=True)
        y = pdf.text_at(x, y, PANEL_W, label, 11, colour=GREY) + 2.5
    return y


def _title_page(pdf: _Deck, scene: Scene, source: Source, found: History | None, lab: bool = False) -> None:
    """The photo, its credit and licence, the model, the settings and the followed anchor (the foot is written
    last, by :func:`_title_footer`; ``lab``: room for its lines about the lab pages)."""
    pdf.add_page()
    loaded = scene.trace.model
    photo = jpeg(scene.trace.image)
    top = pdf.text_at(MARGIN, MARGIN, PAGE_W - 2 * MARGIN, "How a Region Proposal Network finds objects", 28, bold=True)
    top = pdf.text_at(MARGIN, top + 1, PAGE_W - 2 * MARGIN, f"Step by step through Faster R-CNN's first stage, on "
                      f"{source.photo_name}", 15, colour=GREY) + 5
    box_h = PAGE_H - top - MARGIN - 16 - (13 if lab else 0)  # 3 more lines in the foot: the lab pages, left out
    pdf.picture(photo, scene.trace.image.size, MARGIN, top, PAGE_W - 3 * MARGIN - PANEL_W - 20, box_h)
    x, y = PAGE_W - MARGIN - PANEL_W - 20, top
    width = PANEL_W + 20
    y = pdf.text_at(x, y, width, "Photo", 11, colour=GREY)
    y = pdf.text_at(x, y, width, source.credit, 13) + 1
    if source.licence:
        y = pdf.text_at(x, y, width, f"Licence: {source.licence}", 13) + 1
    y = pdf.text_at(x, y + 3, width, "Model", 11, colour=GREY)
    y = pdf.text_at(x, y, width, model_line(loaded).removeprefix("Model: "), 13) + 1
    y = pdf.text_at(x, y + 3, width, "Settings", 11, colour=GREY)
    y = pdf.text_at(x, y, width, settings_line(scene.settings).removeprefix("Post-processing: "), 13) + 1
    if found is not None:
        y = pdf.text_at(x, y + 3, width, "Followed proposal (purple on every page)", 11, colour=GREY)
        y = pdf.text_at(x, y, width, f"Anchor #{found.flat_index} (level '{found.level_name}', cell ({found.row}, "
                        f"{found.col}), {found.shape.label}): {plain(verdict(found, scene))}", 13,
                        colour=theme_rgb(theme.FOLLOWED)) + 1


def _title_footer(pdf: _Deck, scene: Scene, source: Source, found: History | None, lab_keys: list[str],
                  left_out: dict[str, str]) -> None:
    """The title page's foot, written last (it names the lab pages that made it into the deck): the pages,
    the lab pages left out and why, the link to the live app."""
    last, pdf.page = pdf.page, 1
    lines = [f"{len(STEP_KEYS)} steps: " + " · ".join(TITLES[k] for k in STEP_KEYS)]
    if lab_keys:
        lines.append(f"{len(lab_keys)} lab pages: " + " · ".join(TITLES[k] for k in lab_keys))
    if left_out:
        lines.append(left_out_line(left_out))
    pdf.footer_lines(lines, app_url(source, scene, STEP_KEYS[0], found), "1 / {nb}")
    pdf.page = last


def _page(pdf: _Deck, title: str, summary: str, sentence: str, numbers: list[tuple[str, str]],
          picture: Image.Image | None, follow_line: str | None, footer: list[str], link: str) -> None:
    """One page: title and summary, the picture on the left (or a grey note), the words and numbers on the
    right, the followed anchor's line, then the footer lines and the link to this view in the live app."""
    pdf.add_page()
    top = pdf.text_at(MARGIN, MARGIN, PAGE_W - 2 * MARGIN - 20, title, 26, bold=True)
    top = pdf.text_at(MARGIN, top, PAGE_W - 2 * MARGIN, summary, 14, colour=GREY) + 3
    picture_w = PAGE_W - 3 * MARGIN - PANEL_W
    box_h = PAGE_H - top - MARGIN - 16
    if picture is not None:
        pdf.picture(jpeg(picture), picture.size, MARGIN, top, picture_w, box_h)
    else:
        pdf.text_at(MARGIN, top + 10, picture_w, "Nothing to draw with these settings.", 16, colour=GREY)
    x = PAGE_W - MARGIN - PANEL_W
    y = pdf.text_at(x, top, PANEL_W, sentence, 13) + 5
    y = _numbers(pdf, x, y, numbers)
    if follow_line is not None:
        pdf.text_at(x, y + 1, PANEL_W, follow_line, 12, bold=True, colour=theme_rgb(theme.FOLLOWED))
    pdf.footer_lines(footer, link, f"{pdf.page_no()} / {{nb}}")


def _step_page(pdf: _Deck, step_key: str, scene: Scene, source: Source, found: History | None, choices: Choices,
               replay: Callable[[], list[NmsStep]]) -> None:
    words = step_page(step_key, scene, found, choices, replay)
    main = main_picture(step_key, scene, found, None, choices, steps=replay)
    follow_line = None
    if found is not None:
        item = stage_items(found, scene).get(step_key, plain(verdict(found, scene)))
        follow_line = f"Followed anchor #{found.flat_index}: {item}"
    _page(pdf, words.title, SUMMARIES[step_key], words.sentence, words.numbers,
          slide_picture(main[1]) if main is not None else None, follow_line,
          [model_line(scene.trace.model), settings_line(scene.settings)], app_url(source, scene, step_key, found))


def _lab_page(pdf: _Deck, page: LabPage, scene: Scene, source: Source, found: History | None) -> str | None:
    """A lab page: its main picture as the page draws it (the followed anchor is not drawn there); None, or
    why it was left out (its picture would take the deck past :data:`MAX_BYTES`)."""
    picture = slide_picture(page.draw)
    if pdf.picture_bytes + len(jpeg(picture)) + OVERHEAD_BYTES > MAX_BYTES:
        return f"its picture would take the deck past {MAX_BYTES / 1e6:g} MB"
    _page(pdf, page.title, SUMMARIES[page.key], page.sentence, page.numbers, picture, None,
          [model_line(scene.trace.model), settings_line(scene.settings)], app_url(source, scene, page.key, found))
    return None


def make_deck(scene: Scene, source: Source, found: History | None = None, choices: Choices = Choices(),
              progress: Progress | None = None, steps: Callable[[], list[NmsStep]] | None = None,
              lab: LabInputs | None = None) -> bytes:
    """The deck as PDF bytes: a title page, steps 1–8, then with ``lab`` the lab pages :func:`ui.lab_slides.plan`
    puts in, as long as the deck stays within :data:`MAX_BYTES` (``progress(done, total, next)`` after each
    page; the last call gives the pages there are).

    ``choices`` are the pages' widget choices (the app passes the session's, the CLI the defaults);
    ``steps`` the NMS replay when the caller has it already; ``lab`` what the lab pages are drawn from
    besides the scene (ground-truth boxes, the lab pages' choices, a Selective Search or receptive field
    the session has), None for no lab pages.
    """
    lab_keys, left_out = plan(scene, lab) if lab is not None else ([], {})
    total = 1 + len(STEP_KEYS) + len(lab_keys)
    replay_cache: list[list[NmsStep]] = []

    def replay() -> list[NmsStep]:
        if not replay_cache:
            # the picture of step i needs the first i steps only: no full replay
            replay_cache.append(steps() if steps is not None else nms_steps(scene, max_steps=max(1, choices.nms_at)))
        return replay_cache[0]

    report = progress or (lambda done, all_, what: None)
    pdf = _Deck()
    pdf.set_title(f"RPN walk-through: {source.photo_name}")
    report(0, total, "title page")
    _title_page(pdf, scene, source, found, lab is not None)
    for i, key in enumerate(STEP_KEYS):
        report(i + 1, total, TITLES[key])
        _step_page(pdf, key, scene, source, found, choices, replay)
    kept = []
    for i, key in enumerate(lab_keys, start=len(STEP_KEYS) + 1):
        report(i, total, TITLES[key])
        why = _lab_page(pdf, lab_page(key, scene, lab), scene, source, found)
        if why is None:
            kept.append(key)
        else:
            left_out[key] = why
    _title_footer(pdf, scene, source, found, kept, left_out)
    report(pdf.page, pdf.page, "done")  # the pages there are (a lab page may have been left out)
    return bytes(pdf.output())
