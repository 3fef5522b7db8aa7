"""The one per-session store: small, bounded, least-recently-used, in ``st.session_state``.

What is shared by every session (models, traces of shared models, rendered pictures) is cached with
``st.cache_resource`` / ``st.cache_data``. What belongs to one session — a trace of its own trained
model, a Selective Search run, a receptive field, an NMS replay — goes here, under a name per page,
keyed by what it was computed from. Each store keeps at most ``size`` entries and forgets the least
recently used, so a class of 30 leaving the app open for an hour cannot grow the server.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Hashable, TypeVar

import streamlit as st

T = TypeVar("T")


class LRU(OrderedDict):
    """A dict that keeps its ``size`` most recently used entries."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

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
        while len(self) > self.size:
            self.popitem(last=False)

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
