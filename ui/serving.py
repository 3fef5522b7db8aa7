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
