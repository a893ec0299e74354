"""Bounded concurrency per socket and per node: calls of one socket run concurrently, up to a
limit, with a bounded queue behind it; a full queue answers ``overloaded`` instead of waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

from relaygate.gateway.response import GatewayError
from relaygate.protocol.gateway import codes

T = TypeVar("T")


class Lane:
    """The calls of one socket: ``limit`` run at once, ``queue`` more may wait."""

    def __init__(self, limit: int, queue: int) -> None:
        self._semaphore = asyncio.Semaphore(limit)
        self._queue = queue
        self.admitted = 0  # waiting + running
        self._limit = limit

    def has_room(self) -> bool:
        return self.admitted < self._limit + self._queue


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

    def admit(self, connection: Hashable) -> Lane:
        """Take a place for one call or raise ``overloaded``; pair with :meth:`run` or :meth:`release`."""
        lane = self._lanes.get(connection)
        if lane is None:
            lane = self._lanes[connection] = Lane(self._per_socket, self._queue)
        if not lane.has_room() or self.pending >= self._max_pending:
            raise GatewayError(codes.OVERLOADED, "too many calls in flight, try again later")
        lane.admitted += 1
        self.pending += 1
        self._idle.clear()
        return lane

    async def run(self, connection: Hashable, lane: Lane, work: Callable[[], Awaitable[T]]) -> T:
        """Wait for a running slot of ``lane``, then await ``work()``; always releases the place."""
        try:
            async with lane._semaphore:
                return await work()
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
