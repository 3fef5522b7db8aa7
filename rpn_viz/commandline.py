"""What every rpn_viz command shares: a one-line argparse parser, exit codes, one-line errors.

The contract of ``rpn-viz`` and ``rpn-viz learn`` alike: a bad command line or a bad input exits
with :data:`EXIT_BAD_INPUT` and exactly one line ``NAME: error: ...`` on stderr, never a traceback;
Ctrl-C exits 130 with ``NAME: interrupted``. No torch import here: bad input is answered before
torch is loaded.

    parser = OneLineParser("rpn_viz.learn", prog="rpn-viz learn", description=...)
    args = parser.parse_args(argv)
    return run_command("rpn_viz.learn", lambda: body(args))   # body returns the exit status
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, NoReturn

from .boxes import parse_box
from .device import DEVICE_HELP, device_setting
from .errors import describe_error

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_INTERRUPTED",
    "OneLineParser",
    "add_weights_options",
    "box_argument",
    "check_device",
    "print_error",
    "run_command",
    "weights_options",
]

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line (``NAME: error: ... (see --help)``), exit 2.

    Plain argparse prints the whole usage block before the error; ``name`` is what the line starts
    with (``prog`` stays what ``--help`` shows).
    """

    def __init__(self, name: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.name = name

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.name}: error: {' '.join(message.split())} (see --help)\n")


def print_error(name: str, message: str) -> None:
    """``NAME: error: message`` on stderr, as one line."""
    print(f"{name}: error: {' '.join(message.split())}", file=sys.stderr)


def run_command(name: str, body: Callable[[], int]) -> int:
    """Run ``body`` and return its exit status; any exception becomes one line on stderr and status 2."""
    try:
        return body()
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # every failure is one line, never a traceback
        print_error(name, describe_error(exc))
        return EXIT_BAD_INPUT


def add_weights_options(parser: argparse.ArgumentParser, checkpoint_help: str) -> None:
    """The options every command that loads a model has: --device, --weights-dir, --checkpoint, --no-download."""
    parser.add_argument("--device", help=DEVICE_HELP)
    parser.add_argument("--weights-dir", metavar="DIR", help="folder holding the official .pth files")
    parser.add_argument("--checkpoint", metavar="FILE", help=checkpoint_help)
    parser.add_argument("--no-download", action="store_true", help="never try to download weights")


def check_device(device: str | None) -> None:
    """``ValueError`` unless the device setting (``--device``, else ``$RPN_VIZ_DEVICE``) is cpu, cuda,
    cuda:N or auto: checked before torch is imported (:func:`rpn_viz.device.device_setting`)."""
    device_setting(device)


def weights_options(args: argparse.Namespace) -> dict[str, object]:
    """:func:`add_weights_options`' values as keyword arguments of ``load_model`` (and ``training.load_start``)."""
    return dict(weights_dir=args.weights_dir, checkpoint=args.checkpoint, device=args.device,
                allow_download=not args.no_download)


def box_argument(text: str) -> tuple[float, float, float, float]:
    """argparse ``type=`` for ``--box x1,y1,x2,y2`` (:func:`rpn_viz.boxes.parse_box`, its reason in the error line)."""
    try:
        return parse_box(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
