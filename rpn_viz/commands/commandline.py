"""What every rpn_viz command shares: a one-line argparse parser, exit codes, one-line errors, the
download progress line.

The contract of every ``rpn-viz`` sub-command alike: a bad command line or a bad input exits
with :data:`EXIT_BAD_INPUT` and exactly one line ``NAME: error: ...`` on stderr, never a traceback;
Ctrl-C exits 130 with ``NAME: interrupted``. No torch import here: bad input is answered before
torch is loaded.

A weights file that downloads shows one line on stderr kept up to date (:data:`STDERR_PROGRESS`, given
to ``load_model`` by :func:`weights_options`; the Python API ``rpn_viz.load_model`` uses it too); its
words are :func:`progress_text`, which the app's progress bar (``ui.download``) shows as well.

    parser = OneLineParser("rpn-viz learn", prog="rpn-viz learn", description=...)
    args = parser.parse_args(argv)
    return run_command("rpn-viz learn", lambda: body(args))   # body returns the exit status
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import TYPE_CHECKING, Callable, NoReturn, Sequence

from ..pipeline.boxes import parse_box
from ..model.device import DEVICE_HELP, device_setting
from ..io.errors import OptionError, describe_error

if TYPE_CHECKING:  # the download module loads torch: only its type here
    from ..model.download import Progress

__all__ = [
    "DEFAULT_MODEL",
    "EXIT_BAD_INPUT",
    "EXIT_INTERRUPTED",
    "MODEL_NAMES",
    "OneLineParser",
    "ProgressLine",
    "STDERR_PROGRESS",
    "add_filter_options",
    "add_weights_options",
    "box_argument",
    "check_device",
    "check_filter_options",
    "filter_changes",
    "print_error",
    "progress_text",
    "run_command",
    "standalone",
    "weights_options",
]

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
#: ``rpn_viz.model.models.model_names()``, here so that ``--model`` is checked without importing torch
#: (tests/test_cli.py checks the two agree).
MODEL_NAMES = ("mobilenet_v3_large_fpn", "mobilenet_v3_large_320_fpn", "resnet50_fpn", "resnet50_fpn_v2", "paper_rpn")
DEFAULT_MODEL = "mobilenet_v3_large_fpn"


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line (``NAME: error: ... (see --help)``), exit 2.

    Plain argparse prints the whole usage block before the error; ``error_name`` is what the line starts
    with (``prog`` stays what ``--help`` shows). Also the class of ``rpn-viz``'s sub-command parsers
    (``add_parser(word, error_name=...)``: argparse's own ``name`` is the sub-command word there).
    """

    def __init__(self, error_name: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.name = error_name

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.name}: error: {' '.join(message.split())} (see --help)\n")


def progress_text(progress: Progress) -> str:
    """``"12.3 / 74.2 MB · 5.1 MB/s"``: how far a download is, in words (the CLI's progress line, the app's bar)."""
    mb = 1e6
    size = f"{progress.done / mb:.1f} / {progress.total / mb:.1f} MB" if progress.total else f"{progress.done / mb:.1f} MB"
    return f"{size} · {progress.speed / mb:.1f} MB/s"


class ProgressLine:
    """A download's ``progress`` callback that keeps one line on stderr up to date:
    ``Downloading FILE: 12.3 / 74.2 MB · 5.1 MB/s``, redrawn at most every ``every_s`` seconds and once
    more when the file is verified, which ends the line; another file starts a line of its own.
    :meth:`end` ends a line left open by a failed download (:func:`print_error` calls it).

    Thread-safe: one process-wide object serves every download (``rpn_viz.load_model`` may be called
    from several threads); a lock keeps each redraw and its bookkeeping together, so a line only ever
    shows one file."""

    def __init__(self, every_s: float = 0.25) -> None:
        self.every_s = every_s
        self._file: str | None = None  # the file whose line is open on stderr, if any
        self._drawn_at = -float("inf")
        self._lock = threading.RLock()

    def __call__(self, progress: Progress) -> None:
        with self._lock:
            if self._file is not None and self._file != progress.filename:
                self.end()
            now = time.monotonic()
            if progress.finished or now - self._drawn_at >= self.every_s:
                print(f"\rDownloading {progress.filename}: {progress_text(progress)}", end="", file=sys.stderr,
                      flush=True)
                self._file, self._drawn_at = progress.filename, now
            if progress.finished:
                self.end()

    def end(self) -> None:
        """End the open progress line, if there is one (the next output starts on a line of its own)."""
        with self._lock:
            if self._file is not None:
                print(file=sys.stderr, flush=True)
            self._file, self._drawn_at = None, -float("inf")


