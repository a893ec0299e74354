"""Cluster PubSub through Redis: local dispatch at once, one Redis hop to the other nodes.

Each node keeps one subscriber connection that carries every topic it has local subscribers
for, and one writer task that batches publishes into pipelines. A broadcast is dispatched here
directly and published tagged with this node's id, so the node drops its own echo while every
other node dispatches it once to its local subscribers (one encoding per serializer per node).
Connections are opened in the running process (never inherited across fork) and re-opened with
backoff after a failure, resubscribing every topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from redis.asyncio import Redis
from redis.asyncio.client import PubSub as RedisSubscription
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from relaygate.pubsub import codec
from relaygate.pubsub.backoff import Backoff
from relaygate.pubsub.base import Broadcast, PubSub, Subscriber
from relaygate.telemetry.metrics import PUBSUB_BROADCASTS, PUBSUB_PUBLISH_LATENCY, PUBSUB_RECONNECTS

log = logging.getLogger(__name__)

FAILURES = (RedisError, OSError, asyncio.TimeoutError)


def connect(redis_url: str) -> Redis:
    """A client that reports failures at once instead of retrying silently (we reconnect ourselves)."""
    return Redis.from_url(redis_url, retry=Retry(NoBackoff(), 0), socket_keepalive=True)


Follower = Callable[[RedisSubscription, Callable[[], bool]], Awaitable[None]]
"""Runs on one subscription connection until it fails; calls ``up()`` once it is in sync."""


async def follow(redis: Redis, follower: Follower, *, name: str, lost: Callable[[], None]) -> NoReturn:
    """Run ``follower`` on a fresh subscription again and again: after a Redis failure, call
    ``lost``, close the subscription and retry with backoff. ``up()`` (which the follower calls
    once it is in sync) resets the backoff and returns True when it ends an outage."""
    backoff = Backoff()
    failed = False

    def up() -> bool:
        nonlocal failed
        recovered, failed = failed, False
        backoff.reset()
        if recovered:
            log.info("%s is in sync with Redis again", name)
        return recovered

    while True:
        subscription = redis.pubsub()
        try:
            await follower(subscription, up)
        except FAILURES as exc:
            if not failed:
                log.warning("%s lost Redis: %s", name, exc)
            failed = True
        finally:
            lost()
            with contextlib.suppress(*FAILURES):
                await subscription.aclose()  # type: ignore[no-untyped-call]
        await asyncio.sleep(backoff.next_delay())


class RedisPubSub(PubSub):
    def __init__(
        self,
        redis_url: str,
        node_name: str,
        *,
        prefix: str = "relaygate:pubsub:",
        max_batch: int = 512,
        queue_size: int = 10_000,
    ) -> None:
        super().__init__()
        if len(node_name.encode()) > 246:
            raise ValueError("node_name is too long (at most 246 bytes)")
        self.redis_url = redis_url
        self.node_name = node_name
        self._prefix = prefix
        self._topic_prefix = f"{prefix}t:".encode()
        self._max_batch = max_batch
        self._queue_size = queue_size
        self.on_positioned: Callable[[str, bytes, str, Any, str], None] | None = None
        """Set by the Redis history: takes broadcasts that carry a position (every node's, ours too)."""
        self.on_resubscribed: Callable[[], None] | None = None
        """Set by the Redis history: the subscription came back after an outage (catch up)."""
        self._connections = 0  # never reset: a restart is a reconnection too
        self._reset()

    def _reset(self) -> None:
        """Fresh state; a forked child also gets its own node id, as it is another node."""
        self._pid = os.getpid()
        self.node_id = f"{self.node_name}:{secrets.token_hex(4)}".encode()
        self._control = f"{self._prefix}n:".encode() + self.node_id
        self._started = False
        self._client: Redis | None = None
        self._subscription: RedisSubscription | None = None
        self._connected = False
        self._publishing = True
        self._pending: dict[bytes, deque[asyncio.Future[None]]] = {}
        self._queue: asyncio.Queue[tuple[bytes, bytes, float]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._ready: asyncio.Event | None = None
        self.dropped = 0
        """Broadcasts that could not reach Redis (it was down); local subscribers still got them."""

    @property
    def connected(self) -> bool:
        """True while the subscriber connection is up and subscribed."""
        return self._connected

    @property
    def connections(self) -> int:
        return self._connections

    async def start(self) -> None:
        if self._started and self._pid == os.getpid():
            return
        if self._pid != os.getpid():
            self._reset()  # forked: the parent's connections and tasks are not ours to use
        self._started = True
        self._client = connect(self.redis_url)
        self._queue = asyncio.Queue(self._queue_size)
        self._ready = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="relaygate-pubsub-reader"),
            asyncio.create_task(self._write_loop(), name="relaygate-pubsub-writer"),
        ]

    async def wait_connected(self) -> None:
        """Wait until the subscriber connection is up (after start or a reconnect); bound it yourself."""
        await self.start()
        assert self._ready is not None
        await self._ready.wait()

    async def stop(self) -> None:
        if not self._started:
            return
        if self._queue is not None and self._publishing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await self._queue.join()  # let queued publishes go out
        for task in self._tasks:
            task.cancel()
        _, stuck = await asyncio.wait(self._tasks, timeout=5.0)
        if stuck:
            log.warning("pubsub tasks did not stop: %s", sorted(t.get_name() for t in stuck))
        for waiters in self._pending.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.cancel()
        if self._subscription is not None:
            with contextlib.suppress(*FAILURES):
                await self._subscription.aclose()  # type: ignore[no-untyped-call]
        if self._client is not None:
            with contextlib.suppress(*FAILURES):
                await self._client.aclose()
        self._reset()

    async def subscribe(self, topic: str, subscriber: Subscriber) -> None:
        """Returns once Redis confirmed the channel, so broadcasts from any node reach ``subscriber``."""
        await self.start()
        channel = self._topic_prefix + topic.encode()
        first = self.subscriber_count(topic) == 0
        await super().subscribe(topic, subscriber)
        if first:
            waiter = self._expect_confirmation(channel)
            if self._connected:
                await self._send("subscribe", channel)
        else:
            pending = self._pending.get(channel)
            if not pending:
                return
            waiter = pending[-1]
        await asyncio.shield(waiter)

    def subscribe_now(self, topic: str, subscriber: Subscriber) -> bool:
        """At once when this node already follows ``topic`` (another local subscriber, and Redis
        confirmed the channel): what :meth:`subscribe` would do without waiting. So a join to a
        topic the node already carries needs no round trip and no task."""
        if not self._started or self._pid != os.getpid() or not self.subscriber_count(topic):
            return False
        if self._pending.get(self._topic_prefix + topic.encode()):
            return False
        self._topics[topic][id(subscriber)] = subscriber
        return True

    def unsubscribe_now(self, topic: str, subscriber: Subscriber) -> bool:
        """At once while another local subscriber keeps the topic (no UNSUBSCRIBE to send)."""
        subscribers = self._topics.get(topic)
        if subscribers is None or id(subscriber) not in subscribers or len(subscribers) < 2:
            return False
        del subscribers[id(subscriber)]
        return True

    async def unsubscribe(self, topic: str, subscriber: Subscriber) -> None:
        await super().unsubscribe(topic, subscriber)
        if self._started and self.subscriber_count(topic) == 0 and self._connected:
            await self._send("unsubscribe", self._topic_prefix + topic.encode())

    async def broadcast(self, topic: str, event: str, payload: Any, *, origin: object | None = None) -> None:
        streams = self.streams
        if streams is not None and streams.keeps(topic) is not None:
            await streams.publish(topic, event, payload, origin)
            return
        frame = codec.encode(self.node_id, event, payload)  # bad payloads fail before anyone gets them
        await self.start()
        self.local_broadcast(topic, event, payload, origin=origin)
        PUBSUB_BROADCASTS.labels("out").inc()
        assert self._queue is not None
        if not self._publishing:
            self.dropped += 1
            return
        await self._queue.put((self._topic_prefix + topic.encode(), frame, time.perf_counter()))

    def channel(self, topic: str) -> bytes:
        """The Redis channel that carries ``topic``."""
        return self._topic_prefix + topic.encode()

    def topics(self) -> list[str]:
        """Topics with local subscribers."""
        return list(self._topics)

    async def confirmed(self, topic: str) -> None:
        """Wait until Redis confirmed the subscription of ``topic`` (at once when it has)."""
        pending = self._pending.get(self._topic_prefix + topic.encode())
        if pending:
            await asyncio.shield(pending[-1])

    async def broadcast_confirmed(self, topic: str, event: str, payload: Any) -> int:
        """Published directly (not through the batching writer); Redis has handed the message to
        every subscribed node's connection when this returns."""
        frame = codec.encode(self.node_id, event, payload)
        await self.start()
        self.local_broadcast(topic, event, payload)
        PUBSUB_BROADCASTS.labels("out").inc()
        assert self._client is not None
        receivers = int(await self._client.publish(self._topic_prefix + topic.encode(), frame))
        subscribed_here = self._connected and self.subscriber_count(topic) > 0
        return max(0, receivers - 1) if subscribed_here else receivers

    def _expect_confirmation(self, channel: bytes) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(channel, deque()).append(waiter)
        return waiter

    async def _send(self, command: str, *channels: bytes) -> None:
        """Send (UN)SUBSCRIBE; a failure is left to the reader, which reconnects and resubscribes."""
        subscription = self._subscription
        if subscription is None:
            return
        with contextlib.suppress(*FAILURES):
            if command == "subscribe":
                await subscription.subscribe(*channels)
            else:
                await subscription.unsubscribe(*channels)

    async def _read_loop(self) -> None:
        assert self._client is not None
        await follow(self._client, self._follow, name="pubsub", lost=self._lost)

    async def _follow(self, subscription: RedisSubscription, up: Callable[[], bool]) -> None:
        await subscription.subscribe(self._control)
        self._subscription = subscription
        await self._resubscribe()
        if up():
            PUBSUB_RECONNECTS.inc()
            if self.on_resubscribed is not None:
                self.on_resubscribed()
        await self._receive(subscription)

    def _lost(self) -> None:
        self._connected = False
        self._subscription = None
        assert self._ready is not None
        self._ready.clear()

    async def _resubscribe(self) -> None:
        """On a fresh connection: subscribe every topic with local subscribers, release old waiters."""
        previous, self._pending = self._pending, {}
        self._connected = True
        self._connections += 1
        channels = {self._topic_prefix + topic.encode() for topic in self._topics} | set(previous)
        wanted = [c for c in channels if self.subscriber_count(c[len(self._topic_prefix) :].decode()) > 0]
        for channel in wanted:
            waiter = self._expect_confirmation(channel)
            for old in previous.pop(channel, ()):
                waiter.add_done_callback(_release(old))
        for waiters in previous.values():  # nobody subscribes there any more
            for old in waiters:
                if not old.done():
                    old.set_result(None)
        if wanted:
            assert self._subscription is not None
            await self._subscription.subscribe(*wanted)
        assert self._ready is not None
        self._ready.set()

    async def _receive(self, subscription: RedisSubscription) -> None:
        prefix_len = len(self._topic_prefix)
        while True:
            message = await subscription.get_message(timeout=None)
            if message is None:
                continue
            kind = message["type"]
            channel: bytes = message["channel"]
            if kind == "message":
                self._on_frame(channel[prefix_len:].decode(), message["data"])
            elif kind == "subscribe":
                pending = self._pending.get(channel)
                if pending:
                    waiter = pending.popleft()
                    if not pending:
                        del self._pending[channel]
                    if not waiter.done():
                        waiter.set_result(None)

    def _on_frame(self, topic: str, frame: bytes) -> None:
        if codec.is_echo(frame, self.node_id):
            return  # our own broadcast, already dispatched locally
        try:
            node, event, payload, position = codec.decode(frame)
        except codec.FrameError as exc:
            log.warning("dropped a malformed broadcast on %r: %s", topic, exc)
            return
        if position is not None:
            if self.on_positioned is not None:
                PUBSUB_BROADCASTS.labels("in").inc()
                self.on_positioned(topic, node, event, payload, position)
            return
        PUBSUB_BROADCASTS.labels("in").inc()
        self.dispatch(Broadcast(topic, event, payload))

    async def _write_loop(self) -> None:
        assert self._queue is not None and self._client is not None
        queue, client = self._queue, self._client
        backoff = Backoff()
        while True:
            batch = [await queue.get()]
            while len(batch) < self._max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                if len(batch) == 1:
                    await client.publish(batch[0][0], batch[0][1])
                else:
                    pipe = client.pipeline(transaction=False)
                    for channel, frame, _ in batch:
                        pipe.publish(channel, frame)
                    await pipe.execute()
                now = time.perf_counter()
                for _, _, queued_at in batch:
                    PUBSUB_PUBLISH_LATENCY.observe(now - queued_at)
            except FAILURES as exc:
                log.warning("pubsub cannot publish to Redis, dropping broadcasts until it is back: %s", exc)
                self._publishing = False
                self.dropped += len(batch)
                await self._wait_for_redis(client, backoff)
            finally:
                for _ in batch:
                    queue.task_done()

    async def _wait_for_redis(self, client: Redis, backoff: Backoff) -> None:
        assert self._queue is not None
        while True:
            while not self._queue.empty():
                self._queue.get_nowait()
                self._queue.task_done()
                self.dropped += 1
            await asyncio.sleep(backoff.next_delay())
            try:
                await client.ping()
            except FAILURES:
                continue
            self._publishing = True
            backoff.reset()
            return


def _release(old: asyncio.Future[None]) -> Any:
    def callback(new: asyncio.Future[None]) -> None:
        if not old.done():
            old.set_result(None)

    return callback
