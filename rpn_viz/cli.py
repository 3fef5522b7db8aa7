"""``rpn-viz IMAGE`` (= ``python -m rpn_viz IMAGE``): proposals of a real RPN on one photo, as a summary or JSON.

:func:`console` is the ``rpn-viz`` command: ``rpn-viz IMAGE ...`` runs :func:`main`, ``rpn-viz learn
...`` the training command (:mod:`rpn_viz.learn`), ``rpn-viz app ...`` starts the Streamlit app,
``rpn-viz fetch ...`` downloads the weights files (:mod:`rpn_viz.fetch`).

Imports no UI or plotting library, and no torch until the photo has been read and the options
checked: a bad command line or a file that is not a photo is answered in a fraction of a second.
Every failure the user can cause (bad image, missing weights, bad option) exits non-zero with one
line on stderr (:mod:`rpn_viz.commandline`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from .commandline import (
    EXIT_BAD_INPUT,
    OneLineParser,
    add_filter_options,
    add_weights_options,
    check_device,
    check_filter_options,
    filter_changes,
    print_error,
    run_command,
    weights_options,
)

NAME = "rpn_viz"
#: ``rpn_viz.models.model_names()``, here so that ``--model`` is checked without importing torch
#: (tests/test_cli.py checks the two agree).
MODEL_NAMES = ("mobilenet_v3_large_fpn", "mobilenet_v3_large_320_fpn", "resnet50_fpn", "resnet50_fpn_v2", "paper_rpn")
DEFAULT_MODEL = "mobilenet_v3_large_fpn"
COMMANDS_HELP = (
    "Other commands: 'rpn-viz learn IMAGE --box x1,y1,x2,y2 --json OUT.json' trains the paper's RPN "
    "head on your boxes (rpn-viz learn --help); 'rpn-viz train' trains it on a set of photos (the offline "
    "model's recipe); 'rpn-viz evaluate' prints the recall table; 'rpn-viz slides IMAGE --out deck.pdf' makes the "
    "walk-through as slides; 'rpn-viz app [streamlit options]' starts the app; "
    "'rpn-viz fetch [--all | MODEL...] [--list]' downloads the weights files before a class without a network."
)


def build_parser(prog: str = "python -m rpn_viz") -> argparse.ArgumentParser:
    parser = OneLineParser(
        NAME,
        prog=prog,
        description="Run a trained Region Proposal Network (Faster R-CNN's first stage) on a photo.",
        epilog=COMMANDS_HELP,
    )
    parser.add_argument("image", help="photo to run on (JPEG, PNG, WebP, BMP, GIF, TIFF)")
    parser.add_argument("--json", metavar="OUT.json", help="write the full result as JSON ('-' for stdout)")
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=sorted(MODEL_NAMES),
                        help="architecture; paper_rpn: the paper's RPN with the head trained here")
    add_weights_options(parser, checkpoint_help="your own fine-tuned Faster R-CNN state dict "
                        "(with --model paper_rpn: a head saved by python -m rpn_viz.train_set --save)")
    parser.add_argument("--untrained", action="store_true", help="random weights (labelled untrained)")
    parser.add_argument("--seed", type=int, default=0, help="seed for --untrained (default 0)")
    add_filter_options(parser)
    parser.add_argument("--top", type=int, default=10, help="proposals listed in the summary (default 10)")
    return parser


def _check_settings(args: argparse.Namespace) -> None:
    check_filter_options(args)
    if args.top < 0:
        raise ValueError("--top must not be negative")
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


def main(argv: Sequence[str] | None = None, prog: str = "python -m rpn_viz") -> int:
    """Run on one photo; the exit status (0, or 2 with one line on stderr)."""
    args = build_parser(prog).parse_args(argv)
    return run_command(NAME, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    _check_settings(args)
    from .images import load_image

    image = load_image(args.image)  # a bad file is answered here, before torch is imported
    from .export import trace_json
    from .models import load_model
    from .tracing import trace

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


def run_app(streamlit_args: Sequence[str]) -> int:
    """``rpn-viz app [options]``: ``streamlit run app.py [options]`` in the app's folder (this process becomes it).

    The folder is the checkout, or ``<prefix>/share/rpn-viz`` after ``pip install .``; Streamlit reads
    its ``.streamlit/config.toml`` from there.
    """
    from .paths import app_root

    root = app_root()
    os.chdir(root)
    os.execv(sys.executable, [sys.executable, "-m", "streamlit", "run", str(root / "app.py"), *streamlit_args])
    return 0  # pragma: no cover - execv does not return


def console(argv: Sequence[str] | None = None, prog: str = "rpn-viz") -> int:
    """The ``rpn-viz`` command: ``rpn-viz IMAGE ...``, ``rpn-viz learn ...`` (one photo), ``rpn-viz train
    ...`` (a set of photos, :mod:`rpn_viz.train_set`), ``rpn-viz evaluate ...`` (the recall table),
    ``rpn-viz app ...`` or ``rpn-viz fetch ...`` (the weights files, :mod:`rpn_viz.fetch`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["learn"]:
        from .learn_cli import main as learn_main

        return learn_main(args[1:])
    if args[:1] == ["train"]:
        from .train_set import main as train_main

        return train_main(args[1:])
    if args[:1] == ["evaluate"]:
        from .evaluate import main as evaluate_main

        return evaluate_main(args[1:])
    if args[:1] == ["app"]:
        return run_command("rpn-viz app", lambda: run_app(args[1:]))
    if args[:1] == ["slides"]:  # issue 26: the walk-through as a PDF deck
        from .slides_cli import main as slides_main

        return slides_main(args[1:])
    if args[:1] == ["fetch"]:
        from .fetch import main as fetch_main

        return fetch_main(args[1:])
    return main(args, prog=prog)
