"""Where a client channel stands in its topic's history, sans I/O.

Broadcasts on a topic with history carry their position as the frame's ref. The tracker keeps
the last one, tells duplicates (a replay of what was already seen) from new messages, and
notices gaps so the channel can rejoin with ``since`` and have them filled: a new epoch while
connected always, a skipped offset only with ``refill`` (offsets are skipped legitimately too:
``broadcast_from`` never sends a socket its own broadcast, and ``handle_out`` may drop one).
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from relaygate.protocol import Position, parse_position

MAX_MISSING: Final = 10_000


class Seen(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    GAP = "gap"
    PLAIN = "plain"
    """No position: a topic without history, or a push."""


class Tracker:
    __slots__ = ("_broken", "_epoch", "_last", "_missing", "refill")

    def __init__(self, refill: bool = False) -> None:
        self.refill = refill
        self._epoch: str | None = None
        self._last = 0
        self._missing: set[int] = set()
        self._broken = False

    @property
    def position(self) -> str | None:
        """What to send as ``since``: just before the first message not received."""
        if self._epoch is None:
            return None
        resume = min(self._missing) - 1 if self._missing else self._last
        return str(Position(self._epoch, resume))

    @property
    def gap(self) -> bool:
        """Something was missed while connected (a rejoin with ``since`` fills it)."""
        return bool(self._missing) or self._broken

    def joined(self, position: object, recovered: object) -> None:
        """A join reply: after a successful recovery the replay follows; otherwise start over at
        the announced position."""
        if recovered is True:
            return
        parsed = parse_position(position)
        self._epoch, self._last = (None, 0) if parsed is None else (parsed.epoch, parsed.offset)
        self._missing.clear()
        self._broken = False

    def seen(self, ref: str | None) -> Seen:
        parsed = parse_position(ref)
        if parsed is None:
            return Seen.PLAIN
        if self._epoch is None:
            self._epoch, self._last = parsed.epoch, parsed.offset
            return Seen.NEW
        if parsed.epoch != self._epoch:
            self._broken = True  # the stream's history may have been lost: rejoin to find out
            return Seen.GAP
        offset = parsed.offset
        if offset in self._missing:
            self._missing.discard(offset)
            return Seen.NEW
        if offset <= self._last:
            return Seen.DUPLICATE
        if offset > self._last + 1 and self.refill:
            if offset - self._last + len(self._missing) > MAX_MISSING:
                self._broken = True
            else:
                self._missing.update(range(self._last + 1, offset))
            self._last = offset
            return Seen.GAP
        self._last = offset
        return Seen.NEW