#: The process's progress line on stderr: every command that may download gives it to ``load_model``.
STDERR_PROGRESS = ProgressLine()


def print_error(name: str, message: str) -> None:
    """``NAME: error: message`` on stderr, as one line (after ending an open progress line)."""
    STDERR_PROGRESS.end()
    print(f"{name}: error: {' '.join(message.split())}", file=sys.stderr)


def run_command(name: str, body: Callable[[], int]) -> int:
    """Run ``body`` and return its exit status; any exception becomes one line on stderr and status 2."""
    try:
        return body()
    except KeyboardInterrupt:
        STDERR_PROGRESS.end()
        print(f"{name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # every failure is one line, never a traceback
        print_error(name, describe_error(exc))
        return EXIT_BAD_INPUT


def standalone(
    name: str,
    prog: str,
    description: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], int],
    argv: Sequence[str] | None,
) -> int:
    """One sub-command parsed on its own, without the ``rpn-viz WORD`` in front (``run.main``, ``learn.main``):
    the same arguments and the same one-line errors as through :func:`rpn_viz.commands.cli.console`."""
    parser = OneLineParser(name, prog=prog, description=description)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_command(name, lambda: run(args))


def add_weights_options(parser: argparse.ArgumentParser, checkpoint_help: str) -> None:
    """The options every command that loads a model has: --device, --weights-dir, --checkpoint, --no-download."""
    parser.add_argument("--device", help=DEVICE_HELP)
    parser.add_argument("--weights-dir", metavar="DIR", help="folder holding the official .pth files")
    parser.add_argument("--checkpoint", metavar="FILE", help=checkpoint_help)
    parser.add_argument("--no-download", action="store_true", help="never try to download weights")


def add_filter_options(parser: argparse.ArgumentParser) -> None:
    """The post-processing options (each defaults to the model's own value)."""
    parser.add_argument("--nms-iou", type=float, help="NMS IoU threshold (default: the model's own)")
    parser.add_argument("--pre-nms-top-n", type=int, help="candidates kept per level before NMS")
    parser.add_argument("--post-nms-top-n", type=int, help="proposals kept after NMS")
    parser.add_argument("--score-thresh", type=float, help="minimum objectness probability")
    parser.add_argument("--min-size", type=float, help="minimum box side in input pixels")


def check_filter_options(args: argparse.Namespace) -> None:
    """``ValueError`` for a post-processing option out of range (before torch is imported)."""
    if args.nms_iou is not None and not 0.0 <= args.nms_iou <= 1.0:
        raise OptionError("--nms-iou must be between 0 and 1")
    if args.score_thresh is not None and not 0.0 <= args.score_thresh <= 1.0:
        raise OptionError("--score-thresh must be between 0 and 1")
    for name in ("pre_nms_top_n", "post_nms_top_n"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise OptionError(f"--{name.replace('_', '-')} must be at least 1")
    if args.min_size is not None and args.min_size < 0:
        raise OptionError("--min-size must not be negative")


def filter_changes(args: argparse.Namespace) -> dict[str, float | int | None]:
    """:func:`add_filter_options`' values as ``Trace.refilter`` keyword arguments (None: the model's own)."""
    return dict(nms_iou=args.nms_iou, pre_nms_top_n=args.pre_nms_top_n, post_nms_top_n=args.post_nms_top_n,
                score_thresh=args.score_thresh, min_size=args.min_size)


def check_device(device: str | None) -> None:
    """``ValueError`` unless the device setting (``--device``, else ``$RPN_VIZ_DEVICE``) is cpu, cuda,
    cuda:N or auto: checked before torch is imported (:func:`rpn_viz.model.device.device_setting`)."""
    device_setting(device)


def weights_options(args: argparse.Namespace) -> dict[str, object]:
    """:func:`add_weights_options`' values as keyword arguments of ``load_model`` (and ``training.load_start``),
    with the progress line on stderr for a file that downloads."""
    return dict(weights_dir=args.weights_dir, checkpoint=args.checkpoint, device=args.device,
                allow_download=not args.no_download, progress=STDERR_PROGRESS)


def box_argument(text: str) -> tuple[float, float, float, float]:
    """argparse ``type=`` for ``--box x1,y1,x2,y2`` (:func:`rpn_viz.pipeline.boxes.parse_box`, its reason in the error line)."""
    try:
        return parse_box(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
