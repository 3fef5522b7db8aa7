"""How the server process tunes itself for a classroom (ui/serving.py): huge pages for torch's tensors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ui.serving import HUGE_PAGES_ENV, use_huge_pages

THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def test_huge_pages_are_asked_for_unless_the_shell_said_otherwise(monkeypatch) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("transparent huge pages are a Linux feature")
    monkeypatch.delenv(HUGE_PAGES_ENV, raising=False)
    assert use_huge_pages() and os.environ[HUGE_PAGES_ENV] == "1"
    monkeypatch.setenv(HUGE_PAGES_ENV, "0")
    assert not use_huge_pages() and os.environ[HUGE_PAGES_ENV] == "0"


@pytest.mark.skipif(not THP_SETTING.exists() or "[never]" in THP_SETTING.read_text(),
                    reason="this kernel has transparent huge pages turned off (or none)")
def test_torch_puts_a_big_tensor_on_huge_pages_when_asked() -> None:
    """The variable is torch's own (c10's CPU allocator): a 64 MB tensor, written once, then lies on
    huge pages in a fresh process that sets it, and not in one that leaves it out."""
    script = (
        "from ui.serving import use_huge_pages\n"
        "import sys; sys.argv[1] == 'on' and use_huge_pages()\n"
        "import torch\n"
        "x = torch.ones(16 * 2**20)\n"  # 64 MB, every page touched
        "rollup = open('/proc/self/smaps_rollup').read()\n"
        "print(int(rollup.split('AnonHugePages:')[1].split()[0]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != HUGE_PAGES_ENV}
    root = Path(__file__).resolve().parent.parent

    def huge_kb(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", script, mode], cwd=root, env=env, capture_output=True,
                              text=True, timeout=120, check=True)
        return int(done.stdout.split()[-1])

    assert huge_kb("on") >= 32 * 1024  # most of the 64 MB
    if "[madvise]" in THP_SETTING.read_text():  # with "always" the kernel does it anyway
        assert huge_kb("off") < 32 * 1024
