"""Local dispatch: every subscriber of a topic gets each broadcast, whatever the others do."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from relaygate.pubsub import Broadcast, MemoryPubSub
from relaygate.pubsub.base import Subscriber
from tests.recording import Recorder


class Failing:
    def deliver(self, message: Broadcast, cache: dict[Any, Any]) -> None:
        raise RuntimeError("subscriber bug")


async def test_a_failing_subscriber_does_not_starve_the_others(caplog: pytest.LogCaptureFixture) -> None:
    pubsub = MemoryPubSub()
    before, after = Recorder(), Recorder()
    await pubsub.subscribe("room:1", before)
    await pubsub.subscribe("room:1", Failing())
    await pubsub.subscribe("room:1", after)
    with caplog.at_level(logging.ERROR, logger="relaygate.pubsub"):
        await pubsub.broadcast("room:1", "new_msg", {"body": "hi"})
    assert [m.payload for m in before.messages] == [{"body": "hi"}]
    assert [m.payload for m in after.messages] == [{"body": "hi"}]
    assert "subscriber bug" in caplog.text


async def test_subscribe_now_registers_at_once_unless_the_adapter_has_its_own_subscribe() -> None:
    recorder = Recorder()
    pubsub = MemoryPubSub()
    assert pubsub.subscribe_now("t", recorder)
    await pubsub.broadcast("t", "e", {})
    assert [m.event for m in recorder.messages] == ["e"]

    class Confirming(MemoryPubSub):
        async def subscribe(self, topic: str, subscriber: Subscriber) -> None:
            await super().subscribe(topic, subscriber)

    confirming = Confirming()
    assert not confirming.subscribe_now("t", Recorder())
    assert confirming.subscriber_count("t") == 0


async def test_unsubscribe_now_drops_at_once_unless_the_adapter_has_its_own_unsubscribe() -> None:
    kept, dropped = Recorder(), Recorder()
    pubsub = MemoryPubSub()
    await pubsub.subscribe("t", kept)
    await pubsub.subscribe("t", dropped)
    assert pubsub.unsubscribe_now("t", dropped)
    await pubsub.broadcast("t", "e", {})
    assert dropped.messages == [] and len(kept.messages) == 1
    assert pubsub.unsubscribe_now("t", kept) and pubsub.subscriber_count("t") == 0

    class Waiting(MemoryPubSub):
        async def unsubscribe(self, topic: str, subscriber: Subscriber) -> None:
            await super().unsubscribe(topic, subscriber)

    waiting = Waiting()
    await waiting.subscribe("t", kept)
    assert not waiting.unsubscribe_now("t", kept)
    assert waiting.subscriber_count("t") == 1
