"""Per-connection routing state machine (phoenix-protocol.md section 3), free of I/O.

The runtime feeds raw client frames to :meth:`Connection.receive` and performs the returned
action; it reports channel outcomes back (:meth:`joined`, :meth:`refused`, :meth:`closed`, ...)
and gets the frames to send. Channels are runtime objects deriving from :class:`ChannelEntry`,
created through the ``spawn`` callback so that the core's table is the runtime's table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from relaygate.protocol.frames import (
    HEARTBEAT,
    HEARTBEAT_TOPIC,
    JOIN,
    LEAVE,
    MESSAGE_TOO_BIG,
    Frame,
    Message,
    ProtocolError,
)
from relaygate.protocol.router import Router
from relaygate.protocol.serializers import Serializer

_EMPTY: Final[dict[str, Any]] = {}
_UNMATCHED: Final = {"reason": "unmatched topic"}
_TOO_MANY: Final = {"reason": "too many channels joined"}
_JOIN_CRASHED: Final = {"reason": "join crashed"}
_TOO_BIG: Final = ProtocolError(MESSAGE_TOO_BIG, "frame too large")

DEFAULT_MAX_CHANNELS: Final = 100
DEFAULT_MAX_FRAME_SIZE: Final = 1 << 20


class ChannelEntry:
    """What the core knows of a joined (or joining) channel; the runtime subclasses it."""

    __slots__ = ("join_ref", "leaving", "topic")

    def __init__(self, topic: str, join_ref: str | None) -> None:
        self.topic = topic
        self.join_ref = join_ref
        self.leaving = False


R = TypeVar("R")
C = TypeVar("C", bound=ChannelEntry)


# Actions are plain (not frozen) slotted dataclasses: one is built per client frame.


@dataclass(slots=True)
class Send:
    """Write ``frame`` to the client."""

    frame: Frame


@dataclass(slots=True)
class Join(Generic[R, C]):
    """Run the join of the new ``channel`` (already registered). If ``replaced`` is set (duplicate
    join), stop it with reason ``duplicate_join`` and send ``replaced_close`` first."""

    channel: C
    message: Message
    route: R
    replaced: C | None = None
    replaced_close: Frame | None = None


@dataclass(slots=True)
class Deliver(Generic[C]):
    """Queue ``message`` to the channel's ``handle_in`` (in order, after any pending join)."""

    channel: C
    message: Message


@dataclass(slots=True)
class Leave(Generic[C]):
    """Queue the leave: the channel replies ok, terminates with ``left``, then :meth:`closed`."""

    channel: C
    message: Message


Action = Send | Join[R, C] | Deliver[C] | Leave[C] | ProtocolError | None


