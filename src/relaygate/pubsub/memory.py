"""Single-node PubSub: broadcasts never leave the process."""

from __future__ import annotations

from typing import Any

from relaygate.pubsub.base import PubSub


class MemoryPubSub(PubSub):
    async def broadcast(self, topic: str, event: str, payload: Any, *, origin: object | None = None) -> None:
        streams = self.streams
        if streams is not None and streams.keeps(topic) is not None:
            await streams.publish(topic, event, payload, origin)
            return
        self.local_broadcast(topic, event, payload, origin=origin)
