"""Topic fan-out inside a node (memory) and across nodes (Redis).

The public surface is :class:`PubSub` with :class:`Broadcast` messages delivered to
:class:`Subscriber` objects. Subscribers get a per-dispatch ``cache`` dict so that the
channel runtime can encode a broadcast once per serializer (Phoenix's fastlane).
"""

from relaygate.pubsub.base import Broadcast, PubSub, Subscriber
from relaygate.pubsub.memory import MemoryPubSub
from relaygate.pubsub.redis import RedisPubSub

__all__ = ["Broadcast", "MemoryPubSub", "PubSub", "RedisPubSub", "Subscriber"]
