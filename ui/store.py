"""The caches of this app's own making: small, bounded by count and by bytes, least-recently-used.

What is shared by every session of the server — models, traces of shared models, decoded photos,
rendered pictures — is cached once per server: models and the pure-data caches (pictures, files)
with ``st.cache_resource`` / ``st.cache_data`` (``max_entries`` and ``max_size``), traces and
decoded photos in a :func:`shared_store` (Streamlit's resource cache has no byte limit, and a
2048-pixel photo's trace is ten times a small one's). What belongs to one session — a trace of its
own trained model, a Selective Search run, a receptive field, an NMS replay — goes in a
:func:`session_store`, under a name per page, keyed by what it was computed from, and goes with the
session. Every store keeps at most ``size`` entries (and ``max_bytes``) and forgets the least
recently used, so a class of 30 leaving the app open for a term cannot grow the server.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from typing import Callable, Hashable, TypeVar

import numpy as np
import streamlit as st
import torch
from PIL import Image

T = TypeVar("T")
MB = 1 << 20


def nbytes(value: object) -> int:
    """The bytes of the arrays a value holds: tensors (each storage once), numpy arrays, PIL images,
    bytes and strings, through dataclasses, dicts, lists and tuples.

    Shared models are not counted (a trace refers to the model it came from; the model is not the
    trace's to free): :class:`torch.nn.Module` and objects with a ``model`` module are skipped.
    Python object overhead is left out; the arrays are what make a cached value big.
    """
    seen: set[int] = set()
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if item is None or isinstance(item, (int, float, bool, torch.nn.Module)) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, torch.Tensor):
            storage = item.untyped_storage()
            if ("storage", storage.data_ptr()) not in seen:
                seen.add(("storage", storage.data_ptr()))  # type: ignore[arg-type]
                total += storage.nbytes()
        elif isinstance(item, np.ndarray):
            total += item.nbytes
        elif isinstance(item, Image.Image):
            total += item.width * item.height * len(item.getbands())
        elif isinstance(item, (bytes, bytearray, str)):
            total += len(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif dataclasses.is_dataclass(item) and not isinstance(getattr(item, "model", None), torch.nn.Module):
            stack.extend(getattr(item, f.name) for f in dataclasses.fields(item))
    return total


class LRU(OrderedDict):
    """A dict that keeps its ``size`` most recently used entries, and at most ``max_bytes`` of them
    (:func:`nbytes`; the newest entry is kept even when it alone is bigger)."""

    def __init__(self, size: int, max_bytes: int | None = None) -> None:
        super().__init__()
        self.size = size
        self.max_bytes = max_bytes
        self.sizes: dict[Hashable, int] = {}

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes.values())

    def get_or_make(self, key: Hashable, make: Callable[[], T]) -> T:
        """The value under ``key``, made (and stored) on a miss."""
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = make()
        self.put(key, value)
        return value

    def put(self, key: Hashable, value: object) -> None:
        self[key] = value
        self.move_to_end(key)
        if self.max_bytes is not None:
            self.sizes[key] = nbytes(value)
        while len(self) > self.size or (len(self) > 1 and self.max_bytes is not None
                                        and self.total_bytes > self.max_bytes):
            old, _ = self.popitem(last=False)
            self.sizes.pop(old, None)

    def find(self, key: Hashable) -> object | None:
        """The value under ``key`` (marked as used), or None."""
        if key not in self:
            return None
        self.move_to_end(key)
        return self[key]


def session_store(name: str, size: int = 4) -> LRU:
    """This session's store ``name`` (made on first use), bounded to ``size`` entries."""
    store = st.session_state.get(name)
    if not isinstance(store, LRU):
        store = LRU(size)
        st.session_state[name] = store
    store.size = size
    return store


class SharedStore:
    """A server-wide :class:`LRU` for every session's threads: each value is made once (a second
    session asking for the same key while it is being made waits for it), bounded by count and bytes."""

    def __init__(self, size: int, max_bytes: int) -> None:
        self.lru = LRU(size, max_bytes)
        self._lock = threading.Lock()
        self._making: dict[Hashable, threading.Lock] = {}

    def get_or_make(self, key: Hashable, make: Callable[[], T]) -> T:
        with self._lock:
            if key in self.lru:
                return self.lru.find(key)  # type: ignore[return-value]
            turn = self._making.setdefault(key, threading.Lock())
        with turn:
            with self._lock:
                if key in self.lru:
                    return self.lru.find(key)  # type: ignore[return-value]
            try:
                value = make()
                with self._lock:
                    self.lru.put(key, value)
            finally:
                with self._lock:
                    self._making.pop(key, None)
            return value


@st.cache_resource(show_spinner=False)
def shared_store(name: str, size: int, max_bytes: int) -> SharedStore:
    """The server's store ``name`` (one per server process, shared by every session)."""
    return SharedStore(size, max_bytes)