class Connection(Generic[R, C]):
    """Routing table of one client connection: topic -> channel, applying the rules in order."""

    __slots__ = ("channels", "max_channels", "max_frame_size", "router", "serializer", "spawn")

    def __init__(
        self,
        serializer: Serializer,
        router: Router[R],
        spawn: Callable[[Message, R], C],
        *,
        max_channels: int = DEFAULT_MAX_CHANNELS,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        self.serializer = serializer
        self.router = router
        self.spawn = spawn
        self.max_channels = max_channels
        self.max_frame_size = max_frame_size
        self.channels: dict[str, C] = {}

    def _oversize(self, data: str | bytes) -> bool:
        size = len(data)
        limit = self.max_frame_size
        if isinstance(data, str) and limit // 4 < size <= limit:
            size = len(data.encode())  # characters may take up to 4 bytes of UTF-8
        return size > limit

    def receive(self, data: str | bytes) -> Action[R, C]:
        """Route one client frame (rules 1-7 of section 3)."""
        if len(data) > self.max_frame_size // 4 and self._oversize(data):
            return _TOO_BIG
        message = self.serializer.decode(data)
        if isinstance(message, ProtocolError):
            return message
        topic, event = message.topic, message.event
        if event == HEARTBEAT and topic == HEARTBEAT_TOPIC:
            return Send(self.serializer.reply(None, message.ref, HEARTBEAT_TOPIC, "ok", _EMPTY))
        channel = self.channels.get(topic)
        if event == JOIN:
            return self._join(message, channel)
        if channel is None:
            if event == LEAVE:
                return Send(self.serializer.reply(message.join_ref, message.ref, topic, "ok", _EMPTY))
            return Send(self.unmatched(message))
        if message.join_ref is not None and message.join_ref != channel.join_ref:
            return None  # stale join_ref: a message meant for an earlier join
        if channel.leaving:
            return None  # the channel is going away after a leave; Phoenix drops these too
        if event == LEAVE:
            channel.leaving = True
            return Leave(channel, message)
        return Deliver(channel, message)

    def receive_push(self, data: bytes) -> tuple[C, list[Any]] | None:
        """The common frame, fast: a text frame (its UTF-8 bytes) that :meth:`receive` would
        turn into a :class:`Deliver`, as the channel and the decoded fields
        ``[join_ref, ref, topic, event, payload]``; None for anything else (then :meth:`receive`
        the frame, which decides exactly as before). Frames larger than a quarter of
        ``max_frame_size`` are never taken here."""
        if len(data) > self.max_frame_size >> 2:
            return None
        fields = self.serializer.decode_text(data)
        if fields is None:
            return None
        topic = fields[2]
        channel = self.channels.get(topic)
        if channel is None or channel.leaving or topic == HEARTBEAT_TOPIC:
            return None
        event = fields[3]
        if event == JOIN or event == LEAVE:
            return None
        join_ref = fields[0]
        if join_ref is not None and join_ref != channel.join_ref:
            return None
        return channel, fields

    def _join(self, message: Message, current: C | None) -> Action[R, C]:
        topic = message.topic
        replaced_close = None
        if current is not None:
            del self.channels[topic]
            replaced_close = self.serializer.close(current.join_ref, topic)
        route = self.router.match(topic)
        if route is None:
            return Send(self.unmatched(message))
        if len(self.channels) >= self.max_channels:
            return Send(self.serializer.reply(message.join_ref, message.ref, topic, "error", _TOO_MANY))
        channel = self.spawn(message, route)
        self.channels[topic] = channel
        return Join(channel, message, route, current, replaced_close)

    def unmatched(self, message: Message) -> Frame:
        """Rule 7: the unmatched-topic error reply, with a null join_ref."""
        return self.serializer.reply(None, message.ref, message.topic, "error", _UNMATCHED)

    def unjoined(self, message: Message) -> Frame | None:
        """A message queued behind a join that then failed: answer as if no channel existed."""
        if message.event == LEAVE:
            return self.serializer.reply(message.join_ref, message.ref, message.topic, "ok", _EMPTY)
        if message.event == JOIN:
            return None
        return self.unmatched(message)

    def is_current(self, channel: C) -> bool:
        return self.channels.get(channel.topic) is channel

    def joined(self, channel: C, ref: str | None, response: Any) -> Frame | None:
        """The join succeeded: the ok reply, or None if the channel was replaced meanwhile."""
        if not self.is_current(channel):
            return None
        return self.serializer.reply(channel.join_ref, ref, channel.topic, "ok", response)

    def refused(self, channel: C, ref: str | None, status: str, response: Any) -> Frame:
        """The join returned an error: forget the channel and answer with its status."""
        self.remove(channel)
        return self.serializer.reply(channel.join_ref, ref, channel.topic, status, response)

    def join_crashed(self, channel: C, ref: str | None) -> Frame:
        return self.refused(channel, ref, "error", _JOIN_CRASHED)

    def closed(self, channel: C) -> Frame | None:
        """A clean end (leave, stop): the phx_close frame, unless the channel was already replaced."""
        if not self.remove(channel):
            return None
        return self.serializer.close(channel.join_ref, channel.topic)

    def crashed(self, channel: C) -> Frame | None:
        """A crash: the phx_error frame, unless the channel was already replaced."""
        if not self.remove(channel):
            return None
        return self.serializer.error(channel.join_ref, channel.topic)

    def remove(self, channel: C) -> bool:
        """Forget ``channel`` if it is still the current one for its topic."""
        if self.channels.get(channel.topic) is channel:
            del self.channels[channel.topic]
            return True
        return False
