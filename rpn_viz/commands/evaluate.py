"""``rpn-viz evaluate``: the recall table of the shipped head, an untrained head, the baselines (and the COCO
model when its file is here) on the bundled validation photos.

The computation is :mod:`rpn_viz.lab.evaluate`; README's table is this command's output.
"""

from __future__ import annotations

import argparse

from ..io.errors import OptionError
from ..model.device import DEVICE_HELP
from ..io.box_files import BUNDLED_PATH as BUNDLED  # not training.dataset: that imports torch
from .commandline import STDERR_PROGRESS

NAME = "rpn-viz evaluate"
HELP = "recall@10/100/300 of the trained RPN and the baselines on the validation photos"
DESCRIPTION = ("Recall@10/100/300 (IoU ≥ 0.5) on the bundled validation photos: the paper's RPN with the head "
               "trained here, the same network untrained, Selective Search, sliding windows, and the COCO "
               "model when its file is on this machine.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default=str(BUNDLED.parent), metavar="DIR_OR_JSON")
    parser.add_argument("--split", choices=("train", "val", "all"), default="val")
    parser.add_argument("--head", metavar="HEAD.pt", help="evaluate this head instead of the shipped one")
    parser.add_argument("--weights-dir", metavar="DIR")
    parser.add_argument("--no-download", action="store_true")
    parser.add_argument("--device", help=DEVICE_HELP)


def run(args: argparse.Namespace) -> int:
    """Print the table; errors are raised, the caller makes them one line."""
    from ..lab.evaluate import IOU, format_table, recall_table
    from ..model.models import DEFAULT_MODEL, MODELS, available_models, load_model
    from ..model.paper import load_paper_model, load_trained_paper_model
    from ..training.dataset import read_box_file, select

    photos = select(read_box_file(args.dataset), None if args.split == "all" else args.split)
    if not photos:
        raise OptionError(f"the box file has no {args.split!r} photos")
    allow = not args.no_download
    trained = load_trained_paper_model(args.weights_dir, head=args.head, device=args.device, allow_download=allow,
                                       progress=STDERR_PROGRESS)
    models = [(f"RPN: {trained.weights.label}", trained),
              ("RPN: the same network untrained (the official ImageNet backbone, an untrained head, seed 0)",
               load_paper_model(args.weights_dir, device=args.device, allow_download=allow))]
    if MODELS[DEFAULT_MODEL] in available_models(args.weights_dir):
        coco = load_model(DEFAULT_MODEL, weights_dir=args.weights_dir, device=args.device, allow_download=False)
        models.append((f"RPN: {MODELS[DEFAULT_MODEL].title}", coco))
    else:
        print(f"(COCO model {MODELS[DEFAULT_MODEL].official.filename} not on this machine: its row is left out)")
    rows = recall_table(photos, models)
    boxes = sum(len(p.boxes) for p in photos)
    print(f"{args.split} split: {len(photos)} photos, {boxes} boxes; IoU ≥ {IOU}")
    print(format_table(rows, len(photos)))
    return 0
