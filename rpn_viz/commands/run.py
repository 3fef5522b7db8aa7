"""``rpn-viz run IMAGE`` (= ``rpn-viz IMAGE``, ``python -m rpn_viz IMAGE``): proposals of a real RPN on one photo.

Prints a summary, or the whole trace as JSON (:func:`rpn_viz.pipeline.export.trace_json`). Imports no UI
or plotting library, and no torch until the photo has been read and the options checked: a bad
command line or a file that is not a photo is answered in a fraction of a second. Every failure the
user can cause (bad image, missing weights, bad option) exits non-zero with one line on stderr
(:mod:`rpn_viz.commands.commandline`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

from ..io.errors import OptionError
from .commandline import (
    DEFAULT_MODEL,
    EXIT_BAD_INPUT,
    MODEL_NAMES,
    add_filter_options,
    add_weights_options,
    check_device,
    check_filter_options,
    filter_changes,
    print_error,
    standalone,
    weights_options,
)

NAME = "rpn_viz"
HELP = "proposals of a real RPN on one photo (the default: rpn-viz IMAGE ...)"
DESCRIPTION = "Run a trained Region Proposal Network (Faster R-CNN's first stage) on a photo."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="photo to run on (JPEG, PNG, WebP, BMP, GIF, TIFF)")
    parser.add_argument("--json", metavar="OUT.json", help="write the full result as JSON ('-' for stdout)")
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=sorted(MODEL_NAMES),
                        help="architecture; paper_rpn: the paper's RPN with the head trained here")
    add_weights_options(parser, checkpoint_help="your own fine-tuned Faster R-CNN state dict "
                        "(with --model paper_rpn: a head saved by rpn-viz train --save)")
    parser.add_argument("--untrained", action="store_true", help="random weights (labelled untrained)")
    parser.add_argument("--seed", type=int, default=0, help="seed for --untrained (default 0)")
    add_filter_options(parser)
    parser.add_argument("--top", type=int, default=10, help="proposals listed in the summary (default 10)")


def _check_settings(args: argparse.Namespace) -> None:
    check_filter_options(args)
    if args.top < 0:
        raise OptionError("--top must not be negative")
    check_device(args.device)


def summary(doc: dict, top: int) -> str:
    """A short human-readable summary of a trace's JSON document."""
    lines = [
        f"{doc['model']} on {doc['device']} — weights: {doc['weights']['label']}",
        f"photo {doc['image_size'][0]}×{doc['image_size'][1]} → network input "
        f"{doc['input_size'][0]}×{doc['input_size'][1]}",
    ]
    for level in doc["levels"]:
        h, w = level["feature_size"]
        lines.append(
            f"  level {level['name']}: {h}×{w} cells, stride {level['stride'][1]}, "
            f"{level['anchors_per_location']} anchors per cell → {level['num_anchors']} anchors"
        )
    s = doc["settings"]
    lines.append(
        f"settings: NMS IoU {s['nms_iou']}, pre-NMS top-N {s['pre_nms_top_n']}/level, "
        f"post-NMS top-N {s['post_nms_top_n']}, score ≥ {s['score_thresh']}"
    )
    lines.append("funnel: " + " → ".join(f"{v} {k}" for k, v in doc["counts"].items()))
    for rank, p in enumerate(doc["proposals"][:top]):
        x1, y1, x2, y2 = p["box"]
        lines.append(f"  #{rank:<3d} {p['score']:.3f}  [{x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}]  level {p['level']}")
    lines.append(f"total {doc['timings_ms'].get('total', 0):.0f} ms")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, prog: str = "rpn-viz run") -> int:
    """Run on one photo; the exit status (0, or 2 with one line on stderr)."""
    return standalone(NAME, prog, DESCRIPTION, add_arguments, run, argv)


def run(args: argparse.Namespace) -> int:
    """``rpn-viz run``'s work, on parsed arguments (errors are raised; the caller makes them one line)."""
    _check_settings(args)
    from ..io.images import load_image

    image = load_image(args.image)  # a bad file is answered here, before torch is imported
    from ..pipeline.export import trace_json
    from ..model.models import load_model
    from ..pipeline.tracing import trace

    loaded = load_model(args.model, untrained=args.untrained, seed=args.seed, **weights_options(args))
    result = trace(loaded, image)
    changes = filter_changes(args)
    filtered = result.refilter(**changes) if any(v is not None for v in changes.values()) else result.result
    doc = trace_json(result, filtered)
    if args.json:
        text = json.dumps(doc, indent=1)
        if args.json == "-":
            print(text)
        else:
            try:
                Path(args.json).write_text(text)
            except OSError as exc:
                print_error(NAME, f"cannot write {args.json}: {exc.strerror}")
                return EXIT_BAD_INPUT
    if args.json != "-":
        print(summary(doc, args.top))
    return 0
