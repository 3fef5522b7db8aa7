"""``python -m rpn_viz IMAGE``: proposals of a real RPN on one photo, as a summary or JSON.

Imports no UI or plotting library, so it starts as fast as torch allows. Every failure the user can
cause (bad image, missing weights, bad option) exits non-zero with one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Callable, NoReturn, Sequence

EXIT_BAD_INPUT = 2


class _OneLineParser(argparse.ArgumentParser):
    """argparse prints the whole usage block before an error; the CLI contract is one line on stderr."""

    name = "rpn_viz"

    def error(self, message: str) -> "NoReturn":
        self.exit(EXIT_BAD_INPUT, f"{self.name}: error: {' '.join(message.split())} (see --help)\n")


def one_line_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An argparse parser whose errors are one line, ``<module>: error: …``, exit status 2."""
    parser = _OneLineParser(prog=prog, description=description)
    parser.name = prog.split()[-1]
    return parser


def run_reporting_errors(name: str, work: Callable[[], None]) -> int:
    """Run ``work``; any failure becomes one line on stderr (``<name>: error: …``) and exit status 2."""
    try:
        work()
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # every failure is one line, never a traceback
        from .images import describe_error
        from .weights import WeightsError

        message = " ".join(str(exc).split()) if isinstance(exc, WeightsError) else describe_error(exc)
        print(f"{name}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .models import DEFAULT_MODEL, model_names

    parser = _OneLineParser(
        prog="python -m rpn_viz",
        description="Run a trained Region Proposal Network (Faster R-CNN's first stage) on a photo.",
    )
    parser.add_argument("image", help="photo to run on (JPEG, PNG, WebP, BMP, GIF, TIFF)")
    parser.add_argument("--json", metavar="OUT.json", help="write the full result as JSON ('-' for stdout)")
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=sorted(model_names()),
                        help="architecture; paper_rpn: the paper's RPN with the head trained here "
                        "(--checkpoint: a head saved by python -m rpn_viz.train_set --save)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: CUDA when present)")
    parser.add_argument("--weights-dir", metavar="DIR", help="folder holding the official .pth files")
    parser.add_argument("--checkpoint", metavar="FILE", help="your own fine-tuned Faster R-CNN state dict")
    parser.add_argument("--untrained", action="store_true", help="random weights (labelled untrained)")
    parser.add_argument("--seed", type=int, default=0, help="seed for --untrained (default 0)")
    parser.add_argument("--no-download", action="store_true", help="never try to download weights")
    parser.add_argument("--nms-iou", type=float, help="NMS IoU threshold (default: the model's own)")
    parser.add_argument("--pre-nms-top-n", type=int, help="candidates kept per level before NMS")
    parser.add_argument("--post-nms-top-n", type=int, help="proposals kept after NMS")
    parser.add_argument("--score-thresh", type=float, help="minimum objectness probability")
    parser.add_argument("--min-size", type=float, help="minimum box side in input pixels")
    parser.add_argument("--top", type=int, default=10, help="proposals listed in the summary (default 10)")
    return parser


def _check_settings(args: argparse.Namespace) -> None:
    if args.nms_iou is not None and not 0.0 <= args.nms_iou <= 1.0:
        raise ValueError("--nms-iou must be between 0 and 1")
    if args.score_thresh is not None and not 0.0 <= args.score_thresh <= 1.0:
        raise ValueError("--score-thresh must be between 0 and 1")
    for name in ("pre_nms_top_n", "post_nms_top_n"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    if args.min_size is not None and args.min_size < 0:
        raise ValueError("--min-size must not be negative")
    if args.top < 0:
        raise ValueError("--top must not be negative")
    if args.device not in ("auto", "cpu", "cuda") and not re.fullmatch(r"cuda:\d+", args.device):
        raise ValueError(f"--device must be cpu, cuda, cuda:N or auto, not {args.device!r}")


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _check_settings(args)
        from .images import ImageLoadError, load_image  # noqa: F401 - imported for its errors
        from .models import load_model
        from .tracing import trace
        from .export import trace_json

        image = load_image(args.image)
        loaded = load_model(
            args.model,
            weights_dir=args.weights_dir,
            checkpoint=args.checkpoint,
            untrained=args.untrained,
            seed=args.seed,
            device=args.device,
            allow_download=not args.no_download,
        )
        result = trace(loaded, image)
        changes = dict(
            nms_iou=args.nms_iou,
            pre_nms_top_n=args.pre_nms_top_n,
            post_nms_top_n=args.post_nms_top_n,
            score_thresh=args.score_thresh,
            min_size=args.min_size,
        )
        filtered = result.refilter(**changes) if any(v is not None for v in changes.values()) else result.result
        doc = trace_json(result, filtered)
    except KeyboardInterrupt:
        print("rpn_viz: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # every failure is one line, never a traceback
        from .images import describe_error
        from .weights import WeightsError

        # A weights message names the file, its URL and the folder to put it in: describe_error's
        # length cap would cut the folder off (offline download failures are the longest).
        message = " ".join(str(exc).split()) if isinstance(exc, WeightsError) else describe_error(exc)
        print(f"rpn_viz: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        text = json.dumps(doc, indent=1)
        if args.json == "-":
            print(text)
        else:
            try:
                Path(args.json).write_text(text)
            except OSError as exc:
                print(f"rpn_viz: error: cannot write {args.json}: {exc.strerror}", file=sys.stderr)
                return EXIT_BAD_INPUT
    if args.json != "-":
        print(summary(doc, args.top))
    return 0
