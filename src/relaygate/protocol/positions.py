"""Positions: ``<epoch>:<offset>``, opaque to clients, parsed only by the server.

The epoch names one life of a topic's stream (it changes whenever retained history may have been
lost); the offset counts broadcasts within it, from 1, without holes. The ``:`` keeps every
position distinct from the numeric refs phoenix.js generates (heartbeats, replies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

MAX_EPOCH: Final = 64
MAX_POSITION: Final = 96


@dataclass(frozen=True, slots=True, order=False)
class Position:
    epoch: str
    offset: int

    def __str__(self) -> str:
        return f"{self.epoch}:{self.offset}"

    def next(self) -> Position:
        return Position(self.epoch, self.offset + 1)


def parse(value: object) -> Position | None:
    """The position named by a client's ``since``; None for anything malformed (never raises)."""
    if type(value) is not str or len(value) > MAX_POSITION:
        return None
    epoch, sep, offset = value.rpartition(":")
    if not sep or not epoch or len(epoch) > MAX_EPOCH or ":" in epoch:
        return None
    if not offset.isascii() or not offset.isdigit() or (len(offset) > 1 and offset[0] == "0"):
        return None
    return Position(epoch, int(offset))
