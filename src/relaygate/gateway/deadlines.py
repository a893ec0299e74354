"""Function timeouts without a timer per call.

``asyncio.timeout`` costs a timer handle, a context manager and a reschedule per call: more than
a whole local call otherwise. Calls of one function share its timeout, so their deadlines arrive
in order: each timeout value keeps a FIFO of running calls, and one loop timer, set for the
earliest deadline, cancels the tasks whose deadline has passed. A call that ends takes itself
out (its entry is dropped from the FIFO's head as soon as everything before it has ended too).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from typing import Any


class Deadline:
    """One running call's deadline; ``expired`` once its task was cancelled for it."""

    __slots__ = ("at", "baseline", "ended", "expired", "task")

    def __init__(self, at: float, task: asyncio.Task[Any]) -> None:
        self.at = at
        self.task = task
        self.baseline = task.cancelling()
        self.ended = False
        self.expired = False

    def timed_out(self) -> bool:
        """After a ``CancelledError``: whether it came from this deadline alone (then the task is
        uncancelled and the caller answers ``timeout``); a cancel from elsewhere stays raised."""
        if not self.expired:
            return False
        self.expired = False
        return self.task.uncancel() <= self.baseline


class Deadlines:
    """Per event loop: ``start`` before awaiting a function, ``end`` right after (in ``finally``)."""

    def __init__(self) -> None:
        self._fifos: dict[float, deque[Deadline]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, timeout: float) -> Deadline:
        """A deadline ``timeout`` seconds from now for the current task."""
        task = asyncio.current_task()
        assert task is not None
        loop = task.get_loop()
        if loop is not self._loop:  # first use, or a new event loop (tests): forget the old one
            self._loop = loop
            self._fifos = {}
            self._timer = None
            self._timer_at = math.inf
        entry = Deadline(loop.time() + timeout, task)
        fifo = self._fifos.get(timeout)
        if fifo is None:
            fifo = self._fifos[timeout] = deque()
        fifo.append(entry)
        if entry.at < self._timer_at:
            self._arm(loop, entry.at)
        return entry

    def end(self, entry: Deadline, timeout: float) -> None:
        entry.ended = True
        if entry.expired:  # the function swallowed the cancel: take it back all the same
            entry.expired = False
            entry.task.uncancel()
        fifo = self._fifos.get(timeout)
        while fifo and fifo[0].ended:
            fifo.popleft()

    def pending(self) -> int:
        """Deadlines still watched (ended calls behind a running one included)."""
        return sum(map(len, self._fifos.values()))

    def _arm(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(at, self._fire, loop)
        self._timer_at = at

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._timer_at = math.inf
        now = loop.time()
        earliest = math.inf
        for timeout, fifo in list(self._fifos.items()):
            while fifo and (fifo[0].ended or fifo[0].at <= now):
                entry = fifo.popleft()
                if not entry.ended:
                    entry.ended = entry.expired = True
                    entry.task.cancel()
            if fifo:
                earliest = min(earliest, fifo[0].at)
            else:
                del self._fifos[timeout]
        if earliest < math.inf:
            self._arm(loop, earliest)
