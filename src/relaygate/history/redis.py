"""Cluster history in Redis: one stream per topic, appended and published in one atomic step.

Per topic, a hash ``<prefix>h:<topic>:m`` holds the stream's ``epoch`` and last offset ``top``,
and a stream ``<prefix>h:<topic>`` holds the entries with ids ``<offset>-0`` (fields: event,
payload kind, payload, append time in ms), capped at ``size`` and expiring after ``ttl`` without
appends. One Lua script adds the entry and PUBLISHes the positioned broadcast frame (RedisPubSub
wire format, version 2), so every node, the publishing one included, receives broadcasts in
position order from its subscription. A stream Redis lost (expiry, restart without persistence)
gets a new random epoch at its next use, so an old position never matches it.

A node whose subscription dropped catches its subscribed history topics up from the streams once
it is back, merging the read with what arrives live (:class:`~relaygate.history.merge.Merge`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import secrets
from typing import Any, Final

from redis.asyncio import Redis

from relaygate.history.base import EPOCH, TRIMMED, UNAVAILABLE, UNKNOWN, Entry, History, Read
from relaygate.history.merge import Merge
from relaygate.history.retention import Keep
from relaygate.protocol.positions import Position, parse
from relaygate.pubsub import Broadcast, codec
from relaygate.pubsub.backoff import Backoff
from relaygate.pubsub.redis import FAILURES, RedisPubSub, connect
from relaygate.telemetry.metrics import HISTORY_APPENDS

log = logging.getLogger(__name__)

APPEND: Final = """
local meta, stream = KEYS[1], KEYS[2]
local candidate, ttl, size = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local channel, head, kind, event, body = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local epoch = redis.call('HGET', meta, 'epoch')
if not epoch then
  epoch = candidate
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'epoch', epoch, 'top', 0)
end
local top = redis.call('HINCRBY', meta, 'top', 1)
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
-- field order matters: READ packs entries by position (e, k, p, t)
redis.call('XADD', stream, 'MAXLEN', size, top .. '-0', 'e', event, 'k', kind, 'p', body, 't', ms)
redis.call('PEXPIRE', stream, ttl)
redis.call('PEXPIRE', meta, ttl)
local position = epoch .. ':' .. top
redis.call('PUBLISH', channel, head .. string.char(#position) .. position .. body)
return position
"""

READ: Final = """
local meta, stream = KEYS[1], KEYS[2]
local candidate, ttl, since_epoch, since = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local epoch = redis.call('HGET', meta, 'epoch')
if not epoch then
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'epoch', candidate, 'top', 0)
  redis.call('PEXPIRE', meta, ttl)
  if since_epoch == '' then return {candidate, 0, 'ok'} end
  return {candidate, 0, 'epoch'}
end
local top = tonumber(redis.call('HGET', meta, 'top'))
if since_epoch == '' then return {epoch, top, 'ok'} end
if since_epoch ~= epoch then return {epoch, top, 'epoch'} end
if since > top then return {epoch, top, 'unknown'} end
if since == top then return {epoch, top, 'ok'} end
local entries = redis.call('XRANGE', stream, (since + 1) .. '-0', '+')
if #entries == 0 or entries[1][1] ~= (since + 1) .. '-0' then return {epoch, top, 'trimmed'} end
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if tonumber(entries[1][2][8]) < ms - ttl then return {epoch, top, 'trimmed'} end
local parts = {}
for i, entry in ipairs(entries) do
  local id, f = entry[1], entry[2]
  parts[i] = struct.pack('>I4', #id) .. id .. struct.pack('>I4', #f[2]) .. f[2] .. f[4]
    .. struct.pack('>I4', #f[6]) .. f[6]
end
return {epoch, top, 'ok', table.concat(parts)}
"""

_STATUS: Final = {b"epoch": EPOCH, b"unknown": UNKNOWN, b"trimmed": TRIMMED}
_MAX_TICKETS: Final = 10_000


def _epoch() -> str:
    """A fresh candidate per call: a stream recreated after Redis lost it must never reuse one."""
    return secrets.token_hex(6)


class RedisHistory(History):
    """History shared by every node of a :class:`RedisPubSub` cluster."""

    def __init__(
        self,
        pubsub: RedisPubSub,
        *,
        prefix: str = "relaygate:",
        max_batch: int = 256,
        queue_size: int = 10_000,
    ) -> None:
        super().__init__(pubsub)
        self.redis_pubsub = pubsub
        self._prefix = f"{prefix}h:"
        self._max_batch = max_batch
        self._queue_size = queue_size
        pubsub.on_positioned = self._arrived
        pubsub.on_resubscribed = self._resubscribed
        self._pid: int | None = None
        self._client: Redis | None = None
        self._queue: asyncio.Queue[_Append] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._mine = secrets.token_hex(6).encode() + b"/"
        self._tickets = itertools.count(1)
        self._origins: dict[bytes, object] = {}
        self._last: dict[str, Position] = {}
        self._catching: dict[str, Merge[Broadcast]] = {}
        self._read_script: Any = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def _ensure(self) -> Redis:
        """Connect in the running process (a forked worker opens its own)."""
        if self._client is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._client = connect(self.redis_pubsub.redis_url)
            self._read_script = self._client.register_script(READ)
            self._queue = asyncio.Queue(self._queue_size)
            self._origins.clear()
            self._tasks = set()
            self._spawn(self._write_loop())
        return self._client

    async def start(self) -> None:
        self._ensure()

    async def stop(self) -> None:
        if self._pid != os.getpid():
            return
        if self._queue is not None:
            try:
                async with asyncio.timeout(2.0):
                    await self._queue.join()
            except TimeoutError:
                log.warning("history appends still queued at stop")
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
        self._client = None
        self._pid = None

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _keys(self, topic: str) -> list[str]:
        stream = self._prefix + topic
        return [stream + ":m", stream]

    # -- publishing ------------------------------------------------------------------------------

    async def publish(self, topic: str, event: str, payload: Any, origin: object | None) -> None:
        keep = self.keeps(topic)
        assert keep is not None
        kind, data = codec.body(payload)  # a bad payload fails here, before anyone gets it
        ticket = b""
        if origin is not None:
            ticket = self._mine + str(next(self._tickets)).encode()
            if len(self._origins) >= _MAX_TICKETS:
                self._origins.pop(next(iter(self._origins)))  # an echo that never came back
            self._origins[ticket] = origin
        head = codec.head(codec.POSITIONED, kind, ticket, event)
        self._ensure()
        assert self._queue is not None
        await self._queue.put(_Append(topic, keep, event, payload, kind, head, data, ticket, origin))

    async def _write_loop(self) -> None:
        assert self._queue is not None and self._client is not None
        queue, client = self._queue, self._client
        script = client.register_script(APPEND)
        backoff = Backoff()
        while True:
            batch = [await queue.get()]
            while len(batch) < self._max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                pipe = client.pipeline(transaction=False)
                for item in batch:
                    meta, stream = self._keys(item.topic)
                    args: list[bytes | str | int] = [
                        _epoch(),
                        item.keep.ttl_ms,
                        item.keep.size,
                        self.redis_pubsub.channel(item.topic),
                        item.head,
                        bytes((item.kind,)),
                        item.event,
                        item.data,
                    ]
                    await script(keys=[meta, stream], args=args, client=pipe)
                results = await pipe.execute(raise_on_error=False)
                failed = [
                    item for item, result in zip(batch, results, strict=True) if isinstance(result, Exception)
                ]
                HISTORY_APPENDS.inc(len(batch) - len(failed))
                if failed:
                    log.error(
                        "history append failed: %s", next(r for r in results if isinstance(r, Exception))
                    )
                backoff.reset()
            except FAILURES as exc:
                log.warning("history cannot append to Redis, delivering locally without positions: %s", exc)
                failed = batch
                await asyncio.sleep(backoff.next_delay())
            finally:
                for _ in batch:
                    queue.task_done()
            for item in failed:  # at most once, as a plain broadcast would be
                if item.ticket:
                    self._origins.pop(item.ticket, None)
                self.pubsub.dispatch(Broadcast(item.topic, item.event, item.payload, item.origin))

    # -- receiving --------------------------------------------------------------------------------

    def _arrived(self, topic: str, node: bytes, event: str, payload: Any, position: str) -> None:
        origin = self._origins.pop(node, None) if node.startswith(self._mine) else None
        message = Broadcast(topic, event, payload, origin, position)
        parsed = parse(position)
        merge = self._catching.get(topic)
        if merge is not None and not merge.live(parsed, message):
            return
        self._deliver(topic, parsed, message)

    def _deliver(self, topic: str, position: Position | None, message: Broadcast) -> None:
        if position is not None:
            last = self._last.get(topic)
            if last is not None and last.epoch == position.epoch and position.offset <= last.offset:
                return  # already delivered here (a catch-up read and a live frame overlapped)
            self._last[topic] = position
            if len(self._last) > 1024 + 2 * len(self.pubsub._topics):
                self._forget_unsubscribed()
        self.pubsub.dispatch(message)

    def _forget_unsubscribed(self) -> None:
        subscribed = self.pubsub._topics
        for topic in [t for t in self._last if t not in subscribed]:
            del self._last[topic]

    def _resubscribed(self) -> None:
        """The subscription is back: buffer live frames of our history topics and catch them up."""
        self._forget_unsubscribed()
        topics = [t for t in self.redis_pubsub.topics() if t in self._last and t not in self._catching]
        for topic in topics:
            self._catching[topic] = Merge()
        if topics:
            self._spawn(self._catch_up(topics))

    async def _catch_up(self, topics: list[str]) -> None:
        for topic in topics:
            merge = self._catching[topic]
            keep = self.keeps(topic)
            read = Read(None, (), UNAVAILABLE)
            try:
                await self.redis_pubsub.confirmed(topic)  # subscribed first, then read
                if keep is not None:
                    read = await self._read(topic, keep, self._last.get(topic))
            except FAILURES as exc:
                log.warning("history catch-up of %s failed: %s", topic, exc)
            except asyncio.CancelledError:
                self._catching.pop(topic, None)
                raise
            if read.failure is None and read.top is not None:
                replay = [
                    (e.position, Broadcast(topic, e.event, e.payload, None, str(e.position)))
                    for e in read.entries
                ]
                items = merge.recovered(read.top, replay)
            else:
                if read.failure != UNAVAILABLE:
                    log.warning(
                        "history of %s cannot be caught up (%s); clients recover on rejoin",
                        topic,
                        read.failure,
                    )
                items = merge.fresh(read.top)[1]
            del self._catching[topic]
            for message in items:
                self._deliver(topic, parse(message.ref), message)

    # -- reading ------------------------------------------------------------------------------------

    async def _read(self, topic: str, keep: Keep, since: Position | None) -> Read:
        self._ensure()
        args = [
            _epoch(),
            keep.ttl_ms,
            "" if since is None else since.epoch,
            0 if since is None else since.offset,
        ]
        try:
            result = await self._read_script(keys=self._keys(topic), args=args)
        except FAILURES as exc:
            log.warning("history of %s cannot be read: %s", topic, exc)
            return Read(None, (), UNAVAILABLE)
        epoch = result[0].decode()
        top = Position(epoch, int(result[1]))
        failure = _STATUS.get(result[2])
        if failure is not None:
            return Read(top, (), failure)
        entries = _unpack(epoch, result[3]) if len(result) > 3 else []
        return Read(top, tuple(entries))


def _unpack(epoch: str, packed: bytes) -> list[Entry]:
    """The READ script's entries: ``len id len event kind len payload`` each, lengths 4-byte big endian."""
    entries: list[Entry] = []
    view, at, end = memoryview(packed), 0, len(packed)
    while at < end:
        size = int.from_bytes(view[at : at + 4], "big")
        entry_id = bytes(view[at + 4 : at + 4 + size])
        at += 4 + size
        size = int.from_bytes(view[at : at + 4], "big")
        event = bytes(view[at + 4 : at + 4 + size]).decode()
        kind = view[at + 4 + size]
        at += 5 + size
        size = int.from_bytes(view[at : at + 4], "big")
        payload = codec.load(kind, bytes(view[at + 4 : at + 4 + size]))
        at += 4 + size
        entries.append(Entry(Position(epoch, int(entry_id.split(b"-", 1)[0])), event, payload))
    return entries


class _Append:
    __slots__ = ("data", "event", "head", "keep", "kind", "origin", "payload", "ticket", "topic")

    def __init__(
        self,
        topic: str,
        keep: Keep,
        event: str,
        payload: Any,
        kind: int,
        head: bytes,
        data: bytes,
        ticket: bytes,
        origin: object | None,
    ) -> None:
        self.topic, self.keep, self.event, self.payload = topic, keep, event, payload
        self.kind, self.head, self.data, self.ticket, self.origin = kind, head, data, ticket, origin
