"""``rpn-viz train``: train the paper's RPN head on a set of photos with boxes, the recipe of the shipped head.

The recipe is :mod:`rpn_viz.training.train_set`; this module reads the command line, prints the
losses and the time, and with ``--save`` writes the head and its facts file
(``rpn_viz/trained/README.md`` gives the exact command that made the shipped one). Parsing imports no
torch: the defaults below are copies (tests/test_cli.py checks they agree).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from ..io.errors import OptionError
from ..model.device import DEVICE_HELP
from ..io.box_files import BUNDLED_PATH as BUNDLED  # not training.dataset: that imports torch
from .commandline import STDERR_PROGRESS

NAME = "rpn-viz train"
HELP = "train the paper's RPN head on a set of photos (the shipped head's recipe)"
DESCRIPTION = ("Train the Faster R-CNN paper's RPN head, with the last blocks of its ImageNet MobileNetV2 backbone, "
               "on a set of photos with boxes, and save it.")
DEFAULT_STEPS = 4000  # == rpn_viz.training.train_set.DEFAULT_STEPS
DEFAULT_SEED = 0  # == rpn_viz.training.train_set.DEFAULT_SEED
DEFAULT_LR = 0.01  # == rpn_viz.training.train_set.DEFAULT_LR
DEFAULT_JITTER = 4  # == rpn_viz.training.train_set.DEFAULT_JITTER
DEFAULT_TUNE_FROM = 11  # == rpn_viz.model.paper.TUNED_FROM
FIRST_TUNABLE = 8  # == rpn_viz.model.paper.FIRST_STRIDE16: the first block that keeps stride 16
HEAD_ONLY = 14  # == rpn_viz.model.paper.CUT: no backbone block trained
DEFAULT_POSITIVE_IOU = 0.45  # == rpn_viz.model.paper.TRAIN_POSITIVE_IOU
NEGATIVE_IOU = 0.3  # == rpn_viz.model.paper.BG_IOU: a positive's IoU must be above it


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default=str(BUNDLED.parent), metavar="DIR_OR_JSON",
                        help="box file (or its folder); default: the bundled set")
    parser.add_argument("--split", choices=("train", "val", "all"), default="train", help="photos to train on")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"default {DEFAULT_STEPS}")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="head initialisation and sampling seed")
    parser.add_argument("--lr", type=float, default=DEFAULT_LR, help=f"SGD learning rate (default {DEFAULT_LR})")
    parser.add_argument("--no-flips", action="store_true", help="do not add mirrored copies")
    parser.add_argument("--jitter", type=int, default=DEFAULT_JITTER, metavar="N",
                        help=f"jittered views per photo: random crop or zoom-out, colour, mirror (default {DEFAULT_JITTER})")
    parser.add_argument("--tune-from", type=int, default=DEFAULT_TUNE_FROM, metavar="BLOCK",
                        help=f"fine-tune the backbone's blocks BLOCK..{HEAD_ONLY - 1} with the head, {FIRST_TUNABLE} to {HEAD_ONLY} "
                             f"({HEAD_ONLY}: the head alone; default {DEFAULT_TUNE_FROM})")
    parser.add_argument("--positive-iou", type=float, default=DEFAULT_POSITIVE_IOU, metavar="IOU",
                        help=f"label an anchor positive from this IoU with a box (default {DEFAULT_POSITIVE_IOU}, "
                             "chosen by measurement; the paper: 0.7)")
    parser.add_argument("--save", metavar="HEAD.pt", help="where to write the head (and HEAD.json beside it)")
    parser.add_argument("--weights-dir", metavar="DIR", help="folder holding mobilenet_v2-b0353104.pth")
    parser.add_argument("--no-download", action="store_true", help="never try to download weights")
    parser.add_argument("--device", help=DEVICE_HELP)


def command_line(args: argparse.Namespace) -> str:
    """The command that repeats this run (``--steps`` and ``--seed`` always, other options when not the
    default), written into the head's facts file."""
    words = ["rpn-viz", "train"]
    if args.dataset != str(BUNDLED.parent):
        words += ["--dataset", args.dataset]
    if args.split != "train":
        words += ["--split", args.split]
    words += ["--steps", str(args.steps), "--seed", str(args.seed)]
    if args.lr != DEFAULT_LR:
        words += ["--lr", repr(args.lr)]
    if args.no_flips:
        words.append("--no-flips")
    if args.jitter != DEFAULT_JITTER:
        words += ["--jitter", str(args.jitter)]
    if args.tune_from != DEFAULT_TUNE_FROM:
        words += ["--tune-from", str(args.tune_from)]
    if args.positive_iou != DEFAULT_POSITIVE_IOU:
        words += ["--positive-iou", repr(args.positive_iou)]
    if args.save:
        words += ["--save", args.save]
    return " ".join(words)


def run(args: argparse.Namespace) -> int:
    """Train (and save); errors are raised, the caller makes them one line."""
    if args.steps < 1:
        raise OptionError("--steps must be at least 1")
    if args.jitter < 0:
        raise OptionError("--jitter must be 0 or more")
    if not FIRST_TUNABLE <= args.tune_from <= HEAD_ONLY:
        raise OptionError(f"--tune-from must be {FIRST_TUNABLE} to {HEAD_ONLY} (the stride-16 blocks; "
                          f"{HEAD_ONLY}: the head alone)")
    if not NEGATIVE_IOU < args.positive_iou <= 1:
        raise OptionError(f"--positive-iou must be above {NEGATIVE_IOU} (below it an anchor is a negative) and at most 1")
    import torch

    from ..model.paper import load_paper_model
    from ..training.dataset import box_count, read_box_file, select
    from ..training.train_set import SetRun, save_head, start_session, train

    entries = read_box_file(args.dataset)
    photos = select(entries, None if args.split == "all" else args.split)
    if not photos:
        raise OptionError(f"the box file has no {args.split!r} photos")
    start = load_paper_model(args.weights_dir, seed=args.seed, device=args.device,
                             allow_download=not args.no_download, progress=STDERR_PROGRESS)
    print(f"{len(photos)} photos, {box_count(photos)} boxes; preparing features…", flush=True)

    def report(session, result) -> None:
        recent = [r.total_loss for r in session.history[-100:]]
        print(f"  step {result.step:5d}  loss {statistics.fmean(recent):.4f}", flush=True)

    session, prepare = start_session(start, photos, args.seed, args.lr, flips=not args.no_flips, jitter=args.jitter,
                                     tune_from=args.tune_from, positive_iou=args.positive_iou)
    done = SetRun(session, list(photos), prepare, train(session, args.steps, args.lr, report))
    first, last = done.loss_means()
    print(f"prepared {len(done.session.examples)} examples in {done.prepare_seconds:.1f} s; "
          f"{done.steps} steps in {done.train_seconds:.1f} s on {start.device} "
          f"({torch.get_num_threads()} threads); loss {first:.4f} → {last:.4f}")
    if args.save:
        box_file = Path(args.dataset)
        box_file = box_file / "boxes.json" if box_file.is_dir() else box_file
        facts = save_head(done, args.save, box_file, command_line(args), args.lr, args.jitter)
        print(f"saved {args.save} (sha256 {facts['sha256']})")
    return 0
