"""What a session writes (its :class:`Encoding`) and when (:class:`Flusher`, once per loop iteration)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from relaygate.channels.api import logger
from relaygate.protocol import V1, V2, Frame, Serializer
from relaygate.protocol.websocket import frame_message
from relaygate.telemetry.metrics import CHANNEL_JOINS, CHANNEL_MESSAGES

_FRAMES_OUT = CHANNEL_MESSAGES.labels("out")
_joins = 0  # successful joins not yet in CHANNEL_JOINS: added by the next flush (a join's reply
# is queued with it, so within the same loop iteration), not one locked update per join


def count_join() -> None:
    global _joins
    _joins += 1


class Encoding:
    """A serializer, plus RFC 6455 framing for transports that take WebSocket bytes (``wire``).

    One instance per (serializer, wire) pair, shared by every session: a broadcast is encoded
    once per Encoding per dispatch, so wire sockets share the very same frame bytes.
    """

    __slots__ = ("broadcast", "reply", "serializer", "wire")

    def __init__(self, serializer: Serializer, wire: bool) -> None:
        self.serializer = serializer
        self.wire = wire
        self.broadcast: Callable[[str, str, Any, str | None], Frame] = (
            serializer.broadcast_frame if wire else serializer.broadcast
        )
        """``(topic, event, payload, ref)``: a broadcast's frame in this form."""
        self.reply: Callable[[str | None, str | None, str, str, Any], Frame] = (
            serializer.reply_frame if wire else serializer.reply
        )
        """``(join_ref, ref, topic, status, response)``: a reply's frame in this form."""

    def frame(self, frame: Frame) -> Frame:
        """A protocol frame as the transport takes it."""
        return frame_message(frame) if self.wire else frame


_ENCODINGS: dict[tuple[Serializer, bool], Encoding] = {
    (s, wire): Encoding(s, wire) for s in (V1, V2) for wire in (False, True)
}


def encoding_for(serializer: Serializer, wire: bool) -> Encoding:
    encoding = _ENCODINGS.get((serializer, wire))
    if encoding is None:  # a serializer of the app's own
        encoding = _ENCODINGS[(serializer, wire)] = Encoding(serializer, wire)
    return encoding


class Flushable(Protocol):
    def flush(self) -> int:
        """Write what is queued; return how many frames left."""
        ...


FLUSH_CHUNK = 1000
"""Sessions flushed per loop iteration; the rest wait for the next one (see :class:`Flusher`)."""


class Flusher:
    """Runs ``flush`` of every session that queued frames, once, on the next loop iterations.

    Frames written to one socket while the loop handles one batch of events (a fan-out, a burst
    of replies) thus leave in one write, and the loop schedules one callback, not one per socket.
    A long queue (a broadcast to 10,000 sockets) is flushed :data:`FLUSH_CHUNK` sessions per
    iteration: in between the loop reads its sockets, so it stays responsive, and frames of
    the next broadcasts join the writes of sessions still waiting (fewer send calls per frame).
    """

    __slots__ = ("_due", "_handle")

    def __init__(self) -> None:
        self._due: list[Flushable] = []
        self._handle: asyncio.Handle | None = None

    def add(self, session: Flushable) -> None:
        self._due.append(session)
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_soon(self._run)

    def _run(self) -> None:
        due = self._due
        if len(due) > FLUSH_CHUNK:
            self._due = due[FLUSH_CHUNK:]
            due = due[:FLUSH_CHUNK]
            self._handle = asyncio.get_running_loop().call_soon(self._run)
        else:
            self._due = []
            self._handle = None
        sent = 0
        for session in due:
            try:
                sent += session.flush()
            except Exception:
                logger.exception("flushing a connection failed")
        if sent:  # one counter update per iteration, not one per frame (the counter locks)
            _FRAMES_OUT.inc(sent)
        global _joins
        if _joins:
            CHANNEL_JOINS.inc(_joins)
            _joins = 0
