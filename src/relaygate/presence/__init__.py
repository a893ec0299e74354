"""Who is on a topic: metas per key, ``presence_diff`` broadcasts, one node or many through Redis.

``MemoryPresence`` serves one node; ``RedisPresence`` replicates through Redis so that every node
lists the same state and notifies its own subscribers of every change once.
"""

from relaygate.presence.base import AlreadyTracked, NoPresence, Presence, PresenceError
from relaygate.presence.memory import MemoryPresence
from relaygate.presence.redis import RedisPresence

__all__ = ["AlreadyTracked", "MemoryPresence", "NoPresence", "Presence", "PresenceError", "RedisPresence"]
