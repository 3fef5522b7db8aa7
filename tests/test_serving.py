"""ui.serving's allocator window around network passes: counted across threads, restored at the end.

glibc's settings cannot be read back, so a recorder stands in for libc and the test checks the calls.
"""

from __future__ import annotations

import threading

import pytest

from ui import serving


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("trim", pad))
        return 1


@pytest.fixture()
def libc(monkeypatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(serving, "_glibc", lambda: recorder)
    monkeypatch.setitem(serving._done, "mmap_threshold", True)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    return recorder


BULK = [("mallopt", serving.M_MMAP_THRESHOLD, serving.BULK_MMAP_THRESHOLD),
        ("mallopt", serving.M_TRIM_THRESHOLD, serving.BULK_TRIM_THRESHOLD)]
RESTORE = [("mallopt", serving.M_MMAP_THRESHOLD, serving.MMAP_THRESHOLD),
           ("mallopt", serving.M_TRIM_THRESHOLD, serving.TRIM_THRESHOLD), ("trim", 0)]


def test_overlapping_passes_open_the_window_once_and_the_last_one_closes_it(libc) -> None:
    first_inside, second_done = threading.Event(), threading.Event()

    def second() -> None:
        first_inside.wait(10)
        with serving.network_pass():
            pass
        second_done.set()

    other = threading.Thread(target=second)
    other.start()
    with serving.network_pass():
        first_inside.set()
        assert second_done.wait(10)
        assert libc.calls == BULK  # the second pass ended inside the first: nothing restored yet
    other.join(10)
    assert libc.calls == BULK + RESTORE and serving._bulk["depth"] == 0


def test_an_error_inside_still_restores(libc) -> None:
    with pytest.raises(RuntimeError), serving.network_pass():
        raise RuntimeError("a Stop click, or a failed pass")
    assert libc.calls == BULK + RESTORE and serving._bulk["depth"] == 0


def test_nothing_is_touched_where_the_thresholds_were_not_set(libc, monkeypatch) -> None:
    monkeypatch.setitem(serving._done, "mmap_threshold", False)  # e.g. MALLOC_MMAP_THRESHOLD_ in the shell
    with serving.network_pass():
        pass
    monkeypatch.setitem(serving._done, "mmap_threshold", True)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")  # the shell's trim threshold wins
    with serving.network_pass():
        pass
    assert libc.calls == []
