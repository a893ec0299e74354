"""Idle connections: one sweep per endpoint, not a clock read per frame and a timer per socket.

A watched connection clears its quiet count on every frame it receives (an attribute store);
a sweep every ``timeout / IDLE_TICKS`` counts one more quiet tick for each, and a connection
still quiet after ``IDLE_TICKS + 1`` sweeps is expired. As sweeps are never closer together
than one period, an expired connection has received nothing for at least ``timeout`` (at most
``timeout`` plus one period). :meth:`IdleSweep.tick` is the whole rule, free of I/O.
"""

from __future__ import annotations

import asyncio
from typing import Final, Protocol

from relaygate.channels.api import logger

IDLE_TICKS: Final = 4
"""Sweeps per idle timeout: an idle connection is closed between 1 and 1.25 timeouts after its last frame."""


class Watched(Protocol):
    quiet: int
    """Sweeps since the last received frame (the connection sets it to 0 on every frame)."""

    def idle_expired(self) -> None:
        """Nothing received for the idle timeout: close the connection."""


class IdleSweep:
    """The watched connections of one endpoint and the one timer that sweeps them."""

    __slots__ = ("_handle", "_watched", "period")

    def __init__(self) -> None:
        self._watched: dict[Watched, None] = {}
        self._handle: asyncio.TimerHandle | None = None
        self.period = 0.0

    def __len__(self) -> int:
        return len(self._watched)

    def watch(self, connection: Watched, timeout: float) -> None:
        """Expire ``connection`` once it has received nothing for ``timeout`` seconds."""
        connection.quiet = 0
        self._watched[connection] = None
        if self._handle is None:
            self.period = timeout / IDLE_TICKS
            self._handle = asyncio.get_running_loop().call_later(self.period, self._sweep)

    def unwatch(self, connection: Watched) -> None:
        if self._watched.pop(connection, 0) is None and not self._watched and self._handle is not None:
            self._handle.cancel()  # no timer outlives the last connection (nor its event loop)
            self._handle = None

    def tick(self) -> list[Watched]:
        """One sweep: every watched connection is one tick quieter; the expired ones are unwatched
        and returned."""
        expired = []
        for connection in self._watched:
            quiet = connection.quiet + 1
            if quiet > IDLE_TICKS:
                expired.append(connection)
            else:
                connection.quiet = quiet
        for connection in expired:
            del self._watched[connection]
        return expired

    def _sweep(self) -> None:
        self._handle = None
        for connection in self.tick():
            try:
                connection.idle_expired()
            except Exception:
                logger.exception("closing an idle connection failed")
        if self._watched:
            self._handle = asyncio.get_running_loop().call_later(self.period, self._sweep)
