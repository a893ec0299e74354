"""Function timeouts without a timer per call.

``asyncio.timeout`` costs a timer handle, a context manager and a reschedule per call: more than
a whole local call otherwise. Calls of one function share its timeout, so their deadlines arrive
in order: each function (by default each timeout value) keeps a FIFO of running calls, and one
loop timer, set for the earliest head, cancels the tasks whose deadline has passed. A call that
ends takes itself out (its entry leaves the FIFO's head once everything before it has ended).
Where deadlines of one FIFO come slightly out of order (a service node: each caller's remaining
time), a later expiry waits for the head to end or expire: the caller has answered by then.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Hashable
from typing import Any


class Deadline:
    """One running call's deadline; ``expired`` once its task was cancelled for it."""

    __slots__ = ("at", "baseline", "ended", "expired", "key", "task")

    def __init__(self, at: float, task: asyncio.Task[Any], key: Hashable) -> None:
        self.at = at
        self.key = key
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
        self._fifos: dict[Hashable, deque[Deadline]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, timeout: float, key: Hashable = None) -> Deadline:
        """A deadline ``timeout`` seconds from now for the current task, in the FIFO of ``key``
        (by default the timeout itself)."""
        task = asyncio.current_task()
        assert task is not None
        loop = task.get_loop()
        if loop is not self._loop:  # first use, or a new event loop (tests): forget the old one
            self._loop = loop
            self._fifos = {}
            self._timer = None
            self._timer_at = math.inf
        if key is None:
            key = timeout
        entry = Deadline(loop.time() + timeout, task, key)
        fifo = self._fifos.get(key)
        if fifo is None:
            fifo = self._fifos[key] = deque()
        fifo.append(entry)
        if entry.at < self._timer_at:  # (out-of-order entries of a FIFO wait for its head)
            self._arm(loop, entry.at)
        return entry

    def end(self, entry: Deadline) -> None:
        entry.ended = True
        if entry.expired:  # the function swallowed the cancel: take it back all the same
            entry.expired = False
            entry.task.uncancel()
        fifo = self._fifos.get(entry.key)
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
        for key, fifo in list(self._fifos.items()):
            while fifo and (fifo[0].ended or fifo[0].at <= now):
                entry = fifo.popleft()
                if not entry.ended:
                    entry.ended = entry.expired = True
                    entry.task.cancel()
            if fifo:
                earliest = min(earliest, fifo[0].at)
            else:
                del self._fifos[key]
        if earliest < math.inf:
            self._arm(loop, earliest)
