from __future__ import annotations

import asyncio
import multiprocessing
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from relaygate.pubsub import Broadcast
from relaygate.pubsub.redis import RedisPubSub
from relaygate.telemetry.metrics import PUBSUB_RECONNECTS
from tests.recording import Recorder
from tests.servers import RedisServer

Nodes = Callable[..., Any]


@pytest.fixture
async def nodes(redis_url: str) -> AsyncIterator[Nodes]:
    """Factory of started RedisPubSub nodes (stopped after the test)."""
    made: list[RedisPubSub] = []

    async def make(name: str, url: str = redis_url) -> RedisPubSub:
        node = RedisPubSub(url, name)
        made.append(node)
        async with asyncio.timeout(10):
            await node.wait_connected()
        return node

    yield make
    for node in made:
        await node.stop()


def topic() -> str:
    return f"room:{uuid.uuid4().hex[:8]}"


async def subscribed(node: RedisPubSub, name: str) -> Recorder:
    rec = Recorder()
    await node.subscribe(name, rec)
    return rec


async def test_broadcast_reaches_every_node_once(nodes: Nodes) -> None:
    a, b = await nodes("a"), await nodes("b")
    t = topic()
    rec_a, rec_b, rec_b2 = await subscribed(a, t), await subscribed(b, t), await subscribed(b, t)
    await a.broadcast(t, "new_msg", {"body": "hi"})
    assert [m.payload for m in rec_a.messages] == [{"body": "hi"}]  # local dispatch is immediate
    await rec_b.wait_for(1, "new_msg")
    # b answers; once a has that answer, a's own echo (published earlier) was processed too
    await b.broadcast(t, "ack", {})
    await rec_a.wait_for(1, "ack")
    assert [(m.event, m.payload) for m in rec_a.messages] == [("new_msg", {"body": "hi"}), ("ack", {})]
    assert [(m.event, m.payload) for m in rec_b.messages] == [("new_msg", {"body": "hi"}), ("ack", {})]
    assert rec_b.messages[0] == Broadcast(t, "new_msg", {"body": "hi"})
    # fastlane: both subscribers of one remote dispatch share its cache
    assert rec_b.caches[0] is rec_b2.caches[0]
    assert rec_b.caches[0] is not rec_b.caches[1]


async def test_broadcast_from_skips_origin_only_on_the_sender(nodes: Nodes) -> None:
    a, b = await nodes("a"), await nodes("b")
    t = topic()
    sender, neighbour, remote = await subscribed(a, t), await subscribed(a, t), await subscribed(b, t)
    await a.broadcast(t, "typing", {"u": 1}, origin=sender)
    await remote.wait_for(1, "typing")
    assert sender.messages == []
    assert len(neighbour.messages) == 1
    assert remote.messages[0].origin is None


async def test_binary_payload_survives_the_hop(nodes: Nodes) -> None:
    a, b = await nodes("a"), await nodes("b")
    t = topic()
    rec = await subscribed(b, t)
    data = bytes(range(256)) * 4
    await a.broadcast(t, "bin", data)
    await rec.wait_for(1, "bin")
    assert rec.messages[0].payload == data
    assert isinstance(rec.messages[0].payload, bytes)


async def test_subscribe_returns_once_redis_confirmed(nodes: Nodes) -> None:
    a, b = await nodes("a"), await nodes("b")
    topics = [topic() for _ in range(20)]
    recs = []
    for t in topics:
        recs.append(await subscribed(b, t))
        await a.broadcast(t, "first", {"t": t})  # published right after subscribe returned
    for t, rec in zip(topics, recs, strict=True):
        await rec.wait_for(1, "first")
        assert rec.messages[0].payload == {"t": t}


async def test_concurrent_subscribers_all_wait_for_the_confirmation(nodes: Nodes) -> None:
    a, b = await nodes("a"), await nodes("b")
    t = topic()
    recs = [Recorder() for _ in range(5)]
    await asyncio.gather(*(b.subscribe(t, rec) for rec in recs))
    await a.broadcast(t, "e", {})
    for rec in recs:
        await rec.wait_for(1, "e")


async def test_subscribe_now_only_for_a_topic_the_node_already_follows(nodes: Nodes) -> None:
    """A second local subscriber joins at once (no round trip); the first, or one while the
    confirmation is pending, must await ``subscribe``."""
    a, b = await nodes("a"), await nodes("b")
    t = topic()
    first, second, third = Recorder(), Recorder(), Recorder()
    assert not b.subscribe_now(t, first)
    assert b.subscriber_count(t) == 0  # nothing done
    pending = asyncio.ensure_future(b.subscribe(t, first))
    await asyncio.sleep(0)
    assert not b.subscribe_now(t, third)  # Redis has not confirmed the channel yet
    await pending
    assert b.subscribe_now(t, second)
    await a.broadcast(t, "e", {"n": 1})
    await second.wait_for(1, "e")
    await first.wait_for(1, "e")
    assert third.messages == []


