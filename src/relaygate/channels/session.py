"""One client connection, whatever the transport: routing, outbound queue, idleness, close.

The transport feeds frames with :meth:`Session.feed` (synchronous, in arrival order) and calls
:meth:`Session.finish` once the connection is gone. Outbound frames wait in a list until the
endpoint's :class:`~relaygate.channels.outbound.Flusher` runs (once per loop iteration), then
leave in one ``Transport.write``. While the transport reports a full buffer (``pause_writing``)
frames stay queued within bounds; a client that cannot keep up is closed with 1008
``slow consumer`` instead of slowing anyone else down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol

from relaygate.channels.api import logger
from relaygate.channels.channel import Channel
from relaygate.channels.channel_socket import ChannelSocket
from relaygate.channels.outbound import Encoding, encoding_for
from relaygate.protocol import (
    GOING_AWAY,
    POLICY_VIOLATION,
    SERVICE_RESTART,
    Connection,
    Deliver,
    Frame,
    Join,
    Leave,
    Message,
    ProtocolError,
    Send,
    Serializer,
)
from relaygate.pubsub import Broadcast
from relaygate.telemetry.metrics import CHANNEL_MESSAGES, SLOW_CONSUMERS, SOCKETS_OPEN

if TYPE_CHECKING:
    from relaygate.channels.core import EndpointCore
    from relaygate.channels.socket import Socket

_FRAMES_IN = CHANNEL_MESSAGES.labels("in")
_FRAMES_IN_BATCH = 64
_frames_in = 0  # received frames not yet in _FRAMES_IN, added in batches (the counter locks per call);
# a scrape lags by fewer than _FRAMES_IN_BATCH frames while connections are open


_SCHEDULED = 1
_PAUSED = 2
_CLOSE_SENT = 4


_sockets_open = 0
"""Started and not finished sessions of this process, read by the gauge when scraped (an update
per connect and disconnect took a lock)."""
SOCKETS_OPEN.set_function(lambda: _sockets_open)


def _count_frames_in() -> None:
    global _frames_in
    _FRAMES_IN.inc(_frames_in)
    _frames_in = 0


class Transport(Protocol):
    """Where a session's frames go. Neither call blocks; raising means the client is gone.

    A ``wire`` transport takes complete WebSocket frames (bytes, see ``Encoding.frame``), any
    other takes protocol frames (``str`` text, ``bytes`` binary). A transport whose buffer fills
    calls the session's ``pause_writing`` and, once drained, ``resume_writing``.
    """

    @property
    def wire(self) -> bool: ...

    def write(self, frames: list[Frame]) -> None: ...

    def close(self, code: int, reason: str) -> None: ...


class Session:
    __slots__ = (
        "__weakref__",
        "_close",
        "_end_reason",
        "_out",
        "_out_bytes",
        "_state",
        "assigns",
        "conn",
        "disconnect_topics",
        "encoding",
        "endpoint",
        "peer",
        "quiet",
        "socket_id",
        "transport",
    )

    def __init__(
        self,
        endpoint: EndpointCore,
        socket: Socket,
        serializer: Serializer,
        assigns: dict[str, Any],
        socket_id: str | None,
        peer: tuple[str, int] | None,
        transport: Transport,
    ) -> None:
        self.endpoint = endpoint
        self.encoding: Encoding = encoding_for(serializer, transport.wire)
        self.assigns = assigns
        self.socket_id = socket_id
        self.disconnect_topics = socket.disconnect_topics(assigns, socket_id)
        self.peer = peer
        self.transport = transport
        self.conn: Connection[Channel, ChannelSocket] = Connection(
            serializer,
            socket.router,
            self._spawn,
            max_channels=endpoint.max_channels,
            max_frame_size=endpoint.max_frame_size,
        )
        self._out: list[Frame] | None = None  # allocated while frames wait, to keep idle sockets small
        self._out_bytes = 0  # the size of _out, kept while paused (the only time it is checked)
        self._state = 0  # _SCHEDULED | _PAUSED | _CLOSE_SENT
        self._close: tuple[int, str] | None = None
        self._end_reason = "closed"
        self.quiet = 0
        """Idle sweeps since the last received frame (:class:`~relaygate.channels.idle.IdleSweep`)."""

    def _spawn(self, message: Message, handler: Channel) -> ChannelSocket:
        return ChannelSocket(self, message, handler)

    @property
    def serializer(self) -> Serializer:
        return self.encoding.serializer

    @property
    def closing(self) -> bool:
        return self._close is not None

    async def start(self, *, watch_idle: bool = True) -> None:
        """Register with the endpoint, subscribe to the socket id topic, watch for idleness
        (not for long-poll, whose clients send no heartbeats: poll expiry is their liveness)."""
        subscribing = self.start_now(watch_idle=watch_idle)
        if subscribing is not None:
            await subscribing

    def start_now(self, *, watch_idle: bool = True) -> Awaitable[None] | None:
        """:meth:`start`, returning the awaitable subscription of the socket id topics (None
        when they are subscribed at once, ``PubSub.subscribe_now``: a connect then needs no task)."""
        endpoint = self.endpoint
        endpoint.sessions.add(self)
        global _sockets_open
        _sockets_open += 1
        timeout = endpoint.idle_timeout
        if timeout is not None and watch_idle:
            endpoint.idle.watch(self, timeout)
        topics = self.disconnect_topics
        for index, topic in enumerate(topics):
            if not endpoint.pubsub.subscribe_now(topic, self):
                return self._subscribe(topics[index:])
        return None

    async def _subscribe(self, topics: tuple[str, ...]) -> None:
        for topic in topics:
            await self.endpoint.pubsub.subscribe(topic, self)

    def feed(self, data: str | bytes) -> None:
        """Handle one client frame (section 3 routing), in order, without awaiting."""
        if self._close is not None:
            return
        self.quiet = 0
        global _frames_in
        _frames_in += 1
        if _frames_in >= _FRAMES_IN_BATCH:
            _count_frames_in()
        action = self.conn.receive(data)
        if action is None:
            return
        kind = type(action)
        if kind is Deliver:
            action.channel.enqueue_in(action.message)  # type: ignore[union-attr]
        elif kind is Send:
            self.send(action.frame)  # type: ignore[union-attr]
        elif kind is Join:
            self._join(action)  # type: ignore[arg-type]
        elif kind is Leave:
            action.channel.enqueue_leave(action.message)  # type: ignore[union-attr]
        else:
            error: ProtocolError = action  # type: ignore[assignment]
            logger.info("closing connection %s: %s", self.peer, error.reason)
            self.close(error.code, error.reason, drop=True)

    def feed_text(self, data: bytes) -> bool:
        """:meth:`feed` of a text frame given as its UTF-8 bytes, when it is a push to a joined
        channel (``Connection.receive_push``: decoded once, no ``str``, no routing action);
        False, with nothing done, for any other frame: then :meth:`feed` it."""
        if self._close is not None:
            return True
        push = self.conn.receive_push(data)
        if push is None:
            return False
        self.quiet = 0
        global _frames_in
        _frames_in += 1
        if _frames_in >= _FRAMES_IN_BATCH:
            _count_frames_in()
        push[0].enqueue_push(push[1])
        return True

    def _join(self, action: Join[Channel, ChannelSocket]) -> None:
        if action.replaced is not None and action.replaced_close is not None:
            asyncio.get_running_loop().create_task(action.replaced.shutdown("duplicate_join"))
            self.send(action.replaced_close)
        action.channel.enqueue_join(action.message)

    def send(self, frame: Frame) -> None:
        """Queue a protocol frame for the next flush."""
        self.write(self.encoding.frame(frame))

    def write(self, data: Frame) -> None:
        """Queue a frame already in the transport's form (``Encoding``): a shared broadcast frame."""
        if self._close is not None:
            return
        out = self._out
        if out is None:
            out = self._out = [data]
        else:
            out.append(data)
        state = self._state
        if not state:  # the common case: not scheduled yet, not paused
            self._state = _SCHEDULED
            self.endpoint.flusher.add(self)
        elif state & _PAUSED:
            self._out_bytes += len(data)
            endpoint = self.endpoint
            queued = len(out)
            if queued > endpoint.max_queue_frames or self._out_bytes > endpoint.max_queue_bytes:
                self.slow_consumer(queued)
        elif not state & _SCHEDULED:
            self._state = state | _SCHEDULED
            self.endpoint.flusher.add(self)

    def flush(self) -> int:
        """Write what is queued in one call, then the close if one is pending (the Flusher's callback).

        Returns how many frames were written."""
        state = self._state = self._state & ~_SCHEDULED
        out = self._out
        sent = 0
        if out is not None and not state & _PAUSED:
            self._out = None
            self._out_bytes = 0
            try:
                self.transport.write(out)
            except Exception:  # the client went away; finish() will follow from the transport
                self._gone()
                return 0
            sent = len(out)
        close = self._close
        if close is not None and self._out is None and not self._state & _CLOSE_SENT:
            self._state |= _CLOSE_SENT
            try:
                self.transport.close(*close)
            except Exception:
                self._gone()
        return sent

    def _gone(self) -> None:
        self._out = None
        self._out_bytes = 0
        self._state |= _CLOSE_SENT
        if self._close is None:
            self._close = (GOING_AWAY, "gone")

    def _schedule(self) -> None:
        if not self._state & _SCHEDULED:
            self._state |= _SCHEDULED
            self.endpoint.flusher.add(self)

    def pause_writing(self) -> None:
        """The transport's buffer is full: queue (within bounds) until :meth:`resume_writing`."""
        if not self._state & _PAUSED:
            self._state |= _PAUSED
            self._out_bytes = sum(map(len, self._out)) if self._out else 0  # counted while paused only

    def resume_writing(self) -> None:
        self._state &= ~_PAUSED
        if self._out is not None or self._close is not None:
            self._schedule()

    def slow_consumer(self, queued: int) -> None:
        """Close a client that does not keep up (1008), dropping the ``queued`` frames it left."""
        if self._close is not None:
            return
        self.endpoint.slow_consumers += 1
        SLOW_CONSUMERS.inc()
        logger.warning("closing slow consumer %s (%d frames queued)", self.peer, queued)
        self.close(POLICY_VIOLATION, "slow consumer", drop=True)

    def close(self, code: int, reason: str, *, drop: bool = False, end_reason: str | None = None) -> None:
        """Close the connection with ``code`` after the queued frames (or dropping them)."""
        if self._close is not None:
            return
        self._close = (code, reason)
        if end_reason is not None:
            self._end_reason = end_reason
        if drop:
            self._out = None
            self._out_bytes = 0
            self._state &= ~_PAUSED  # the close goes out even past a full buffer
        self._schedule()

    def drain(self) -> None:
        self.close(SERVICE_RESTART, "server restart", end_reason="shutdown")

    def deliver(self, message: Broadcast, cache: dict[Any, Any]) -> None:
        """Socket id (and disconnect) topics: ``disconnect`` closes with 1001 and no phx frames."""
        if message.event == "disconnect":
            self.close(GOING_AWAY, "disconnected", drop=True, end_reason="disconnected")

    def idle_expired(self) -> None:
        """Nothing received for the endpoint's idle timeout (heartbeats included)."""
        self.close(GOING_AWAY, "idle timeout", drop=True)

    async def finish(self) -> None:
        """The transport is gone: terminate every channel and forget the session."""
        endpoint = self.endpoint
        if self not in endpoint.sessions:
            return  # already finished
        endpoint.sessions.discard(self)
        if self._close is None:
            self._close = (GOING_AWAY, "closed")
        self._state |= _CLOSE_SENT  # nothing more to write to a connection that is gone
        endpoint.idle.unwatch(self)
        self._out = None
        for topic in self.disconnect_topics:
            await endpoint.pubsub.unsubscribe(topic, self)
        channels = list(self.conn.channels.values())
        self.conn.channels.clear()
        for channel in channels:
            await channel.shutdown(self._end_reason)
        global _sockets_open
        _sockets_open -= 1
        _count_frames_in()  # nothing stays uncounted once connections close
        endpoint.session_finished(self)
