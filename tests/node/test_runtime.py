"""The composition root picks the one-node or the cluster parts from the settings."""

from __future__ import annotations

import asyncio
from typing import Any

from relaygate.config import Settings
from relaygate.db import Database
from relaygate.node import create_app, shared_redis
from relaygate.presence import MemoryPresence, RedisPresence
from relaygate.pubsub import Broadcast, MemoryPubSub
from relaygate.pubsub.redis import RedisPubSub


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Broadcast] = []

    def deliver(self, message: Broadcast, cache: dict[Any, Any]) -> None:
        self.messages.append(message)


def test_one_node_uses_memory_parts(settings: Settings) -> None:
    node = create_app(settings).state.relaygate
    assert isinstance(node.pubsub, MemoryPubSub)
    assert isinstance(node.presence, MemoryPresence)


async def test_cluster_mode_shares_broadcasts_and_presence_through_redis(
    settings: Settings, db: Database, redis_url: str
) -> None:
    one = create_app(settings.model_copy(update={"redis_url": redis_url, "node_name": "node-a"}))
    two = create_app(settings.model_copy(update={"redis_url": redis_url, "node_name": "node-b"}))
    node_one, node_two = one.state.relaygate, two.state.relaygate
    assert isinstance(node_one.pubsub, RedisPubSub) and isinstance(node_one.presence, RedisPresence)
    async with one.router.lifespan_context(one), two.router.lifespan_context(two):
        inbox = Inbox()
        await node_two.pubsub.subscribe("room:x", inbox)
        await node_one.pubsub.broadcast("room:x", "hello", {"n": 1})
        owner = object()
        await node_one.presence.track(owner, "room:x", "42", {"device": "phone"})
        for _ in range(200):
            if any(m.event == "hello" for m in inbox.messages) and node_two.presence.list("room:x"):
                break
            await asyncio.sleep(0.02)
        assert [(m.event, m.payload) for m in inbox.messages if m.event == "hello"] == [("hello", {"n": 1})]
        metas = node_two.presence.list("room:x")["42"]["metas"]
        assert [meta["device"] for meta in metas] == ["phone"]


async def test_the_shared_redis_client_waits_for_a_free_connection(redis_url: str) -> None:
    """150 commands at once hold 150 connections: the default pool of redis-py fails past 100."""
    redis = shared_redis(redis_url)
    try:
        results = await asyncio.gather(*(redis.blpop([f"empty:{n}"], timeout=0.1) for n in range(150)))
    finally:
        await redis.aclose()
    assert results == [None] * 150
