"""Where the app's files are: this checkout, or the copy ``pip install .`` put under ``sys.prefix``.

The package is importable from both, but ``app.py``, ``.streamlit/config.toml`` and the sample
photos in ``assets/`` are not Python modules: a non-editable install copies them to
``<prefix>/share/rpn-viz/`` (``pyproject.toml``, data-files). Everything that opens them asks here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["app_root", "assets_dir", "find_sample", "samples", "shared_weights_dir"]

_CHECKOUT = Path(__file__).resolve().parents[2]  # rpn_viz/io/paths.py → the checkout
_INSTALLED = Path(sys.prefix) / "share" / "rpn-viz"


def app_root() -> Path:
    """The folder holding ``app.py`` (and ``assets/``, ``.streamlit/``): the checkout first."""
    for folder in (_CHECKOUT, _INSTALLED):
        if (folder / "app.py").is_file():
            return folder
    raise FileNotFoundError(
        f"app.py is neither in {_CHECKOUT} (a checkout) nor in {_INSTALLED} (pip install .): reinstall rpn-viz"
    )


def assets_dir() -> Path:
    """The sample photos (``assets/``)."""
    return app_root() / "assets"


def samples() -> list[dict]:
    """The bundled sample photos, in the order the app offers them (``assets/samples.json``: file, title,
    licence, credit, hand-drawn boxes)."""
    return json.loads((assets_dir() / "samples.json").read_text())


def find_sample(name: str, data: bytes) -> dict | None:
    """The sample entry of a photo named ``name`` whose bytes are the bundled file's, else None (a photo of yours)."""
    for entry in samples():
        path = assets_dir() / entry["file"]
        if entry["file"] == name and path.stat().st_size == len(data) and path.read_bytes() == data:
            return entry
    return None


def shared_weights_dir() -> Path | None:
    """The ``shared/weights`` folder beside this checkout, if there is one; else None.

    A team that has obtained official checkpoints keeps them there, next to its clones, so that a
    fresh clone finds them without any setting (their sha256 is still checked before loading).
    """
    folder = _CHECKOUT.parent / "shared" / "weights"
    return folder if (_CHECKOUT / "app.py").is_file() and folder.is_dir() else None
