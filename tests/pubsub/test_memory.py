"""Local dispatch: every subscriber of a topic gets each broadcast, whatever the others do."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from relaygate.pubsub import Broadcast, MemoryPubSub
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
