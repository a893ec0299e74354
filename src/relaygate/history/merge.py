"""Merging a recovery read with live broadcasts, sans I/O.

A joining channel subscribes first, then reads the stream after ``since``. Live broadcasts that
arrive meanwhile are buffered. Once the read is in, the replay goes out, then the buffered
broadcasts newer than the last replayed one; nothing at or below a position already delivered
passes twice. Buffering lasts until the caller has delivered everything released (replays may
await ``handle_out``), so a live broadcast never overtakes a replay. The same machine serves a
node catching a topic up after its Redis subscription came back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from relaygate.protocol.positions import Position

T = TypeVar("T")


class Merge(Generic[T]):
    """``reading`` (``live`` buffers) until :meth:`more` finds nothing left, then pass-through."""

    __slots__ = ("_buffer", "_floor", "reading")

    def __init__(self) -> None:
        self.reading = True
        self._buffer: list[tuple[Position | None, T]] = []
        self._floor: Position | None = None

    def live(self, position: Position | None, item: T) -> bool:
        """A live broadcast: True when it should go out now, False when buffered or a duplicate."""
        if self.reading:
            self._buffer.append((position, item))
            return False
        return not self._covered(position)

    def recovered(self, top: Position, replay: Sequence[tuple[Position, T]]) -> list[T]:
        """The read succeeded: ``replay`` holds every entry after ``since`` up to ``top`` (the
        stream's position when read). Returns the replay then the buffered items beyond it."""
        out: list[T] = []
        for position, item in replay:
            if not self._covered(position):
                out.append(item)
                self._floor = position
        if self._floor is None or self._after(top, self._floor):
            self._floor = top
        return out + self._release()

    def fresh(self, top: Position | None) -> tuple[Position | None, list[T]]:
        """No recovery (no ``since``, or it failed): every buffered item goes out, and the position
        to announce is ``top`` lowered to just before the first of them that ``top`` covers."""
        position = top
        if top is not None:
            for buffered, _ in self._buffer:
                if buffered is not None and buffered.epoch == top.epoch and buffered.offset <= top.offset:
                    position = Position(top.epoch, buffered.offset - 1)
                    break
        self._floor = position
        return position, self._release()

    def more(self) -> list[T]:
        """Call after delivering what was released: items buffered meanwhile, and an empty answer
        ends buffering (then call no more; ``live`` passes items through)."""
        out = self._release()
        if not out:
            self.reading = False
        return out

    def _release(self) -> list[T]:
        buffered, self._buffer = self._buffer, []
        out: list[T] = []
        for position, item in buffered:
            if not self._covered(position):
                out.append(item)
                if position is not None:
                    self._floor = position
        return out

    def _covered(self, position: Position | None) -> bool:
        """At or below the floor in the same epoch; other epochs and position-less items pass."""
        floor = self._floor
        return (
            position is not None
            and floor is not None
            and position.epoch == floor.epoch
            and position.offset <= floor.offset
        )

    @staticmethod
    def _after(a: Position, b: Position) -> bool:
        return a.epoch != b.epoch or a.offset > b.offset
