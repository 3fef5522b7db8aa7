"""rpn_viz.training.fairqueue: turns in arrival order, never more than ``slots`` at once, places that count down."""

from __future__ import annotations

import threading

import pytest

from rpn_viz.training.fairqueue import FairQueue


def _arrive_in_order(queue: FairQueue, n: int, work) -> list[threading.Thread]:
    """Start n threads one after the other, each in line before the next starts (no sleeps)."""
    threads = []
    for i in range(n):
        before = len(queue._line)
        thread = threading.Thread(target=work, args=(i,), daemon=True)
        thread.start()
        while len(queue._line) == before:  # in line (or already through, for the first ones)
            if not thread.is_alive():
                break
        threads.append(thread)
    return threads


@pytest.mark.parametrize("slots", [1, 3])
def test_turns_follow_arrival_order_and_respect_the_slots(slots: int) -> None:
    queue = FairQueue(slots=slots, poll_s=0.01)
    gate = threading.Event()  # the first holders wait here until everyone is in line
    lock = threading.Lock()
    order, holding, most, places, jumped = [], [0], [0], {}, {}

    def work(i: int) -> None:
        seen = places.setdefault(i, [])
        with queue.turn(on_wait=seen.append) as ticket:
            with lock:
                order.append(i)
                jumped[i] = [t for t in list(queue._line) if t < ticket and queue.place(t) > 0]
                holding[0] += 1
                most[0] = max(most[0], holding[0])
            gate.wait(10)
            with lock:
                holding[0] -= 1

    threads = _arrive_in_order(queue, 8, work)
    assert queue.running == slots and queue.waiting == 8 - slots
    assert [queue.place(t) for t in list(queue._line)] == [0] * slots + list(range(1, 8 - slots + 1))
    while not places.get(7):  # the last one has been told its place at least once
        pass
    gate.set()
    for thread in threads:
        thread.join(10)
    assert sorted(order) == list(range(8)) and sorted(order[:slots]) == list(range(slots))
    assert not any(jumped.values())  # nobody got a turn while someone who came earlier still waited
    if slots == 1:
        assert order == list(range(8))
    assert most[0] <= slots
    assert queue.served == 8 and queue.waiting == 0 and queue.running == 0
    last = places[7]
    assert last and last[0] <= 8 - slots and all(a >= b >= 1 for a, b in zip(last, last[1:]))  # counts down
    assert all(not places[i] for i in range(slots))  # the first ones never waited


def test_a_waiter_that_gives_up_leaves_the_line() -> None:
    queue = FairQueue(slots=1, poll_s=0.01)
    release, gave_up = threading.Event(), threading.Event()
    served = []

    def holder(_: int) -> None:
        with queue.turn():
            release.wait(10)
            served.append("holder")

    def quitter(_: int) -> None:
        def leave(place: int) -> None:
            raise RuntimeError("page closed")

        try:
            with queue.turn(on_wait=leave):
                served.append("quitter")
        except RuntimeError:
            gave_up.set()

    def patient(_: int) -> None:
        with queue.turn():
            served.append("patient")

    threads = [threading.Thread(target=f, args=(0,), daemon=True) for f in (holder,)]
    threads[0].start()
    while queue.running == 0:
        pass
    q = threading.Thread(target=quitter, args=(0,), daemon=True)
    q.start()
    assert gave_up.wait(10)
    p = threading.Thread(target=patient, args=(0,), daemon=True)
    p.start()
    while queue.waiting == 0:
        pass
    assert queue.place(queue._line[-1]) == 1  # the quitter is gone: the patient one is next
    release.set()
    for thread in (threads[0], q, p):
        thread.join(10)
    assert served == ["holder", "patient"]
    assert queue.served == 2


def test_at_least_one_slot() -> None:
    with pytest.raises(ValueError):
        FairQueue(slots=0)
