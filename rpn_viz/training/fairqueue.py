"""First come, first served turns at something only a few may do at once (training, on a shared server).

When a class of 20 presses Train at the same moment, running 20 trainings in parallel on 2 cores makes
every one of them 10× slower, multiplies the memory in flight, and lets whichever thread the OS favours
finish first. A :class:`FairQueue` gives ``slots`` turns at a time, in the order they were asked for;
everyone waiting can read their place in the line (:meth:`FairQueue.place`), and a waiter that gives up
(an exception inside the wait, e.g. the page was closed) leaves the line without blocking the others.
"""

from __future__ import annotations

import itertools
import threading
from contextlib import contextmanager
from typing import Callable, Iterator


class FairQueue:
    """At most ``slots`` holders at a time, served strictly in arrival order (FIFO)."""

    def __init__(self, slots: int = 1, poll_s: float = 0.5) -> None:
        if slots < 1:
            raise ValueError("a queue needs at least one slot")
        self.slots = slots
        self.poll_s = poll_s
        self._cond = threading.Condition()
        self._tickets = itertools.count()
        self._line: list[int] = []  # tickets in arrival order: the first ``slots`` hold a turn
        self.served = 0  # turns finished so far (for reports)

    def place(self, ticket: int) -> int:
        """0 while ``ticket`` holds a turn, else how many are ahead of it minus the free slots (1 = next)."""
        with self._cond:
            return self._place(ticket)

    def _place(self, ticket: int) -> int:
        index = self._line.index(ticket)
        return 0 if index < self.slots else index - self.slots + 1

    @property
    def waiting(self) -> int:
        """How many are in line without a turn."""
        with self._cond:
            return max(0, len(self._line) - self.slots)

    @property
    def running(self) -> int:
        """How many hold a turn now."""
        with self._cond:
            return min(len(self._line), self.slots)

    @contextmanager
    def turn(self, on_wait: Callable[[int], None] | None = None) -> Iterator[int]:
        """Wait for a turn (calling ``on_wait(place)`` every ``poll_s`` seconds while waiting), hold it
        for the ``with`` block, then hand it to the next in line. Yields the ticket number."""
        with self._cond:
            ticket = next(self._tickets)
            self._line.append(ticket)
        try:
            while True:
                with self._cond:
                    place = self._place(ticket)
                    if place == 0:
                        break
                    self._cond.wait(self.poll_s)
                    place = self._place(ticket)
                    if place == 0:
                        break
                if on_wait is not None:
                    on_wait(place)  # outside the lock: it may be slow, or raise to give up
            yield ticket
        finally:
            with self._cond:
                if self._line and self._line.index(ticket) < self.slots:
                    self.served += 1
                self._line.remove(ticket)
                self._cond.notify_all()
