"""Single-node PubSub: broadcasts never leave the process."""

from __future__ import annotations

from typing import Any

from relaygate.pubsub.base import PubSub


class MemoryPubSub(PubSub):
    async def broadcast(self, topic: str, event: str, payload: Any, *, origin: object | None = None) -> None:
        self.local_broadcast(topic, event, payload, origin=origin)
