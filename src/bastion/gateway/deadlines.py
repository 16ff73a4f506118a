"""Deadlines for many waits at once on ONE event-loop timer.

``asyncio.timeout`` arms and cancels a loop timer per wait: about 7 µs per call under uvloop
(measured on the benchmark VM), a noticeable share of a gateway call. Every wait here has the same
timeout, so their deadlines come in the order they were started: one timer, set for the oldest
unsettled wait, suffices. Settled waits are dropped from the front as new ones start and when the
timer fires.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Deadlines(Generic[T]):
    """Calls :meth:`expire` on each watched item still not :meth:`settled` ``timeout_s`` after it
    was watched. Subclasses say what settled and expiring mean for their items."""

    __slots__ = ("_loop", "_pending", "_timeout", "_timer")

    def __init__(self, timeout_s: float) -> None:
        self._timeout = timeout_s
        self._pending: deque[tuple[float, T]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def settled(self, item: T) -> bool:
        raise NotImplementedError

    def expire(self, item: T) -> None:
        raise NotImplementedError

    def watch(self, item: T) -> None:
        """Expire ``item`` unless it is settled within the timeout (call from the running loop)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests run several): start afresh on it
            if self._timer is not None:
                self._timer.cancel()
            self._loop, self._timer = loop, None
            self._pending.clear()
        pending = self._pending
        while pending and self.settled(pending[0][1]):
            pending.popleft()
        pending.append((loop.time() + self._timeout, item))
        if self._timer is None:
            self._timer = loop.call_at(pending[0][0], self._fire)

    def _fire(self) -> None:
        self._timer = None
        loop = self._loop
        assert loop is not None
        now = loop.time()
        pending = self._pending
        while pending:
            deadline, item = pending[0]
            if not self.settled(item):
                if deadline > now:
                    self._timer = loop.call_at(deadline, self._fire)
                    return
                self.expire(item)
            pending.popleft()
