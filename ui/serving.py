"""Serving a classroom from one process: keep glibc's allocator from multiplying memory per thread.

Streamlit runs every session's script in its own thread. glibc gives each thread that allocates at
the same time a new malloc arena (up to 8 per core), and large freed blocks (PIL images, tensors)
stay in those arenas: with 20 sessions the server grew past 2.6 GB, with ``MALLOC_ARENA_MAX=2`` and
a 1 MB mmap threshold it stayed at 1.6 GB (bench/load_test.py). Environment variables only work when
set before the process starts, so the app sets the same limits itself with ``mallopt`` the first
time it runs; new threads then share two arenas and big blocks go straight back to the system.
Variables set by whoever starts the server (``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_``) win.

Fresh mappings cost CPU, though: the kernel zeroes every page on first touch. Network passes (a
trace) therefore run inside :func:`network_pass`, which lets glibc reuse freed
buffers for the pass and hands every free page back when it ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
import threading
from typing import Iterator

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 1 << 20  # blocks of 1 MB and more: mmap'd, returned to the system when freed
TRIM_THRESHOLD = 128 << 10  # glibc's default: a free top of the heap over 128 kB goes back
BULK_MMAP_THRESHOLD = 32 << 20  # glibc's maximum: inside a network pass, buffers are reused...
BULK_TRIM_THRESHOLD = 1 << 30  # ...and kept until the pass ends (then trimmed)

_done: dict[str, bool] = {}
_bulk = {"depth": 0, "lock": threading.Lock()}


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

    Called after a training run: its freed buffers would otherwise stay in the arena, counted in the
    server's memory until another session reuses them.
    """
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


@contextlib.contextmanager
def network_pass() -> Iterator[None]:
    """Around a network pass (a trace: about a second): reuse freed buffers, then give them all back.

    With the 1 MB mmap threshold every activation of a pass is a fresh mapping that the kernel zeroes
    page by page: a COCO-model trace took ~1.1 s of CPU, ~370,000 page faults. Inside this window
    glibc keeps freed buffers for the next layer instead (the thresholds of :data:`BULK_MMAP_THRESHOLD`
    and :data:`BULK_TRIM_THRESHOLD`): ~0.55 s, ~90,000 faults. When the last pass in progress ends
    (passes of different models may overlap; the window is counted), the thresholds are restored and
    ``malloc_trim`` hands every free page back: memory after a pass is the same as before.
    Keep it short: while it is open, every thread's freed buffers stay (not around a training run).
    Only where ``limit_malloc`` set the thresholds (glibc, no environment variable); else a no-op.
    """
    libc = _glibc() if _done.get("mmap_threshold") and "MALLOC_TRIM_THRESHOLD_" not in os.environ else None
    if libc is None:
        yield
        return
    with _bulk["lock"]:
        _bulk["depth"] += 1
        if _bulk["depth"] == 1:
            libc.mallopt(M_MMAP_THRESHOLD, BULK_MMAP_THRESHOLD)
            libc.mallopt(M_TRIM_THRESHOLD, BULK_TRIM_THRESHOLD)
    try:
        yield
    finally:
        with _bulk["lock"]:
            _bulk["depth"] -= 1
            if _bulk["depth"] == 0:
                libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
                libc.malloc_trim(0)


def freeze_long_lived() -> bool:
    """Once per process, after the first model is loaded: move every object alive now (modules, torch,
    the models) out of the garbage collector's reach (``gc.freeze``).

    Streamlit runs a full ``gc.collect(2)`` after every script run (``runner.postScriptGC``), and its
    cost grows with the number of tracked objects: with torch and the models that was ~15 % of the
    server's CPU in the load test. Objects created later (traces, sessions) are still collected.
    """
    if _done.get("gc_frozen"):
        return False
    import gc

    gc.collect()
    gc.freeze()
    _done["gc_frozen"] = True
    return True
