"""``rpn-viz learn``: train an RPN head on your boxes in one photo.

Reports the loss per step and how well the top-10 proposals cover each box before and after, as a
summary and as JSON (the contract is in :func:`main`). The training itself is
:class:`rpn_viz.training.session.TrainingSession`; the plumbing (one-line errors, exit codes, the model options)
is :mod:`rpn_viz.commands.commandline`, shared with ``rpn-viz``. Bad input is answered before torch is loaded.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path
from typing import Sequence

from ..io.errors import OptionError
from .commandline import MODEL_NAMES, add_weights_options, box_argument, check_device, standalone, weights_options

NAME = "rpn-viz learn"
HELP = "train an RPN head on your boxes in one photo"
DESCRIPTION = ("Train an RPN head on your boxes in one photo; report the loss per step and how "
               "well the top-10 proposals cover each box before and after.")
START_PAPER = "paper"  # == rpn_viz.training.config.START_PAPER (kept here so that parsing needs no torch)
DEFAULT_STEPS = 100  # == rpn_viz.training.config.DEFAULT_STEPS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="photo to train on")
    parser.add_argument("--box", action="append", type=box_argument, required=True, metavar="x1,y1,x2,y2",
                        help="a ground-truth box in photo pixels (repeat for more boxes)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"training steps (default {DEFAULT_STEPS})")
    parser.add_argument("--lr", type=float, help="learning rate (default: 0.01 for sgd, 0.001 for adam)")
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd", help="default sgd (the paper's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fresh head and of the sampling (default 0)")
    parser.add_argument("--start", default=START_PAPER, choices=[START_PAPER, *sorted(MODEL_NAMES)],
                        help="'paper' (fresh head on ImageNet MobileNetV2, default), 'paper_rpn' (the head "
                        "trained here) or a COCO model to fine-tune")
    add_weights_options(parser, checkpoint_help="with --start MODEL: fine-tune this checkpoint's head")
    parser.add_argument("--json", metavar="OUT.json", required=True, help="where to write the result ('-' for stdout)")


def result_json(session, after: list[float], image: str) -> dict[str, object]:
    """The ``--json`` document of a :class:`~rpn_viz.training.session.TrainingSession`: a stable contract (keys in :func:`main`)."""
    from ..training.examples import TOP_K

    step_ms = [r.ms for r in session.history]
    return {
        "image": image,
        "image_size": list(session.before.preprocess.original_size),
        "input_size": list(session.before.preprocess.input_size),
        "device": str(session.device),
        "start": {"model": session.start.name, "weights": session.start.weights.as_json()},
        "weights": session.weights_info().as_json(),
        "config": session.config.as_json(),
        "steps": session.steps_done,
        "boxes": [[round(v, 3) for v in box] for box in session.boxes.tolist()],
        "labels": session.label_summary().as_json(),
        "loss": [r.as_json() for r in session.history],
        "top_k": TOP_K,
        "best_iou_top_k": {"before": session.recall_before, "after": after},
        "timings_ms": {
            "setup": round(session.setup_ms, 3),
            "step_median": round(statistics.median(step_ms), 3) if step_ms else None,
        },
    }


def main(argv: Sequence[str] | None = None, prog: str = "rpn-viz learn") -> int:
    """``rpn-viz learn IMAGE --box x1,y1,x2,y2 ... --json OUT.json``.

    JSON keys: ``loss`` (per step: step, objectness, box, total, positives, negatives),
    ``best_iou_top_k`` ({"before": [...], "after": [...]}, one IoU per box, original-photo pixels,
    among the top ``top_k`` proposals), ``boxes`` (as used, clipped to the photo), ``labels`` (anchor
    label counts), ``weights`` (the trained head's label), ``start``, ``config``, ``steps``,
    ``image_size``, ``input_size``, ``device``, ``timings_ms``. Errors: one line on stderr, exit 2.
    """
    return standalone(NAME, prog, DESCRIPTION, add_arguments, run, argv)


def run(args: argparse.Namespace) -> int:
    """``rpn-viz learn``'s work, on parsed arguments (errors are raised; the caller makes them one line)."""
    if args.steps < 0:
        raise OptionError("--steps must not be negative")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise OptionError("--lr must be a positive number")
    check_device(args.device)
    from ..io.images import load_image

    image = load_image(args.image)
    from ..training.examples import TOP_K, check_boxes
    from ..training.session import TrainingSession
    from ..training.config import TrainConfig, load_start

    check_boxes(args.box, image.original_size)  # fail fast, before any model is loaded
    start = load_start(args.start, seed=args.seed, **weights_options(args))
    session = TrainingSession(start, image, args.box, TrainConfig(optimizer=args.optimizer, lr=args.lr,
                                                                  seed=args.seed))
    session.run(args.steps)
    after = session.recall_now()
    doc = result_json(session, after, str(args.image))
    text = json.dumps(doc, indent=1)
    if args.json == "-":
        print(text)
        return 0
    Path(args.json).write_text(text)
    first = doc["loss"][0]["total"] if doc["loss"] else float("nan")
    last = doc["loss"][-1]["total"] if doc["loss"] else float("nan")
    print(f"{session.weights_info().label} on {doc['device']}")
    print(f"total loss {first:.4f} → {last:.4f} over {session.steps_done} steps")
    for box, before, now in zip(doc["boxes"], session.recall_before, after):
        print(f"  box {box}: best IoU among top-{TOP_K} proposals {before:.3f} → {now:.3f}")
    return 0
