"""Bounded concurrency per socket and per node: calls of one socket run concurrently, up to a
limit, with a bounded queue behind it; a full queue answers ``overloaded`` instead of waiting.

A lane is two counters while its socket's calls fit the limit (the common case): no semaphore,
no future, nothing allocated per call; waiters queue in first-come order only past the limit.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Hashable
from typing import TypeVar

from relaygate.gateway.response import GatewayError
from relaygate.protocol.gateway import codes

T = TypeVar("T")


class Lane:
    """The calls of one socket: ``limit`` run at once, ``queue`` more may wait."""

    __slots__ = ("_room", "_waiters", "admitted", "limit", "running")

    def __init__(self, limit: int, queue: int) -> None:
        self.limit = limit
        self._room = limit + queue
        self.admitted = 0  # waiting + running
        self.running = 0
        self._waiters: deque[asyncio.Future[None]] | None = None

    def has_room(self) -> bool:
        return self.admitted < self._room

    async def acquire(self) -> None:
        """Wait for a running slot (first come, first served)."""
        if self.running < self.limit and not self._waiters:
            self.running += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = deque()
        self._waiters.append(waiter)
        try:
            await waiter  # release() hands its slot over: running is already counted for us
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted, then cancelled before running: pass the slot on
            else:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        """Give a running slot back, to the first live waiter if there is one."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.running -= 1


class Lanes:
    def __init__(self, *, per_socket: int, queue_per_socket: int, max_pending: int) -> None:
        self._per_socket = per_socket
        self._queue = queue_per_socket
        self._max_pending = max_pending
        self._lanes: dict[Hashable, Lane] = {}
        self.pending = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def has_room(self, connection: Hashable) -> bool:
        lane = self._lanes.get(connection)
        return self.pending < self._max_pending and (lane is None or lane.has_room())

    def can_run_now(self, connection: Hashable) -> bool:
        """Whether a call of ``connection`` may start at once: fewer than ``per_socket`` of its
        calls are admitted (running, queued, or admitted and about to run)."""
        if self.pending >= self._max_pending:
            return False
        lane = self._lanes.get(connection)
        return lane is None or lane.admitted < lane.limit

    def enter(self, connection: Hashable) -> Lane:
        """Admit a call that started already (after :meth:`can_run_now`): its place and its
        running slot; pair with ``run(..., entered=True)``."""
        lane = self._lanes.get(connection)
        if lane is None:
            lane = self._lanes[connection] = Lane(self._per_socket, self._queue)
        lane.admitted += 1
        lane.running += 1
        if self.pending == 0:
            self._idle.clear()
        self.pending += 1
        return lane

    def admit(self, connection: Hashable) -> Lane:
        """Take a place for one call or raise ``overloaded``; pair with :meth:`run` or :meth:`release`."""
        lane = self._lanes.get(connection)
        if lane is None:
            lane = self._lanes[connection] = Lane(self._per_socket, self._queue)
        if not lane.has_room() or self.pending >= self._max_pending:
            raise GatewayError(codes.OVERLOADED, "too many calls in flight, try again later")
        lane.admitted += 1
        if self.pending == 0:
            self._idle.clear()
        self.pending += 1
        return lane

    async def run(self, connection: Hashable, lane: Lane, work: Awaitable[T], *, entered: bool = False) -> T:
        """Wait for a running slot of ``lane`` (unless ``entered`` holds one), then await
        ``work``; always releases the place."""
        try:
            if entered:
                pass
            elif lane.running < lane.limit and not lane._waiters:
                lane.running += 1
            else:
                try:
                    await lane.acquire()
                except BaseException:
                    if asyncio.iscoroutine(work):
                        work.close()  # never started
                    raise
            try:
                return await work
            finally:
                lane.release()
        finally:
            self.release(connection, lane)

    def release(self, connection: Hashable, lane: Lane) -> None:
        lane.admitted -= 1
        self.pending -= 1
        if self.pending == 0:
            self._idle.set()
        if lane.admitted == 0 and self._lanes.get(connection) is lane:
            del self._lanes[connection]

    async def wait_idle(self) -> None:
        """Return once no call is admitted (waiting or running) on any socket."""
        await self._idle.wait()
