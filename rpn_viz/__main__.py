"""Entry point of ``python -m rpn_viz`` (the same as the ``rpn-viz`` command)."""

import sys

from .commands.cli import console

sys.exit(console(prog="python -m rpn_viz"))
