"""The ``rpn-viz`` command (= ``python -m rpn_viz``): one argparse parser, a sub-command per module.

``rpn-viz run IMAGE ...`` (also plain ``rpn-viz IMAGE ...``), ``rpn-viz learn|train|evaluate|slides ...``,
``rpn-viz app [streamlit options]`` and ``rpn-viz fetch [--all | MODEL...] [--list]``. Adding a
sub-command is one entry in :data:`SUBCOMMANDS`: a module of this package with

- ``NAME``: what its one-line errors start with (``rpn-viz learn: error: ...``);
- ``HELP`` (one line in ``rpn-viz --help``) and ``DESCRIPTION`` (its own ``--help``);
- ``add_arguments(parser)`` and ``run(args) -> int`` (errors are raised; :func:`console` makes them one
  line and exit status 2, :func:`rpn_viz.commands.commandline.run_command`);
- optionally ``PARSER_OPTIONS`` (extra ``ArgumentParser`` keyword arguments).

The modules import no torch at module level, so a bad command line or a photo that is not one is
answered before torch is loaded (tests/test_cli.py).
"""

from __future__ import annotations

import sys
from typing import Sequence

from . import app, evaluate, fetch, learn, run, slides, train
from .commandline import OneLineParser, run_command

#: The sub-commands, in the order ``--help`` lists them.
SUBCOMMANDS = {
    "run": run,
    "learn": learn,
    "train": train,
    "evaluate": evaluate,
    "slides": slides,
    "app": app,
    "fetch": fetch,
}
#: What ``rpn-viz IMAGE ...`` means: a first word that is no sub-command is ``run``'s photo.
DEFAULT = "run"


def build_parser(prog: str = "rpn-viz") -> tuple[OneLineParser, dict[str, OneLineParser]]:
    """The ``rpn-viz`` parser and its sub-command parsers by word."""
    parser = OneLineParser(
        run.NAME,
        prog=prog,
        description="Run a trained Region Proposal Network (Faster R-CNN's first stage) on a photo, train "
        "its head, measure it, start the app, or fetch the weights files.",
        epilog=f"'{prog} IMAGE ...' is short for '{prog} {DEFAULT} IMAGE ...'; '{prog} COMMAND --help' "
        "tells more.",
    )
    words = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for word, module in SUBCOMMANDS.items():
        sub = words.add_parser(word, error_name=module.NAME, help=module.HELP, description=module.DESCRIPTION,
                               **getattr(module, "PARSER_OPTIONS", {}))
        module.add_arguments(sub)
    return parser, words.choices


def console(argv: Sequence[str] | None = None, prog: str = "rpn-viz") -> int:
    """The ``rpn-viz`` command; the exit status (0, or 2 with one line on stderr)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or (args[0] not in SUBCOMMANDS and args[0] not in ("-h", "--help")):
        args.insert(0, DEFAULT)
    parser, parsers = build_parser(prog)
    parsed, unknown = parser.parse_known_args(args)
    if unknown:  # said by the sub-command's parser, so that the line starts with its name
        parsers[parsed.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    module = SUBCOMMANDS[parsed.command]
    return run_command(module.NAME, lambda: module.run(parsed))