async def test_unsubscribe_now_only_while_another_local_subscriber_keeps_the_topic(
    nodes: Nodes, redis_url: str
) -> None:
    a = await nodes("a")
    t = topic()
    channel = a._topic_prefix + t.encode()
    first, second = Recorder(), Recorder()
    await a.subscribe(t, first)
    await a.subscribe(t, second)
    assert a.unsubscribe_now(t, first)
    assert not a.unsubscribe_now(t, first)  # not subscribed any more: nothing to do at once
    assert not a.unsubscribe_now(t, second)  # the last one: Redis must be told
    assert a.subscriber_count(t) == 1
    await a.unsubscribe(t, second)
    client = Redis.from_url(redis_url)
    try:
        async with asyncio.timeout(10):
            while await client.pubsub_numsub(channel) != [(channel, 0)]:
                await asyncio.sleep(0.01)
    finally:
        await client.aclose()


async def test_one_redis_subscription_per_topic_and_node(nodes: Nodes, redis_url: str) -> None:
    a = await nodes("a")
    t = topic()
    channel = a._topic_prefix + t.encode()
    first, second = Recorder(), Recorder()
    client = Redis.from_url(redis_url)
    try:
        await a.subscribe(t, first)
        await a.subscribe(t, second)
        assert await client.pubsub_numsub(channel) == [(channel, 1)]
        await a.unsubscribe(t, first)
        assert await client.pubsub_numsub(channel) == [(channel, 1)]
        await a.unsubscribe(t, second)
        async with asyncio.timeout(10):
            while await client.pubsub_numsub(channel) != [(channel, 0)]:
                await asyncio.sleep(0.01)
        # and back again
        await a.subscribe(t, first)
        assert await client.pubsub_numsub(channel) == [(channel, 1)]
    finally:
        await client.aclose()


async def test_order_is_kept_under_load(nodes: Nodes) -> None:
    a, b = await nodes("a"), await nodes("b")
    t = topic()
    rec = await subscribed(b, t)
    for n in range(2000):
        await a.broadcast(t, "n", {"n": n})
    await rec.wait_for(2000, "n")
    assert [m.payload["n"] for m in rec.messages] == list(range(2000))


async def test_unencodable_payload_reaches_nobody(nodes: Nodes) -> None:
    a = await nodes("a")
    t = topic()
    rec = await subscribed(a, t)
    with pytest.raises(TypeError):
        await a.broadcast(t, "e", {"x": object()})
    assert rec.messages == []


async def test_constructing_opens_no_connection(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        before = len(await client.client_list())
        node = RedisPubSub(redis_url, "lazy")
        assert len(await client.client_list()) == before
        assert not node.connected
        await node.stop()  # stopping a never-started node is fine
    finally:
        await client.aclose()


def _forked_child(node: RedisPubSub, t: str) -> None:
    async def main() -> None:
        await node.wait_connected()  # the inherited object opens its own connections
        await node.broadcast(t, "from_child", {"ok": True})
        await node.stop()

    asyncio.run(main())


async def test_a_forked_child_uses_its_own_connections(nodes: Nodes) -> None:
    parent, other = await nodes("parent"), await nodes("other")
    t = topic()
    rec_parent, rec_other = await subscribed(parent, t), await subscribed(other, t)
    child = multiprocessing.get_context("fork").Process(target=_forked_child, args=(parent, t))
    child.start()
    await asyncio.to_thread(child.join, 30)
    assert child.exitcode == 0
    await rec_other.wait_for(1, "from_child")
    await rec_parent.wait_for(1, "from_child")  # the child has another node id: no echo suppression
    # the parent's connections were not disturbed by the child
    await parent.broadcast(t, "after", {})
    await rec_other.wait_for(1, "after")


async def test_survives_a_redis_restart(nodes: Nodes) -> None:
    server = RedisServer()
    server.start()
    try:
        a, b = await nodes("a", server.url), await nodes("b", server.url)
        t = topic()
        rec = await subscribed(b, t)
        await a.broadcast(t, "before", {})
        await rec.wait_for(1, "before")
        reconnects = PUBSUB_RECONNECTS._value.get()
        server.stop()
        await a.broadcast(t, "during", {})  # local subscribers still get it; no exception
        server.start()
        async with asyncio.timeout(20):
            await b.wait_connected()
        async with asyncio.timeout(20):
            n = 0
            while not rec.payloads("after"):
                await a.broadcast(t, "after", {"n": n})
                n += 1
                await asyncio.sleep(0.1)
        assert PUBSUB_RECONNECTS._value.get() > reconnects
        async with asyncio.timeout(20):
            await a.wait_connected()
        assert a.connected and b.connected
    finally:
        server.close()
