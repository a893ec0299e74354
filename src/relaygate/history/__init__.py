"""History and recovery: bounded per-topic streams of broadcasts with positions.

Declare which topics keep history (``Keep(size, ttl)`` per topic pattern); every broadcast on
them carries a position (``"<epoch>:<offset>"``) in the frame's ref slot, and a join with
``{"since": position}`` gets what it missed, or ``recovered: false``. :class:`MemoryHistory`
serves one node, :class:`RedisHistory` a cluster. :class:`Merge` is the sans-I/O merge of a
recovery read with live broadcasts.
"""

from relaygate.history.base import REASONS, Entry, History, Read
from relaygate.history.memory import MemoryHistory
from relaygate.history.merge import Merge
from relaygate.history.redis import RedisHistory
from relaygate.history.retention import Keep, Retention
from relaygate.protocol.positions import Position, parse

__all__ = [
    "REASONS",
    "Entry",
    "History",
    "Keep",
    "MemoryHistory",
    "Merge",
    "Position",
    "Read",
    "RedisHistory",
    "Retention",
    "parse",
]
