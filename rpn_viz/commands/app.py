"""``rpn-viz app [streamlit options]``: ``streamlit run app.py [options]`` in the app's folder.

Every word after ``app`` goes to Streamlit unchanged (``rpn-viz app --server.port 8502``).
"""

from __future__ import annotations

import argparse
import os
import sys

NAME = "rpn-viz app"
HELP = "start the Streamlit app (every further option goes to streamlit run)"
DESCRIPTION = "Start the app: streamlit run app.py in the app's folder, with the options given."
#: Streamlit's options are not ours: this sub-command's parser knows no option prefix, so that
#: ``--server.port`` reaches :func:`run` as a plain word.
PARSER_OPTIONS = {"prefix_chars": "\0", "add_help": False}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("streamlit_args", nargs="*", help="options for streamlit run")


def run(args: argparse.Namespace) -> int:
    """This process becomes ``streamlit run app.py [options]``, started in the app's folder: the checkout, or
    ``<prefix>/share/rpn-viz`` after ``pip install .``; Streamlit reads its ``.streamlit/config.toml`` from there."""
    from ..io.paths import app_root

    root = app_root()
    os.chdir(root)
    os.execv(sys.executable, [sys.executable, "-m", "streamlit", "run", str(root / "app.py"), *args.streamlit_args])
    return 0  # pragma: no cover - execv does not return
