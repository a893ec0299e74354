"""A recording PubSub subscriber for the cluster tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from relaygate.pubsub import Broadcast


class Recorder:
    """Keeps every broadcast it gets (with the dispatch cache) and lets a test await the next ones."""

    def __init__(self) -> None:
        self.messages: list[Broadcast] = []
        self.caches: list[dict[Any, Any]] = []
        self._arrived = asyncio.Event()

    def deliver(self, message: Broadcast, cache: dict[Any, Any]) -> None:
        self.messages.append(message)
        self.caches.append(cache)
        self._arrived.set()

    def payloads(self, event: str = "presence_diff") -> list[Any]:
        return [m.payload for m in self.messages if m.event == event]

    async def wait_until(self, done: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                self._arrived.clear()
                await self._arrived.wait()

    async def wait_for(self, count: int, event: str = "presence_diff", timeout: float = 10.0) -> list[Any]:
        """Wait until ``count`` messages of ``event`` arrived in total; return their payloads."""
        await self.wait_until(lambda: len(self.payloads(event)) >= count, timeout)
        return self.payloads(event)
