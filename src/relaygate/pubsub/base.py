"""The PubSub contract shared by every adapter."""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger("relaygate.pubsub")


@dataclass(frozen=True, slots=True)
class Broadcast:
    """One message on a topic. ``payload`` is a JSON-able dict or ``bytes`` (binary frame)."""

    topic: str
    event: str
    payload: Any
    origin: object | None = field(default=None, compare=False)
    """The subscriber to skip (``broadcast_from``); only meaningful on the publishing node."""
    ref: str | None = None
    """Sent in the frame's ref slot to every subscriber (e.g. a history position); None = null."""


class Subscriber(Protocol):
    """Receives broadcasts. ``deliver`` must not block: queue work, never await."""

    def deliver(self, message: Broadcast, cache: dict[Any, Any]) -> None: ...


class Streams(Protocol):
    """What a PubSub needs of an attached history (``relaygate.history``)."""

    def keeps(self, topic: str) -> object | None:
        """Non-None when ``topic`` keeps history."""

    async def publish(self, topic: str, event: str, payload: Any, origin: object | None) -> None:
        """Append and deliver everywhere with a position."""


class PubSub(abc.ABC):
    """Topic -> subscribers registry with local dispatch; adapters add the cluster hop."""

    def __init__(self) -> None:
        self._topics: dict[str, dict[int, Subscriber]] = {}
        self.on_dispatch: Callable[[Broadcast, int], None] | None = None
        self.streams: Streams | None = None
        """Set by a history engine: broadcasts on its topics go through it."""

    async def start(self) -> None:
        """Open connections the adapter needs."""

    async def stop(self) -> None:
        """Close connections the adapter opened."""

    async def subscribe(self, topic: str, subscriber: Subscriber) -> None:
        """Subscribe; when this returns, broadcasts on ``topic`` from any node reach ``subscriber``."""
        self._topics.setdefault(topic, {})[id(subscriber)] = subscriber

    def subscribe_now(self, topic: str, subscriber: Subscriber) -> bool:
        """:meth:`subscribe` without suspending, where that needs no round trip: True once
        subscribed; False (and nothing done) when the caller must await :meth:`subscribe` (an
        adapter with a subscribe of its own, e.g. one that waits for the cluster to confirm)."""
        if type(self).subscribe is not PubSub.subscribe:
            return False
        self._topics.setdefault(topic, {})[id(subscriber)] = subscriber
        return True

    async def unsubscribe(self, topic: str, subscriber: Subscriber) -> None:
        self._drop(topic, subscriber)

    def unsubscribe_now(self, topic: str, subscriber: Subscriber) -> bool:
        """:meth:`unsubscribe` without suspending, where that needs no round trip: True once
        unsubscribed; False (and nothing done) when the caller must await :meth:`unsubscribe`."""
        if type(self).unsubscribe is not PubSub.unsubscribe:
            return False
        self._drop(topic, subscriber)
        return True

    def _drop(self, topic: str, subscriber: Subscriber) -> None:
        subscribers = self._topics.get(topic)
        if subscribers is None:
            return
        subscribers.pop(id(subscriber), None)
        if not subscribers:
            del self._topics[topic]

    @property
    def connected(self) -> bool:
        """Whether broadcasts from every node reach this node's subscribers now."""
        return True

    @property
    def connections(self) -> int:
        """Counts (re)connections to the cluster: a subscriber that saw the same count twice, with
        ``connected`` both times, missed no broadcast in between."""
        return 1

    async def broadcast_confirmed(self, topic: str, event: str, payload: Any) -> int:
        """As :meth:`broadcast`, but returns only once the message has left this node for every
        other one (raising if it could not), with how many other nodes it reached."""
        await self.broadcast(topic, event, payload)
        return 0

    def subscriber_count(self, topic: str) -> int:
        return len(self._topics.get(topic, ()))

    def topic_counts(self) -> list[tuple[str, int]]:
        """Every topic with local subscribers and how many (the dashboard's channel list)."""
        return [(topic, len(subscribers)) for topic, subscribers in self._topics.items()]

    def local_broadcast(self, topic: str, event: str, payload: Any, *, origin: object | None = None) -> int:
        """Deliver to this node's subscribers only; returns how many were reached."""
        return self.dispatch(Broadcast(topic, event, payload, origin))

    def dispatch(self, message: Broadcast) -> int:
        """Deliver to every local subscriber; one that raises is logged and skipped, never lets the
        rest of the fan-out (or the broadcaster, or a node's reader loop) fail with it."""
        subscribers = self._topics.get(message.topic)
        if not subscribers:
            return 0
        cache: dict[Any, Any] = {}
        delivered = 0
        for subscriber in list(subscribers.values()):
            if subscriber is message.origin:
                continue
            try:
                subscriber.deliver(message, cache)
            except Exception:
                log.exception("a subscriber of %r failed on %r", message.topic, message.event)
                continue
            delivered += 1
        if self.on_dispatch is not None:
            self.on_dispatch(message, delivered)
        return delivered

    @abc.abstractmethod
    async def broadcast(self, topic: str, event: str, payload: Any, *, origin: object | None = None) -> None:
        """Deliver to every subscriber on every node (the sender included unless it is ``origin``)."""
