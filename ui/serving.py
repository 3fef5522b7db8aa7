"""Serving a classroom from one process: keep glibc's allocator from multiplying memory per thread.

Streamlit runs every session's script in its own thread. glibc gives each thread that allocates at
the same time a new malloc arena (up to 8 per core), and large freed blocks (PIL images, tensors)
stay in those arenas: with 20 sessions the server grew past 2.6 GB, with ``MALLOC_ARENA_MAX=2`` and
a 1 MB mmap threshold it stayed at 1.6 GB (bench/load_test.py). Environment variables only work when
set before the process starts, so the app sets the same limits itself with ``mallopt`` the first
time it runs; new threads then share two arenas and big blocks go straight back to the system.
Variables set by whoever starts the server (``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_``) win.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers (malloc.h)
M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 1 << 20  # blocks of 1 MB and more: mmap'd, returned to the system when freed

_done: dict[str, bool] = {}


@functools.lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    """glibc, loaded once (None elsewhere: musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def limit_malloc() -> dict[str, bool]:
    """Apply the limits once per process (Linux/glibc only); returns which ones were set."""
    if "malloc" in _done:
        return _done
    _done["malloc"] = True
    libc = _glibc()
    if libc is None:  # not glibc (musl, macOS, Windows): nothing to tune
        _done["glibc"] = False
        return _done
    if "MALLOC_ARENA_MAX" not in os.environ:
        _done["arena_max"] = bool(libc.mallopt(M_ARENA_MAX, ARENAS))
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        _done["mmap_threshold"] = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    return _done


HUGE_PAGES_ENV = "THP_MEM_ALLOC_ENABLE"  # read by torch (c10's alloc_cpu) once, at its first CPU allocation


def use_huge_pages() -> bool:
    """Ask torch to back its big CPU tensors (2 MB and more) with transparent huge pages; call it before
    torch allocates anything (top of ``app.py``). Returns whether it is asked (Linux only).

    With the 1 MB mmap threshold above, every activation of a network pass is a fresh mapping that
    the kernel fills with zeros one 4 kB page at a time: one trace of the COCO model took ~370,000
    page faults and 0.93-0.97 s of CPU on this 2-core machine. With huge pages (``madvise``, which
    the kernel allows by default) it takes ~95,000 and 0.60-0.70 s, the same numbers, the same
    memory. Whoever starts the server may set ``THP_MEM_ALLOC_ENABLE=0`` to turn it off.
    """
    if not sys.platform.startswith("linux"):
        return False
    os.environ.setdefault(HUGE_PAGES_ENV, "1")
    return os.environ[HUGE_PAGES_ENV] == "1"


TRITON_ENV = "RPN_VIZ_TRITON"


def skip_triton() -> bool:
    """Keep ``triton`` (torch's GPU kernel compiler, installed with CUDA builds of torch) out of this
    process; call it before torch is imported (top of ``app.py``). Returns whether it was kept out.

    The app never compiles kernels (no ``torch.compile``), but ``import torchvision`` imports
    ``torch._dynamo``, which imports triton when it is installed: ~70 MB of resident memory in the
    server (its shared library) and ~0.5 s of start-up, for nothing. torch asks for it with
    ``import triton`` inside ``try``/``except ImportError`` and goes on without it. Whoever starts
    the server may set ``RPN_VIZ_TRITON=1`` to let it load.
    """
    if os.environ.get(TRITON_ENV) == "1" or "triton" in sys.modules:
        return False
    sys.modules["triton"] = None  # type: ignore[assignment]  # `import triton` now raises ImportError
    return True


THREADS_ENV = "RPN_VIZ_TORCH_THREADS"


def limit_torch_threads() -> int:
    """torch's intra-op threads for one network run = half the cores (at least 1); call it every run.

    The server runs one network pass at a time per model (``ui.resources.SharedModel``) while the
    other cores serve pages. On 2 cores a trace takes 0.40 s wall / 0.80 s CPU with 2 threads and
    0.60 s / 0.60 s with 1; with a class at once the second thread mostly spins, waiting for a
    core the pages are using. The setting is partly per thread (OpenMP), and every script run of a
    session has a thread of its own: hence every run. ``RPN_VIZ_TORCH_THREADS`` wins.
    """
    import torch

    wanted = int(os.environ.get(THREADS_ENV) or max(1, (os.cpu_count() or 2) // 2))
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return wanted


def release_free_memory() -> bool:
    """Hand the allocator's free pages back to the system (glibc ``malloc_trim``; about a millisecond).

    Called after the big transient work of a session (a trace, a training run): its freed buffers would
    otherwise stay in the arena, counted in the server's memory until another session reuses them.
    On a GPU the same goes for torch's cached device blocks (``torch.cuda.empty_cache``): a trace keeps
    no GPU tensor, so the GPU's memory goes back to the models' own once the pass is drawn.
    """
    import torch

    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None and hasattr(libc, "malloc_trim") else False


def freeze_long_lived() -> bool:
    """Once per process, after the first model is loaded: move every object alive now (modules, torch,
    the models) out of the garbage collector's reach (``gc.freeze``).

    A full collection's cost grows with the number of tracked objects: with torch and the models,
    Streamlit's ``gc.collect(2)`` after every script run was ~15 % of the server's CPU in the load
    test. That one is now off (``runner.postScriptGC`` in ``.streamlit/config.toml``); Python's own
    full collections still happen, and skip frozen objects. Objects created later (traces,
    sessions) are still collected.
    """
    if _done.get("gc_frozen"):
        return False
    import gc

    gc.collect()
    gc.freeze()
    _done["gc_frozen"] = True
    return True


SESSION_SWEEP_S = 15.0  # how often the sweeper looks for sessions that have gone


def end_departed_sessions(runtime=None) -> int:
    """Free what the server still keeps for sessions that have gone; returns how many were freed.

    When a browser goes away, Streamlit keeps its session for a reconnect (``server.
    disconnectedSessionTTL``, 2 minutes here) in a store that forgets expired sessions lazily and
    without shutting them down (Streamlit 1.67): their session state stays alive until another
    session happens to disconnect, and their uploaded photo and their pages' pictures and download
    files stay in Streamlit's file managers for good — a class after a class, the server grows.
    This shuts down the expired ones (as a closed tab is: uploads, pictures, session caches), then
    drops the uploads and picture references still held by id for sessions that no longer exist.
    Reaches into Streamlit's session manager (tests/test_serving.py checks it on the installed
    version); without those internals it does nothing.
    """
    from streamlit.runtime import Runtime

    if runtime is None:
        if not Runtime.exists():
            return 0
        runtime = Runtime.instance()
    manager = getattr(runtime, "_session_mgr", None)
    cache = getattr(getattr(manager, "_session_storage", None), "_cache", None)
    lock = getattr(manager, "_storage_lock", None)
    if manager is None or lock is None or not hasattr(cache, "expire"):
        return 0
    with lock:
        expired = [info.session for _, info in cache.expire()]
    for session in expired:
        session.shutdown()  # as Streamlit does for a closed tab: its uploads, pictures and session caches go
    uploads, media = runtime.uploaded_file_mgr, runtime.media_file_mgr
    # Ids seen *before* listing the live sessions: a session that connects in between is not swept.
    upload_ids = list(getattr(uploads, "file_storage", {}))
    media_ids = list(getattr(media, "_files_by_session_and_coord", {}))
    live = {info.session.id for info in manager.list_sessions()}
    gone = 0
    for session_id in upload_ids:
        if session_id not in live:
            uploads.remove_session_files(session_id)
            gone += 1
    for session_id in media_ids:
        if session_id not in live:
            media.clear_session_refs(session_id)
            gone += 1
    if expired or gone:
        media.remove_orphaned_files()
    return len(expired) + gone


def start_session_sweeper(period_s: float = SESSION_SWEEP_S) -> bool:
    """Once per process: a thread that every ``period_s`` frees departed sessions
    (:func:`end_departed_sessions`) and collects their objects (a full ``gc.collect``: the frozen
    models are skipped), and hands the allocator's free pages back to the system (``malloc_trim``).
    A server that serves class after class comes back to the same memory. Returns whether it was
    started now."""
    if _done.get("sweeper"):
        return False
    _done["sweeper"] = True
    import gc
    import threading
    import time

    def sweep() -> None:
        while True:
            time.sleep(period_s)
            try:
                if end_departed_sessions():
                    gc.collect()
                release_free_memory()  # also what live sessions freed between their big steps (~ms)
            except Exception as exc:  # noqa: BLE001 - never take the server down; say it once
                print(f"rpn_viz: the session sweeper stopped: {type(exc).__name__}: {exc}", file=sys.stderr)
                return

    threading.Thread(target=sweep, name="rpn_viz-session-sweeper", daemon=True).start()
    return True
