"""``rpn-viz slides IMAGE --out deck.pdf``: the app's walk-through of one photo as a 16:9 PDF slide deck.

The same deck as the app's "Download slides (PDF)" button: a title page (the photo, its credit and
licence, the model, the settings and a link back to the live app), then one page per pipeline step
with its main picture at projector resolution, its numbers and the followed anchor (``--follow``);
``--lab`` adds the lab pages with a main picture (ground-truth boxes from ``--box``, or a sample's own).
The pages are composed by :mod:`ui.slides`, which draws with the app's own picture code (no
Streamlit); this module reads the command line and runs the network. A bad photo, an output path
that cannot be written or a bad option is one line on stderr and exit status 2 — the first two
before torch is imported.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .commandline import (
    DEFAULT_MODEL,
    EXIT_BAD_INPUT,
    MODEL_NAMES,
    add_filter_options,
    add_weights_options,
    box_argument,
    check_device,
    check_filter_options,
    filter_changes,
    print_error,
    weights_options,
)
from ..io.errors import UserError

NAME = "rpn-viz slides"
HELP = "this photo's walk-through as a PDF slide deck"
DESCRIPTION = ("Make this photo's walk-through of a real RPN as a 16:9 PDF slide deck: a title page and one page "
               "per pipeline step.")
DEFAULT_URL = "http://localhost:8501/"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="photo to run on (JPEG, PNG, WebP, BMP, GIF, TIFF)")
    parser.add_argument("--out", required=True, metavar="DECK.pdf", help="where to write the PDF")
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=sorted(MODEL_NAMES),
                        help="architecture; paper_rpn: the paper's RPN with the head trained here")
    add_weights_options(parser, checkpoint_help="your own fine-tuned Faster R-CNN state dict")
    parser.add_argument("--untrained", action="store_true", help="random weights (labelled untrained)")
    parser.add_argument("--seed", type=int, default=0, help="seed for --untrained (default 0)")
    parser.add_argument("--follow", type=int, metavar="INDEX", help="flat anchor index to follow through every page")
    add_filter_options(parser)
    parser.add_argument("--lab", action="store_true", help="add the lab pages with a main picture (L1, L2, L4; "
                        "L3 and L7 with ground-truth boxes), as the app's 'Add the lab pages'")
    parser.add_argument("--box", action="append", type=box_argument, metavar="x1,y1,x2,y2",
                        help="a ground-truth box in photo pixels for the lab pages (repeat for more; default: a "
                        "bundled sample's own boxes)")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the app's address the deck links to (default {DEFAULT_URL})")


def check_out(path: str) -> None:
    """``OSError``-free check that ``path`` can be written: not a folder, in a folder that exists and is writable."""
    out = Path(path)
    folder = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise UserError(f"cannot write {path}: it is a folder")
    if not folder.is_dir():
        raise UserError(f"cannot write {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise UserError(f"cannot write {path}: permission denied")


def model_key(args: argparse.Namespace) -> str:
    """The app's ``?model=`` value for these options (so the deck's links open the same model)."""
    if args.untrained:
        return f"untrained:{args.model}"
    if args.checkpoint:
        return f"custom:{args.model}"
    return f"shipped:{args.model}" if args.model == "paper_rpn" else f"official:{args.model}"


def lab_inputs(traced, boxes: list | None, sample: dict | None):
    """The lab pages' inputs: the given boxes (photo pixels), else a bundled sample's own, in network-input pixels."""
    import torch

    from ui.lab_slides import LabInputs

    if boxes is None and sample is not None and sample.get("boxes"):
        from ..io.box_files import parse_entry

        size = traced.preprocess.original_size
        boxes = parse_entry(sample, "samples.json", size=size).scaled(size)
    gt = torch.tensor(boxes or [], dtype=torch.float32).reshape(-1, 4)
    return LabInputs(gt=traced.to_input(gt))


def run(args: argparse.Namespace) -> int:
    """Write the deck; the exit status (0, or 2 with one line on stderr: errors are raised, the caller makes them one line)."""
    check_filter_options(args)
    check_device(args.device)
    if args.follow is not None and args.follow < 0:
        raise UserError("--follow must be an anchor index (0 or more)")
    check_out(args.out)
    from ..io.images import load_image
    from ..io.paths import find_sample

    image = load_image(args.image)  # a bad photo is answered here, before torch is imported
    sample = find_sample(Path(args.image).name, Path(args.image).read_bytes())
    from ..lab.follow import follow
    from ..model.models import load_model
    from ..pipeline.tracing import trace

    loaded = load_model(args.model, untrained=args.untrained, seed=args.seed, **weights_options(args))
    traced = trace(loaded, image)
    anchors = int(traced.anchors.shape[0])
    if args.follow is not None and args.follow >= anchors:
        raise UserError(f"--follow {args.follow}: this model has anchors 0 to {anchors - 1} on this photo")
    from ui.scene import Scene  # the pages are drawn by the app's own picture code (ui/, no Streamlit)
    from ui.slides import Source, make_deck

    scene = Scene.of(traced, traced.default_settings.with_changes(**filter_changes(args)))
    found = follow(traced, scene.result, args.follow) if args.follow is not None else None
    source = Source(Path(args.image).name, sample["credit"] if sample else "your photo",
                    sample.get("licence") if sample else None, model_key(args), args.url,
                    sample["title"] if sample else None)
    lab = lab_inputs(traced, args.box, sample) if args.lab else None
    pages: list[int] = []
    data = make_deck(scene, source, found, lab=lab, progress=lambda done, total, what: pages.append(total))
    try:
        Path(args.out).write_bytes(data)
    except OSError as exc:
        print_error(NAME, f"cannot write {args.out}: {exc.strerror}")
        return EXIT_BAD_INPUT
    print(f"{args.out}: {pages[-1]} pages, {len(data) / 1e6:.1f} MB")
    return 0

