"""Test-only launcher: ``streamlit run app.py`` with the COCO model's file served from the loopback.

    python tests/serve_app.py URL SHA256 [streamlit run options...]

In this process, before the app's first run: the COCO model's official URL and sha256 become URL
and SHA256, there is no ``../shared/weights`` folder (as on a user's machine), every download to a host other than the loopback fails as offline (``tests/loopback.py``,
as for the in-process tests), and the read timeout is 120 s instead of a few seconds (the browser test
holds the body half-way while it looks at the progress bar). Production code has no such switches.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from loopback import loopback_only  # noqa: E402
from rpn_viz.model import download, weights  # noqa: E402
from rpn_viz.model.models import DEFAULT_MODEL, MODELS  # noqa: E402


def main(url: str, sha256: str, *streamlit_args: str) -> int:
    MODELS[DEFAULT_MODEL] = replace(MODELS[DEFAULT_MODEL], official=weights.OfficialFile(url, sha256))
    weights.shared_weights_dir = lambda: None
    download.open_url = loopback_only(download.open_url, [])
    download.TIMEOUT_S = 120.0
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(ROOT / "app.py"), *streamlit_args]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
