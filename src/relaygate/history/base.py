"""The History contract shared by the memory and Redis engines."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Final

from relaygate.history.retention import Keep, Retention
from relaygate.protocol.positions import Position, parse
from relaygate.pubsub import PubSub
from relaygate.telemetry.metrics import HISTORY_RECOVERIES

MALFORMED: Final = "malformed"
EPOCH: Final = "epoch"
TRIMMED: Final = "trimmed"
UNKNOWN: Final = "unknown"
UNAVAILABLE: Final = "unavailable"
REASONS: Final = (MALFORMED, EPOCH, TRIMMED, UNKNOWN, UNAVAILABLE)
"""Why a recovery failed: a position that does not parse, one of another stream life, one whose
successors were trimmed (size or age), one ahead of the stream, or a stream that cannot be read."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One retained broadcast."""

    position: Position
    event: str
    payload: Any


@dataclass(frozen=True, slots=True)
class Read:
    """A stream read at join time. ``top`` is the stream's position (None when it could not be
    read); ``failure`` is None when ``since`` was recovered (then ``entries`` follow it)."""

    top: Position | None
    entries: tuple[Entry, ...] = ()
    failure: str | None = None


class History(abc.ABC):
    """Per-topic bounded streams of broadcasts, attached to a PubSub.

    Once attached, ``pubsub.broadcast`` on a topic that keeps history goes through
    :meth:`publish`, which appends and delivers with the new position; other topics are untouched.
    """

    def __init__(self, pubsub: PubSub) -> None:
        self.pubsub = pubsub
        self.retention = Retention()
        pubsub.streams = self

    def keep(self, pattern: str, keep: Keep) -> None:
        """Declare that topics matching ``pattern`` keep history."""
        self.retention.keep(pattern, keep)

    def keeps(self, topic: str) -> Keep | None:
        return self.retention.match(topic)

    @abc.abstractmethod
    async def publish(self, topic: str, event: str, payload: Any, origin: object | None) -> None:
        """Append to the topic's stream and deliver everywhere, carrying the position."""

    async def read(self, topic: str, since: object) -> Read:
        """The stream's position, and with ``since`` (not None) the entries after it or why not."""
        keep = self.keeps(topic)
        if keep is None:
            raise ValueError(f"topic {topic!r} keeps no history")
        if since is None:
            return await self._read(topic, keep, None)
        position = parse(since)
        if position is None:
            read = await self._read(topic, keep, None)
            read = Read(read.top, (), MALFORMED)
        else:
            read = await self._read(topic, keep, position)
        if read.failure is None:
            HISTORY_RECOVERIES.labels("succeeded", "").inc()
        else:
            HISTORY_RECOVERIES.labels("failed", read.failure).inc()
        return read

    @abc.abstractmethod
    async def _read(self, topic: str, keep: Keep, since: Position | None) -> Read:
        """Read (creating an empty stream, so that the position handed out stays valid)."""

    async def start(self) -> None:
        """Open what the engine needs."""

    async def stop(self) -> None:
        """Close what the engine opened."""
