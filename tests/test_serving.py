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


class _Session:
    """Stands in for Streamlit's AppSession: an id and a shutdown that is recorded."""

    def __init__(self, session_id: str) -> None:
        self.id = session_id
        self.shut_down = False

    def shutdown(self) -> None:
        self.shut_down = True


def test_departed_sessions_are_shut_down_and_their_files_freed(monkeypatch) -> None:
    """On Streamlit's own session manager, store and file managers (the installed version's internals):
    a session whose reconnect window has passed is shut down; one that may still reconnect and an
    active one keep everything; uploads and pictures held for an id no session has any more go."""
    from types import SimpleNamespace

    import streamlit.runtime.media_file_manager as media_module
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.runtime.memory_session_storage import MemorySessionStorage
    from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from streamlit.runtime.session_manager import ActiveSessionInfo, SessionInfo
    from streamlit.runtime.uploaded_file_manager import UploadedFileRec
    from streamlit.runtime.websocket_session_manager import WebsocketSessionManager

    from ui.serving import end_departed_sessions

    clock = [0.0]
    storage = MemorySessionStorage(ttl_seconds=120)
    storage._cache._timer = lambda: clock[0]
    uploads = MemoryUploadedFileManager("/_stcore/upload_file")
    media = MediaFileManager(MemoryMediaFileStorage("/media"))
    manager = WebsocketSessionManager(storage, uploads, ScriptCache(), None)
    here, away, expired = _Session("here"), _Session("away"), _Session("expired")
    manager._active_session_info_by_id["here"] = ActiveSessionInfo(client=object(), session=here)
    storage.save(SessionInfo(client=None, session=expired))  # tab closed at t = 0
    clock[0] = 100.0
    storage.save(SessionInfo(client=None, session=away))  # tab closed at t = 100
    for number, session_id in enumerate(["here", "away", "expired", "vanished"]):
        uploads.add_file(session_id, UploadedFileRec(f"f{number}", "photo.jpg", "image/jpeg", b"x" * 1000))
        monkeypatch.setattr(media_module, "_get_session_id", lambda: session_id)
        media.add(bytes([number]) * 1000, "image/jpeg", f"coordinates-{number}")
    runtime = SimpleNamespace(_session_mgr=manager, uploaded_file_mgr=uploads, media_file_mgr=media)

    clock[0] = 150.0  # "expired" is past its 120 s, "away" is not
    assert end_departed_sessions(runtime) == 1 + 2 + 2  # one shut down; "expired" and "vanished" files dropped
    assert expired.shut_down and not away.shut_down and not here.shut_down
    assert set(uploads.file_storage) == {"here", "away"}
    assert set(media._files_by_session_and_coord) == {"here", "away"}
    assert len(media._file_metadata) == 2  # the two departed sessions' pictures are deleted
    assert {info.session.id for info in manager.list_sessions()} == {"here", "away"}
    assert end_departed_sessions(runtime) == 0  # nothing more to free


def test_triton_is_kept_out_and_torch_works_without_it() -> None:
    """A fresh process that calls skip_triton before torch: torchvision imports, torch says triton is
    absent, a convolution runs; RPN_VIZ_TRITON=1 lets it load again (where it is installed)."""
    script = (
        "import sys\n"
        "from ui.serving import skip_triton\n"
        "print(skip_triton())\n"
        "import torch, torchvision\n"
        "from torch.utils._triton import has_triton_package\n"
        "torch.nn.functional.conv2d(torch.ones(1, 3, 8, 8), torch.ones(2, 3, 3, 3))\n"
        "print(has_triton_package(), sys.modules.get('triton') is not None)\n"
    )
    root = Path(__file__).resolve().parent.parent

    def run(**env: str) -> list[str]:
        environment = {k: v for k, v in os.environ.items() if k != "RPN_VIZ_TRITON"} | env
        done = subprocess.run([sys.executable, "-c", script], cwd=root, env=environment, capture_output=True,
                              text=True, timeout=180, check=True)
        return done.stdout.split()

    assert run() == ["True", "False", "False"]
    assert run(RPN_VIZ_TRITON="1")[0] == "False"
