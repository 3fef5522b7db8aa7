"""The app's caches are bounded by count and by bytes (ui/store.py), and the shared ones make each
value once for all sessions; the server's other caches have both limits too."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ui.store import LRU, MB, SharedStore, nbytes


@dataclass
class _Loaded:  # like rpn_viz.model.models.LoadedModel: a wrapper whose `model` is a shared network
    model: torch.nn.Module


@dataclass
class _Traced:  # like rpn_viz.pipeline.tracing.Trace: arrays of its own, and the model it came from
    model: _Loaded
    image: Image.Image
    logits: torch.Tensor
    deltas: torch.Tensor
    levels: list


def test_nbytes_counts_arrays_once_and_not_the_shared_model() -> None:
    logits = torch.zeros(1000)  # 4,000 bytes
    traced = _Traced(_Loaded(torch.nn.Linear(1000, 1000)), Image.new("RGB", (100, 50)), logits,
                     torch.zeros(1000, 4), [{"features": np.zeros((10, 10), np.float32), "view": logits[:10]}])
    assert nbytes(traced) == 100 * 50 * 3 + 4000 + 16000 + 400  # the view shares logits' storage
    assert nbytes(b"abc") == 3 and nbytes(None) == 0 and nbytes([torch.zeros(2, dtype=torch.uint8)] * 3) == 2


def test_lru_keeps_the_most_recently_used_by_count() -> None:
    lru = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.find("a") == 1  # "a" is now the most recently used
    lru.put("c", 3)
    assert list(lru) == ["a", "c"]
    assert lru.get_or_make("d", lambda: 4) == 4 and list(lru) == ["c", "d"]


def test_lru_keeps_at_most_max_bytes_but_always_the_newest() -> None:
    lru = LRU(100, max_bytes=10 * MB)
    for key in range(5):
        lru.put(key, torch.zeros(3 * MB, dtype=torch.uint8))  # 3 MB each
    assert list(lru) == [2, 3, 4] and lru.total_bytes == 9 * MB
    lru.put("big", torch.zeros(20 * MB, dtype=torch.uint8))  # bigger than the limit alone: kept, alone
    assert list(lru) == ["big"] and lru.total_bytes == 20 * MB


def test_shared_store_makes_each_value_once_for_all_threads() -> None:
    store = SharedStore(4, 64 * MB)
    made: list[str] = []
    started, release = threading.Event(), threading.Event()

    def make() -> str:
        made.append("x")
        started.set()
        release.wait(10)
        return "value"

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(store.get_or_make("key", make))) for _ in range(5)]
    for thread in threads:
        thread.start()
    assert started.wait(10)
    release.set()
    for thread in threads:
        thread.join(10)
    assert results == ["value"] * 5 and made == ["x"]


def test_shared_store_forgets_a_failed_make() -> None:
    store = SharedStore(4, MB)

    def fail() -> str:
        raise ValueError("broken photo")

    for _ in range(2):  # not cached: the second call runs it again
        try:
            store.get_or_make("key", fail)
        except ValueError:
            pass
    assert "key" not in store.lru and store.get_or_make("key", lambda: "ok") == "ok"


def test_every_server_cache_has_a_count_and_a_byte_limit() -> None:
    """The caches keyed by what users send (photos, pictures, files) or choose (a starting model's
    bundled examples): both limits set. (Models are one per picker entry, a fixed few.)"""
    from ui import figures, photo, resources
    from ui.steps import learn_step, proposals

    assert photo.PHOTOS and photo.PHOTO_BYTES and resources.TRACES and resources.TRACE_BYTES
    assert learn_step.BUNDLED_SETS and learn_step.BUNDLED_BYTES
    for function in (figures._rendered, proposals._files, proposals._crops):
        info = function._info  # Streamlit's record of the decorator's arguments
        assert info.max_entries and info.max_size_bytes, function.__name__
