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

from .errors import describe_error

__all__ = ["EXIT_BAD_INPUT", "EXIT_INTERRUPTED", "OneLineParser", "print_error", "run_command"]

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
