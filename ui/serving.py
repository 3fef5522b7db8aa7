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
import os
import sys

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers (malloc.h)
M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 1 << 20  # blocks of 1 MB and more: mmap'd, returned to the system when freed

_done: dict[str, bool] = {}


def limit_malloc() -> dict[str, bool]:
    """Apply the limits once per process (Linux/glibc only); returns which ones were set."""
    if _done or not sys.platform.startswith("linux"):
        return _done
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl): nothing to tune
        _done["glibc"] = False
        return _done
    if "MALLOC_ARENA_MAX" not in os.environ:
        _done["arena_max"] = bool(libc.mallopt(M_ARENA_MAX, ARENAS))
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        _done["mmap_threshold"] = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    return _done
