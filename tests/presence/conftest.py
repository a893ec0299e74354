from __future__ import annotations

import asyncio
from typing import Any

import pytest

from relaygate.pubsub import Broadcast, PubSub


class Recorder:
    """A subscriber that keeps every broadcast it gets and lets a test await the next ones."""

    def __init__(self) -> None:
        self.messages: list[Broadcast] = []
        self._arrived = asyncio.Event()

    def deliver(self, message: Broadcast, cache: dict[Any, Any]) -> None:
        self.messages.append(message)
        self._arrived.set()

    def payloads(self, event: str = "presence_diff") -> list[Any]:
        return [m.payload for m in self.messages if m.event == event]

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Any]:
        """Wait until ``count`` presence diffs arrived in total; return them all."""
        async with asyncio.timeout(timeout):
            while len(self.payloads()) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.payloads()


@pytest.fixture
def recorder() -> Any:
    async def make(pubsub: PubSub, topic: str) -> Recorder:
        rec = Recorder()
        await pubsub.subscribe(topic, rec)
        return rec

    return make
