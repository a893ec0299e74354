"""The Redis engine on a real Redis: shared positions across nodes, atomic append+publish,
epochs after loss, catch-up after a dropped subscription."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from relaygate.history import Keep, RedisHistory, parse
from relaygate.pubsub.redis import RedisPubSub
from tests.recording import Recorder

Nodes = Callable[..., Any]


@pytest.fixture
async def nodes(redis_url: str) -> AsyncIterator[Nodes]:
    """Factory of started (RedisPubSub, RedisHistory) nodes keeping history on `room:*`."""
    made: list[tuple[RedisPubSub, RedisHistory]] = []

    async def make(name: str, keep: Keep = Keep(5, 60)) -> tuple[RedisPubSub, RedisHistory]:
        pubsub = RedisPubSub(redis_url, name)
        history = RedisHistory(pubsub)
        history.keep("room:*", keep)
        made.append((pubsub, history))
        async with asyncio.timeout(10):
            await pubsub.wait_connected()
        await history.start()
        return pubsub, history

    yield make
    for pubsub, history in made:
        await history.stop()
        await pubsub.stop()


def topic() -> str:
    return f"room:{uuid.uuid4().hex[:8]}"


def offsets(recorder: Recorder) -> list[int]:
    return [parse(m.ref).offset for m in recorder.messages]  # type: ignore[union-attr]


async def test_every_node_delivers_the_same_positions_in_order_and_either_can_recover(nodes: Nodes) -> None:
    (a, ha), (b, hb) = await nodes("a"), await nodes("b")
    t = topic()
    rec_a, rec_b = Recorder(), Recorder()
    await a.subscribe(t, rec_a)
    await b.subscribe(t, rec_b)
    start = await ha.read(t, None)
    await asyncio.gather(*(pubsub.broadcast(t, "m", {"n": n}) for n in range(6) for pubsub in (a, b)))
    await rec_a.wait_for(12, "m")
    await rec_b.wait_for(12, "m")
    assert offsets(rec_a) == offsets(rec_b) == list(range(1, 13))
    assert [m.payload for m in rec_a.messages] == [m.payload for m in rec_b.messages]
    assert start.top is not None
    mid = rec_a.messages[8].ref
    read = await hb.read(t, mid)
    assert read.failure is None
    assert [str(e.position) for e in read.entries] == [m.ref for m in rec_a.messages[9:]]
    assert [e.payload for e in read.entries] == [m.payload for m in rec_b.messages[9:]]
    assert (await ha.read(t, rec_a.messages[2].ref)).failure == "trimmed"  # size 5
    assert (await ha.read(t, f"{start.top.epoch}:99")).failure == "unknown"
    assert (await ha.read(t, "nope:1")).failure == "epoch"


async def test_broadcast_from_skips_the_origin_on_its_node_only(nodes: Nodes) -> None:
    (a, _), (b, _) = await nodes("a"), await nodes("b")
    t = topic()
    origin, other, remote = Recorder(), Recorder(), Recorder()
    for pubsub, rec in ((a, origin), (a, other), (b, remote)):
        await pubsub.subscribe(t, rec)
    await a.broadcast(t, "m", {"x": 1}, origin=origin)
    await a.broadcast(t, "m", b"\x01\x02")
    await other.wait_for(2, "m")
    await remote.wait_for(2, "m")
    assert [m.payload for m in origin.messages] == [b"\x01\x02"]
    assert [m.payload for m in remote.messages] == [{"x": 1}, b"\x01\x02"]


async def test_a_stream_lost_by_redis_gets_a_new_epoch_never_a_wrong_replay(
    nodes: Nodes, redis: Redis
) -> None:
    (a, ha), _ = await nodes("a"), None
    t = topic()
    rec = Recorder()
    await a.subscribe(t, rec)
    for n in range(3):
        await a.broadcast(t, "m", {"n": n})
    await rec.wait_for(3, "m")
    seen = rec.messages[0].ref
    await redis.flushall()  # what a restart without persistence leaves
    for n in range(3):
        await a.broadcast(t, "m", {"n": n + 10})
    await rec.wait_for(6, "m")
    read = await ha.read(t, seen)
    assert read.failure == "epoch" and read.entries == ()
    assert read.top is not None and read.top.epoch != parse(seen).epoch  # type: ignore[union-attr]


async def test_idle_streams_expire_in_redis(nodes: Nodes, redis: Redis) -> None:
    (a, ha), _ = await nodes("a", Keep(5, 0.2)), None
    t = topic()
    await a.broadcast(t, "m", {})
    await ha.stop()  # flushes the append
    await ha.start()
    keys = await redis.keys(f"relaygate:h:{t}*")
    assert len(keys) == 2
    ttls = [await redis.pttl(k) for k in keys]
    assert all(0 < ttl <= 200 for ttl in ttls), ttls


async def test_a_node_whose_subscription_dropped_catches_up_from_the_streams(
    nodes: Nodes, redis: Redis
) -> None:
    (a, _), (b, _) = await nodes("a"), await nodes("b")
    t = topic()
    rec = Recorder()
    await b.subscribe(t, rec)
    await a.broadcast(t, "m", {"n": 0})
    await rec.wait_for(1, "m")
    reconnected = asyncio.Event()
    previous = b.on_resubscribed
    assert previous is not None

    def hook() -> None:
        previous()
        reconnected.set()

    b.on_resubscribed = hook
    await redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")  # both nodes lose their subscription
    for n in range(1, 4):  # a still publishes (its command connection is fine); b's subscription is away
        await a.broadcast(t, "m", {"n": n})
    async with asyncio.timeout(10):
        await reconnected.wait()
    await a.broadcast(t, "m", {"n": 4})
    await rec.wait_for(5, "m")
    assert [m.payload["n"] for m in rec.messages] == [0, 1, 2, 3, 4]
    assert offsets(rec) == [1, 2, 3, 4, 5]
