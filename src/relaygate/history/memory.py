"""One-node history: per-topic streams in process memory, bounded by size and age.

Each stream life gets its own epoch (a random process id plus a counter), so a restart, or a
stream dropped after ``ttl`` seconds without broadcasts, never lets an old position match.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from relaygate.history.base import EPOCH, TRIMMED, UNKNOWN, Entry, History, Read
from relaygate.history.retention import Keep
from relaygate.protocol.positions import Position
from relaygate.pubsub import Broadcast, MemoryPubSub
from relaygate.telemetry.metrics import HISTORY_APPENDS


class _Stream:
    __slots__ = ("entries", "epoch", "top", "touched", "ttl")

    def __init__(self, epoch: str, keep: Keep, now: float) -> None:
        self.epoch = epoch
        self.top = 0
        self.ttl = keep.ttl
        self.touched = now
        self.entries: deque[tuple[int, float, str, Any]] = deque(maxlen=keep.size)

    def expire(self, now: float) -> None:
        entries, oldest = self.entries, now - self.ttl
        while entries and entries[0][1] < oldest:
            entries.popleft()


class MemoryHistory(History):
    """History for a single node on a :class:`MemoryPubSub`."""

    def __init__(self, pubsub: MemoryPubSub, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(pubsub)
        self._clock = clock
        self._process = secrets.token_hex(4)
        self._lives = itertools.count(1)
        self._streams: OrderedDict[str, _Stream] = OrderedDict()  # least recently appended first

    def _stream(self, topic: str, keep: Keep, now: float) -> _Stream:
        streams = self._streams
        while streams:  # drop idle streams from the front (bounded memory for unbounded topics)
            first = next(iter(streams.values()))
            if first.touched + first.ttl >= now:
                break
            streams.popitem(last=False)
        stream = streams.get(topic)
        if stream is None or stream.touched + stream.ttl < now:
            stream = _Stream(f"{self._process}.{next(self._lives)}", keep, now)
            streams[topic] = stream
        return stream

    async def publish(self, topic: str, event: str, payload: Any, origin: object | None) -> None:
        keep = self.keeps(topic)
        assert keep is not None
        now = self._clock()
        stream = self._stream(topic, keep, now)
        stream.top += 1
        stream.entries.append((stream.top, now, event, payload))
        stream.touched = now
        self._streams.move_to_end(topic)
        HISTORY_APPENDS.inc()
        self.pubsub.dispatch(Broadcast(topic, event, payload, origin, f"{stream.epoch}:{stream.top}"))

    async def _read(self, topic: str, keep: Keep, since: Position | None) -> Read:
        now = self._clock()
        stream = self._stream(topic, keep, now)
        top = Position(stream.epoch, stream.top)
        if since is None:
            return Read(top)
        if since.epoch != stream.epoch:
            return Read(top, (), EPOCH)
        if since.offset > stream.top:
            return Read(top, (), UNKNOWN)
        if since.offset == stream.top:
            return Read(top)
        stream.expire(now)
        entries = stream.entries
        if not entries or entries[0][0] > since.offset + 1:
            return Read(top, (), TRIMMED)
        skip = since.offset + 1 - entries[0][0]
        replay = tuple(
            Entry(Position(stream.epoch, offset), event, payload)
            for offset, _, event, payload in itertools.islice(entries, skip, None)
        )
        return Read(top, replay)
